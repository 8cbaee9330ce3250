"""Shared fixtures: real services on loopback, started here and stopped afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A private MariaDB (Aurora's data plane in the sandbox); root has no password on 127.0.0.1."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, list[dict[str, Any]]]]:
    """Run the CLI in-process with --output json; the exit code and the JSON objects printed."""

    def run(*args: str) -> tuple[int, list[dict[str, Any]]]:
        capsys.readouterr()
        code = main([*args, "--output", "json"])
        out = capsys.readouterr().out
        return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return run
