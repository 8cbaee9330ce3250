"""The canary table of ours that carries the same generated triggers as the user's tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CANARY_SCHEMA = "rds_streams"
CANARY_TABLE = "canary"
CANARY_SQL = Path(__file__).resolve().parents[2] / "sql" / "canary.sql"


def ensure_canary_table(conn: Any) -> None:
    with conn.cursor() as cursor:
        for statement in CANARY_SQL.read_text().split(";"):
            if any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines()):
                cursor.execute(statement)


def canary_exists(conn: Any) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                       (CANARY_SCHEMA, CANARY_TABLE))
        return bool(cursor.fetchone()[0])
