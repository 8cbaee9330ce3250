"""The canary table of ours that carries the same generated triggers as the user's tables."""

from __future__ import annotations

from typing import Any

from orchestrator.database.scripts import run_sql_file

CANARY_SCHEMA = "rds_streams"
CANARY_TABLE = "canary"


def ensure_canary_table(conn: Any) -> None:
    run_sql_file(conn, "canary.sql")


def canary_exists(conn: Any) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                       (CANARY_SCHEMA, CANARY_TABLE))
        return bool(cursor.fetchone()[0])
