"""The canary table of ours that carries the same generated triggers as the user's tables."""

from __future__ import annotations

from typing import Any

from orchestrator.database.catalog import table_exists
from orchestrator.database.scripts import run_sql_file

CANARY_SCHEMA = "rds_streams"
CANARY_TABLE = "canary"


def ensure_canary_table(conn: Any) -> None:
    run_sql_file(conn, "canary.sql")


def canary_exists(conn: Any) -> bool:
    return table_exists(conn, CANARY_SCHEMA, CANARY_TABLE)
