"""Marker rows for verify's round trips: values built from each column's type that satisfy NOT NULL,
ENUM, SET, JSON, BIT and date columns, with keys that never collide with user rows."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

from orchestrator.database.sqltext import quote_identifier

INT_RANGES = {"tinyint": 7, "smallint": 15, "mediumint": 23, "int": 31, "integer": 31, "bigint": 63}
STRING_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    column_type: str
    nullable: bool
    has_default: bool
    auto_increment: bool
    max_length: int | None
    precision: int | None
    scale: int | None
    in_key: bool
    unique: bool = False
    generated: bool = False

    @property
    def options(self) -> list[str]:
        """The values of an ENUM or SET column."""
        return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", self.column_type)]


def read_columns(conn: Any, schema: str, table: str) -> list[ColumnInfo]:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
            "CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, COLUMN_KEY "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (schema, table))
        rows = cursor.fetchall()
    return [ColumnInfo(name=r[0], data_type=r[1].lower(), column_type=r[2], nullable=r[3] == "YES",
                       # MariaDB reports "NULL" as the default of a nullable column without one
                       has_default=r[4] is not None and r[4] != "NULL" or r[3] == "YES",
                       auto_increment="auto_increment" in (r[5] or "").lower(),
                       max_length=r[6], precision=r[7], scale=r[8], in_key=r[9] == "PRI", unique=r[9] == "UNI",
                       generated="generated" in (r[5] or "").lower()) for r in rows]


def foreign_key_columns(conn: Any, schema: str, table: str) -> set[str]:
    """Columns of the table that reference another table: values of ours there would break the reference."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                       "AND TABLE_NAME = %s AND REFERENCED_TABLE_NAME IS NOT NULL", (schema, table))
        return {row[0] for row in cursor.fetchall()}


def other_triggers(conn: Any, schema: str, table: str) -> list[str]:
    """The table's triggers that are not ours: a marker row fires them too."""
    from orchestrator.database.triggers import PREFIX

    with conn.cursor() as cursor:
        cursor.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s "
                       "AND EVENT_OBJECT_TABLE = %s ORDER BY TRIGGER_NAME", (schema, table))
        return [row[0] for row in cursor.fetchall() if not row[0].startswith(PREFIX)]


def update_column(columns: list[ColumnInfo], row: dict[str, Any], sample: dict[str, Any],
                  references: set[str]) -> ColumnInfo | None:
    """A column the round trip may change: not a key, unique, generated or referencing column, and not
    one the user gave `sample` values for (their constraints defeat generated values)."""
    for column in columns:
        if column.in_key or column.unique or column.generated or column.name in sample or column.name in references:
            continue
        if changed_value(column, row.get(column.name)) is not None:
            return column
    return None


def key_value(column: ColumnInfo, rng: random.Random) -> Any:
    """A fresh value for a primary key column; the caller checks it is unused."""
    kind = column.data_type
    if kind in INT_RANGES:
        bits = INT_RANGES[kind] + (1 if "unsigned" in column.column_type.lower() else 0)
        return rng.randrange(2 ** (bits - 2), 2 ** bits - 1)  # high values, away from typical ids
    if kind in ("decimal", "numeric"):
        digits = (column.precision or 10) - (column.scale or 0)
        return rng.randrange(10 ** (digits - 1), 10 ** digits) if digits > 1 else rng.randrange(1, 9)
    if kind in STRING_TYPES:
        return ("v" + uuid.uuid4().hex)[: min(column.max_length or 33, 33)]
    if kind in BINARY_TYPES:
        return uuid.uuid4().bytes[: column.max_length or 16]
    if kind == "date":
        return f"{rng.randrange(1901, 2150)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if kind in ("datetime", "timestamp"):
        return f"{rng.randrange(1971, 2037)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} 01:02:03"
    return filler_value(column)


def filler_value(column: ColumnInfo) -> Any:
    """A valid value for a NOT NULL column without a default."""
    kind = column.data_type
    if kind in INT_RANGES or kind in ("decimal", "numeric", "float", "double", "real"):
        return 1
    if kind == "bit":
        return 0
    if kind == "year":
        return 2000
    if kind in ("enum", "set"):
        return column.options[0] if column.options else ""
    if kind == "json" or (kind == "longtext" and "json" in column.column_type.lower()):
        return "{}"
    if kind in STRING_TYPES:
        return "rds-streams verify"[: column.max_length or 18]
    if kind in BINARY_TYPES:
        return b"rds"[: column.max_length or 3]
    if kind == "date":
        return "2000-01-01"
    if kind in ("datetime", "timestamp"):
        return "2000-01-01 00:00:00"
    if kind == "time":
        return "00:00:00"
    return "0"


def changed_value(column: ColumnInfo, current: Any) -> Any | None:
    """A different valid value for an UPDATE, or None when this column is no good for one."""
    kind = column.data_type
    if kind in STRING_TYPES:
        return ("rds-streams verify update" if current != "rds-streams verify update" else "rds-streams verify")[
            : column.max_length or 25]
    if kind in INT_RANGES or kind in ("decimal", "numeric"):
        return 0 if current not in (0, None) else 1
    if kind == "enum" and len(column.options) > 1:
        return column.options[1] if current == column.options[0] else column.options[0]
    return None


def marker_row(columns: list[ColumnInfo], sample: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in columns:
        if column.name in sample:
            row[column.name] = sample[column.name]
        elif column.generated:
            continue
        elif column.in_key and not column.auto_increment:
            row[column.name] = key_value(column, rng)
        elif not column.nullable and not column.has_default and not column.auto_increment:
            row[column.name] = filler_value(column)
    return row


def insert_sql(schema: str, table: str, row: dict[str, Any]) -> str:
    columns = ", ".join(quote_identifier(c) for c in row)
    return f"INSERT INTO {quote_identifier(schema)}.{quote_identifier(table)} ({columns}) VALUES ({', '.join(['%s'] * len(row))})"


def where_keys(keys: dict[str, Any]) -> str:
    return " AND ".join(f"{quote_identifier(c)} = %s" for c in keys)
