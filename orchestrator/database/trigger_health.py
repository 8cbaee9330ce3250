"""Triggers of ours that make writes fail now: they name a column the table no longer has.

Migrations run by `up` re-fit the triggers with the DDL, but teams whose migrations run elsewhere
(Flyway, Alembic, Liquibase) can drop or rename a column under our triggers; from then on every
write to the table fails with 1054 "Unknown column ... in 'NEW'" until `up` replaces them. `status`
shows this first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.database.trigger_install import read_our_triggers

# NEW.`col` / OLD.`col` as our generator writes them (always quoted; `` inside stands for one `).
_ROW_REFERENCE = re.compile(r"\b(?:NEW|OLD)\.`((?:[^`]|``)+)`", re.IGNORECASE)
_COLUMNS = "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


@dataclass(frozen=True)
class FailingTable:
    schema: str
    table: str
    trigger: str
    unknown_columns: tuple[str, ...]

    @property
    def message(self) -> str:
        return (f"writes to {self.schema}.{self.table} are failing now: trigger {self.trigger} names column(s) "
                f"{', '.join(self.unknown_columns)} that the table no longer has")


def failing_tables(conn: Any, schema: str, tables: Sequence[str] | None = None) -> list[FailingTable]:
    """Our triggers in `schema` (on `tables`, or on any table) that name a column their table lacks."""
    failing = []
    columns: dict[str, set[str]] = {}
    with conn.cursor() as cursor:
        for trigger in read_our_triggers(conn, schema):
            if tables is not None and trigger.table not in tables:
                continue
            if trigger.table not in columns:
                cursor.execute(_COLUMNS, (schema, trigger.table))
                columns[trigger.table] = {row[0].lower() for row in cursor.fetchall()}
            named = {m.replace("``", "`") for m in _ROW_REFERENCE.findall(trigger.body)}
            unknown = sorted(c for c in named if c.lower() not in columns[trigger.table])
            if unknown:
                failing.append(FailingTable(schema, trigger.table, trigger.name, tuple(unknown)))
    return failing
