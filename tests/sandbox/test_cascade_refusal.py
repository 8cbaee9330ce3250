"""A streamed table whose cascading foreign key cannot be emitted exactly is refused by `plan` and `up`
with exit code 2, the key and the table named, and no trigger installed for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import free_port
from tests.factories import write_config
from tests.sandbox.conftest import root_connection

TREE_SQL = """;
CREATE TABLE IF NOT EXISTS `tree` (
    `id` INT NOT NULL PRIMARY KEY,
    `up` INT NULL,
    CONSTRAINT `fk_tree_up` FOREIGN KEY (`up`) REFERENCES `tree` (`id`) ON DELETE CASCADE
) ENGINE = InnoDB
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*args, "--output", "json"])
    return code, capsys.readouterr().out  # errors are `error` objects on stdout in JSON mode


def test_plan_and_up_refuse_a_self_cascading_key_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = Path(__file__).resolve().parents[2] / "sql" / "migrations" / "V1__routes.sql"
    schema = routes.read_text().rstrip().rstrip(";") + TREE_SQL
    config_path = write_config(tmp_path, {"project": {"target": "local"}, "bastion": {"local_port": free_port()},
                                          "stream": {"tables": [{"name": "routes"}, {"name": "tree"}]}}, schema=schema)
    try:
        code, errors = run(capsys, "up", "--config", str(config_path), "--yes")
        assert code == 2, errors
        assert "fk_tree_up" in errors and "on table tree" in errors
        code, errors = run(capsys, "plan", "--config", str(config_path))
        assert code == 2 and "fk_tree_up" in errors and "on table tree" in errors
        with root_connection(config_path).cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_TABLE = 'tree'")
            assert cursor.fetchone()[0] == 0
    finally:
        Sandbox(load_config(config_path)).stop()
