"""The whole local sandbox (moto, MariaDB, sshd, runner) under a temp dir, driven through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox.processes import free_port
from tests.factories import write_config


def local_config(directory: Path, overrides: dict | None = None) -> Path:
    base = {"project": {"target": "local"}, "bastion": {"local_port": free_port()}}
    for key, value in (overrides or {}).items():
        base[key] = {**base.get(key, {}), **value}
    return write_config(directory, base)


@pytest.fixture
def local_sandbox(tmp_path: Path) -> Any:
    """A local-target config in a temp dir; whatever sandbox a failing test left there is stopped."""
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    config_path = local_config(tmp_path)
    yield config_path
    Sandbox(load_config(config_path)).stop()


def logged_lines(config_path: Path, term: str) -> list[dict[str, Any]]:
    """The JSON objects the consumer logged on lines containing `term` (a plain word or a quoted
    phrase), in the order they were logged."""
    from orchestrator.config import load_config
    from orchestrator.database.probe import filter_events
    from orchestrator.sandbox.manager import Sandbox

    config = load_config(config_path)
    logs = Sandbox(config).state().aws().client("logs")
    lines = []
    for event in filter_events(logs, f"/aws/lambda/{config.consumer.function_name}", term, 0):
        try:
            line = json.loads(event["message"])
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def logged_records(config_path: Path, term: str) -> list[dict[str, Any]]:
    """Change records in the consumer's log whose line contains `term`, in the order they were logged."""
    return [line for line in logged_lines(config_path, f'"{term}"') if "eventName" in line]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def root_connection(config_path: Path) -> Any:
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    return Sandbox(load_config(config_path)).state().root_connection()


ROUTE_INSERT = ("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, `carrierCode`) "
                "VALUES (%s, %s, 'op', 'grp', %s)")
ROUTE_UPDATE = "UPDATE `flights`.`routes` SET `carrierCode` = %s WHERE `airportFrom` = %s AND `airportTo` = %s"


@pytest.fixture(scope="module")
def deployed() -> Any:
    """One sandbox for the module, up before and down after, in a folder other users may enter (so
    only .rds-streams/ itself can keep them out)."""
    import shutil
    import tempfile

    from orchestrator.cli import main

    folder = Path(tempfile.mkdtemp(prefix="rds-streams-sandbox-"))
    folder.chmod(0o755)
    config_path = local_config(folder)
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    shutil.rmtree(folder, ignore_errors=True)


def snapshot(conn: Any, tables: list[str]) -> dict[str, Any]:
    """Every row of each `flights` table, in key order: to compare before and after."""
    with conn.cursor() as cursor:
        result = {}
        for table in tables:
            cursor.execute(f"SELECT * FROM `flights`.`{table}` ORDER BY 1")
            result[table] = cursor.fetchall()
        return result
