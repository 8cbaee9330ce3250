"""Reads from information_schema: table shapes, and the triggers of ours already installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.database import trigger_sql
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import Column, TableShape
from orchestrator.errors import OperationFailed

# For "did you mean" when a configured table is missing.
TABLE_NAMES_QUERY = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"


@dataclass(frozen=True)
class InstalledTrigger:
    name: str
    table: str
    event: str  # INSERT | UPDATE | DELETE
    timing: str  # AFTER | BEFORE
    body: str  # ACTION_STATEMENT: the text after FOR EACH ROW, as it was given
    definer: str  # user@host


def table_exists(conn: Any, schema: str, table: str) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(trigger_sql.TABLE_TYPE_QUERY, (schema, table))
        return cursor.fetchone() is not None


def read_table_shape(conn: Any, schema: str, table: str) -> TableShape:
    """Read `schema`.`table`; refuse a missing table, a view, or a table without a primary key."""
    with conn.cursor() as cursor:
        cursor.execute(trigger_sql.TABLE_TYPE_QUERY, (schema, table))
        found = cursor.fetchone()
        if found is None:
            from orchestrator.config import did_you_mean

            cursor.execute(TABLE_NAMES_QUERY, (schema,))
            known = [row[0] for row in cursor.fetchall()]
            raise OperationFailed(
                f"table {schema}.{table} does not exist{did_you_mean(table, known)}, so no change stream can be set up "
                "for it",
                hint="create it (the [database] schema file) or remove it from [[stream.tables]]",
            )
        if found[0] != "BASE TABLE":
            raise OperationFailed(
                f"{schema}.{table} is a {found[0].lower()}; triggers can only be put on base tables",
                hint="stream the table the view reads from instead",
            )
        cursor.execute(trigger_sql.COLUMNS_QUERY, (schema, table))
        columns = tuple(
            Column(name=name, data_type=data_type.lower(), column_type=column_type, nullable=nullable == "YES",
                   charset=charset, numeric_precision=_int(precision), numeric_scale=_int(scale),
                   datetime_precision=_int(dt_precision), collation=collation)
            for name, data_type, column_type, nullable, charset, precision, scale, dt_precision, collation
            in cursor.fetchall()
        )
        cursor.execute(trigger_sql.PRIMARY_KEY_QUERY, (schema, table))
        primary_key = tuple(row[0] for row in cursor.fetchall())
    if not primary_key:
        raise OperationFailed(
            f"table {schema}.{table} has no primary key; change records carry the primary key as their Keys, "
            "so it cannot be streamed",
            hint=f"add one (ALTER TABLE {quote_identifier(table)} ADD PRIMARY KEY (...)) "
                 "or remove the table from [[stream.tables]]",
        )
    return TableShape(schema=schema, table=table, columns=columns, primary_key=primary_key)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
