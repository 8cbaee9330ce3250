"""Typed attribute values of a change record decoded back into row values, as PyMySQL returns them.

The inverse of trigger_sql.attribute_value, for `verify` (a record's image must match the row read
back) and for tests. Values come out in PyMySQL's default conversions: int, Decimal, float, str,
bytes (also for BIT), date/datetime/timedelta (zero dates stay text), None; except where the
record is more exact than PyMySQL's default read: a FLOAT is its stored value (as
`CAST(f AS DOUBLE)` reads), a TIMESTAMP is the UTC instant (as a `time_zone = '+00:00'` session reads).
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from pymysql import converters

from orchestrator.database import table_shape as ts
from orchestrator.database.table_shape import Column, TableShape

_TEMPORAL = {"date": converters.convert_date, "datetime": converters.convert_datetime,
             "timestamp": converters.convert_datetime, "time": converters.convert_timedelta}


def decode_image(image: dict[str, dict[str, Any]], shape: TableShape) -> dict[str, Any]:
    """{column: value} for an image (NewImage, OldImage or Keys) of a record of `shape`'s table."""
    by_name = {c.name: c for c in shape.columns}
    return {name: decode_value(value, by_name[name]) for name, value in image.items()}


def decode_value(value: dict[str, Any], column: Column) -> Any:
    if len(value) != 1:
        raise ValueError(f"{column.name}: {value!r} is not one typed attribute value")
    (kind, payload), = value.items()
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return b"\x01" if payload else b"\x00"
    if kind == "B":
        return base64.b64decode(payload, validate=True)
    if kind == "N":
        return _number(payload, column)
    if kind == "S":
        return _text(payload, column)
    raise ValueError(f"{column.name}: unknown attribute type {kind!r}")


def _text(text: str, column: Column) -> Any:
    kind = column.data_type
    if kind in ts.FLOAT_TYPES:
        return float(text)
    if kind in ("decimal", "numeric"):
        return Decimal(text)
    parse = _TEMPORAL.get(kind)
    if parse is None:
        return text
    if kind in ("datetime", "timestamp"):
        text = text.removesuffix("Z").replace("T", " ")
    return parse(text)


def _number(text: str, column: Column) -> Any:
    kind = column.data_type
    if kind == "bit":
        return int(text).to_bytes(((column.numeric_precision or 1) + 7) // 8, "big")
    if kind in ts.FLOAT_TYPES:
        return float(text)
    if kind in ("decimal", "numeric"):
        return Decimal(text)
    return int(text)
