"""Typed DynamoDB attribute values of MySQL columns, and their size by DynamoDB's item-size rules.

SQL text only, no I/O (trigger_sql.py builds records from these). The mapping is the README's record
reference: one attribute type per MySQL type, N only for numbers DynamoDB can hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.database import table_shape as ts
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import Column

# DynamoDB numbers: at most 38 significant digits.
N_MAX_DIGITS = 38


Refs = Mapping[str, str]  # column name -> the SQL expression giving its value (NEW.`c`, OLD.`c`, a.`c`, NULL)


def row_refs(columns: Sequence[Column], prefix: str) -> dict[str, str]:
    """`prefix`.`column` for every column: the row a trigger (NEW, OLD) or a query alias sees."""
    return {c.name: f"{prefix}.{quote_identifier(c.name)}" for c in columns}


def decimal_fits_n(column: Column) -> bool:
    """Whether every value of a DECIMAL column fits a DynamoDB number (38 significant digits)."""
    return (column.numeric_precision or 65) <= N_MAX_DIGITS


def attribute_type(column: Column, in_key: bool = False) -> str:
    """The attribute type a column is always emitted as (NULL values aside): the README's table."""
    kind = column.data_type
    if column.is_boolean_bit and not in_key:
        return "BOOL"
    if kind == "bit" or kind in ts.INTEGER_TYPES or kind in ("year", "float"):
        return "N"
    if kind in ("decimal", "numeric"):
        return "N" if decimal_fits_n(column) else "S"
    if kind in ts.BINARY_TYPES:
        return "B"
    return "S"


def attribute_value(column: Column, ref: str, in_key: bool = False) -> str:
    """A typed DynamoDB attribute value ({"N": ..}, {"S": ..}, ...) of `column`, whose value `ref` gives.

    Every N is a number DynamoDB can hold (at most 38 significant digits, magnitude within
    1E-130..9.99E+125), so boto3's TypeDeserializer and powertools decode every image; a type whose
    values may not fit (DOUBLE, DECIMAL over 38 digits) is always S with its exact text.
    """
    kind, kind_of = column.data_type, attribute_type(column, in_key)
    if kind_of == "BOOL":
        value = f"JSON_OBJECT('BOOL', {ref} = 1)"
    elif kind == "bit":
        # A BIT value inside JSON_OBJECT yields invalid JSON (FACTS.md): go through a number.
        value = f"JSON_OBJECT('N', CAST(CAST({ref} AS UNSIGNED) AS CHAR))"
    elif kind == "year":
        value = f"JSON_OBJECT('N', CAST({ref} + 0 AS CHAR))"  # the zero year reads as "0000"
    elif kind == "float":
        # The text of a FLOAT has 6 significant digits; as a DOUBLE it is the stored value exactly
        # (`+ 0E0` rather than CAST(... AS DOUBLE), which MySQL 5.7, Aurora 2, lacks).
        value = f"JSON_OBJECT('N', CAST({ref} + 0E0 AS CHAR))"
    elif kind in ("decimal", "numeric") and kind_of == "N" and column.numeric_scale:
        # Normalised as DynamoDB stores it: no trailing zeros after the point.
        value = f"JSON_OBJECT('N', TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST({ref} AS CHAR))))"
    elif kind in ts.EXACT_NUMBER_TYPES:
        value = f"JSON_OBJECT('{kind_of}', CAST({ref} AS CHAR))"
    elif kind in ts.FLOAT_TYPES:
        value = f"JSON_OBJECT('S', CAST({ref} AS CHAR))"  # DOUBLE: the shortest text that reads back exactly
    elif kind in ts.BINARY_TYPES:
        # TO_BASE64 breaks lines every 76 characters on both MySQL and MariaDB.
        value = f"JSON_OBJECT('B', REPLACE(TO_BASE64({ref}), '\\n', ''))"
    elif kind == "timestamp":
        value = f"JSON_OBJECT('S', {utc_instant(ref, column.datetime_precision or 0)})"
    elif kind == "datetime":
        value = f"JSON_OBJECT('S', REPLACE(CAST({ref} AS CHAR), ' ', 'T'))"
    elif kind in ts.TEMPORAL_TYPES:
        value = f"JSON_OBJECT('S', CAST({ref} AS CHAR))"
    elif kind in ts.SPATIAL_TYPES:
        value = f"JSON_OBJECT('S', ST_AsText({ref}))"
    elif kind in ts.TEXT_TYPES and kind not in ("longtext", "json"):
        # Converted here, once: a JSON_OBJECT of other charsets takes their charset, and every
        # enclosing JSON_OBJECT would convert again (or fail on a column name outside it).
        value = f"JSON_OBJECT('S', {utf8_text(column, ref)})"
    else:
        # A JSON column (MariaDB: LONGTEXT, MySQL: JSON) would be embedded as JSON, not as its
        # text; so are other long texts, cheaply; and types newer than this code as text.
        value = f"JSON_OBJECT('S', CAST({ref} AS CHAR CHARACTER SET utf8mb4))"
    if column.nullable and ref != "NULL":
        return f"IF({ref} IS NULL, JSON_OBJECT('NULL', TRUE), {value})"
    return "JSON_OBJECT('NULL', TRUE)" if ref == "NULL" else value


def utf8_text(column: Column, ref: str) -> str:
    return ref if column.charset == "utf8mb4" else f"CONVERT({ref} USING utf8mb4)"


def utc_instant(ref: str, precision: int) -> str:
    """A TIMESTAMP as its UTC instant, `2024-01-01T00:00:00[.ffffff]Z`, whatever the session's time zone.

    UNIX_TIMESTAMP of a TIMESTAMP column reads the stored instant; adding it to the epoch is plain
    arithmetic (no time zone tables, no daylight-saving ambiguity). The zero TIMESTAMP (stored as 0)
    stays `0000-00-00T00:00:00`, without Z: it is no instant.
    """
    seconds = f"UNIX_TIMESTAMP({ref})"
    if precision:
        moment = f"TIMESTAMP'1970-01-01 00:00:00' + INTERVAL {seconds} * 1000000 MICROSECOND"
        text = f"LEFT(DATE_FORMAT({moment}, '%Y-%m-%dT%H:%i:%s.%f'), {20 + precision})"
    else:
        text = f"DATE_FORMAT(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL {seconds} SECOND, '%Y-%m-%dT%H:%i:%s')"
    zero = "0000-00-00T00:00:00" + ("." + "0" * precision if precision else "")
    return f"IF(IFNULL({seconds}, 0) = 0, '{zero}', CONCAT({text}, 'Z'))"


def size_bytes(columns: Sequence[Column], refs: Refs, key: Sequence[str] = ()) -> tuple[int, list[tuple[Column, str]]]:
    """DynamoDB's item size of an image (README, "SizeBytes"): a constant, and the values to measure.

    Per attribute: its name's UTF-8 bytes plus its value's: S its UTF-8 bytes, B its raw bytes,
    NULL and BOOL 1, N 1 + ceil(d / 2) for the d significant digits the column's type can hold.
    Only values of variable length (and NULL-able fixed ones) are measured, in size_expression().
    """
    constant, measured = 0, []
    for column in columns:
        constant += len(column.name.encode("utf-8"))
        fixed = fixed_size(column, column.name in key)
        if fixed is not None:
            constant += fixed
        if fixed is None or (column.nullable and fixed > 1):
            measured.append((column, refs[column.name]))
    return constant, measured


# Values of these types hold at most 65,535 bytes, so a group of them joined by CONCAT_WS stays
# within 1 MiB, far below any max_allowed_packet the record itself would fit in.
_CONCAT_MEASURED_TYPES = frozenset({"char", "varchar", "tinytext", "text", "enum", "set",
                                    "binary", "varbinary", "tinyblob", "blob"})
_CONCAT_GROUP = 16


def size_expression(constant: int, measured: Sequence[tuple[Column, str]]) -> str:
    """SizeBytes: `constant` plus each measured value's bytes (a NULL one: 1; a NULL fixed-size one: 1 - its size).

    Every SQL function in a trigger is re-resolved on every row (MariaDB), so short values are
    measured together: the byte length of their CONCAT_WS (which skips NULLs) plus one per NULL.
    Texts of one collation are joined as they are and converted to UTF-8 once (mixing collations
    could fail the write); bytes are joined with a binary separator, which keeps every argument's own.
    """
    fixed = [(c, ref, fixed_size(c)) for c, ref in measured if fixed_size(c) is not None]
    variable = [(c, ref) for c, ref in measured if fixed_size(c) is None]
    joined = [(c, ref) for c, ref in variable if c.data_type in _CONCAT_MEASURED_TYPES and ref != "NULL"]
    groups: dict[str, list[tuple[Column, str]]] = {}
    for column, ref in joined:
        texts = column.data_type in ts.TEXT_TYPES and column.collation
        groups.setdefault(f"{column.charset} {column.collation}" if texts else "", []).append((column, ref))
    terms = [str(constant)]
    for group, members in groups.items():
        for start in range(0, len(members), _CONCAT_GROUP):
            chunk = members[start:start + _CONCAT_GROUP]
            if group:
                joined_text = f"CONCAT_WS('', {', '.join(ref for _, ref in chunk)})"
                terms.append(f"LENGTH({utf8_text(chunk[0][0], joined_text)})")
            else:
                refs = ", ".join(_utf8_bytes(c, ref) for c, ref in chunk)
                terms.append(f"LENGTH(CONCAT_WS(CAST('' AS BINARY), {refs}))")
    terms += [f"({ref} IS NULL)" for column, ref in joined if column.nullable]
    terms += ["1" if ref == "NULL" else f"IFNULL(LENGTH({_utf8_bytes(c, ref)}), 1)" for c, ref in variable
              if (c, ref) not in joined]
    terms += [f"{1 - (size or 0)}" if ref == "NULL" else f"({ref} IS NULL) * {1 - (size or 0)}" for c, ref, size in fixed]
    return " + ".join(terms)


def _utf8_bytes(column: Column, ref: str) -> str:
    """What LENGTH() of a value's emitted text (or raw bytes, for B) is taken of."""
    kind = column.data_type
    if kind in ts.TEXT_TYPES:
        return utf8_text(column, ref)
    if kind in ts.SPATIAL_TYPES:
        return f"ST_AsText({ref})"
    return ref  # binary: raw bytes; DOUBLE, DECIMAL as S and TIME: their text is ASCII


def _digits(column: Column) -> int:
    kind = column.data_type
    if kind == "bit":
        return len(str(2 ** (column.numeric_precision or 1) - 1))
    if kind in ("decimal", "numeric"):
        return column.numeric_precision or 10
    if kind == "float":
        return 17  # the shortest decimal text of a single-precision value as a double
    return {"tinyint": 3, "smallint": 5, "mediumint": 8, "int": 10, "integer": 10, "year": 4}.get(
        kind, 20 if column.unsigned else 19)


def fixed_size(column: Column, in_key: bool = False) -> int | None:
    """The bytes a non-NULL value of `column` always takes in DynamoDB's item size, or None if it varies."""
    kind_of, kind = attribute_type(column, in_key), column.data_type
    if kind_of == "BOOL":
        return 1
    if kind_of == "N":
        return 1 + (_digits(column) + 1) // 2
    fraction = column.datetime_precision + 1 if column.datetime_precision else 0
    if kind == "date":
        return 10
    if kind == "datetime":
        return 19 + fraction
    if kind == "timestamp":
        return 20 + fraction  # the zero TIMESTAMP, without Z, counts one byte too many
    return None
