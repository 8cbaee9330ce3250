"""Shared fixtures: real services on loopback, started here and stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A private MariaDB (Aurora's data plane in the sandbox); root has no password on 127.0.0.1."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"), free_port())
    server.start()
    yield server
    server.stop()
