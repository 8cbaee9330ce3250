"""All SQL text of the triggers: the one generator module (STYLE.md), no I/O here.

A trigger turns its row into one DynamoDB Streams record built only with JSON_OBJECT/JSON_ARRAY
(never by concatenating JSON text), in a single expression, since every statement and every
re-parse of JSON costs per row (see bench/bench_triggers.py); then it hands the record to a
delivery statement. The generated SQL runs on Aurora MySQL 2 and 3 and on MariaDB 10.11 (the sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.database import table_shape as ts
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import Column, TableShape

ViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
VIEW_TYPES: tuple[ViewType, ...] = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
TriggerEvent = Literal["INSERT", "UPDATE", "DELETE"]
EVENT_NAMES: dict[TriggerEvent, str] = {"INSERT": "INSERT", "UPDATE": "MODIFY", "DELETE": "REMOVE"}
EVENT_SOURCE = "aws:dynamodb"
# DynamoDB numbers: at most 38 significant digits.
N_MAX_DIGITS = 38
EVENT_VERSION = "1.1"
RECORD_VAR = "rds_streams_record"
# Lambda's async Invoke accepts 1 MiB; the margin leaves room for the HTTP framing's slack.
MAX_PAYLOAD_BYTES = 1_048_576
PAYLOAD_MARGIN_BYTES = 4096
# The session state triggers are created under: they keep it, so their text means the same on
# every server whatever the installer's session had (backslash escapes on, no ANSI_QUOTES, and not
# strict, so no conversion inside a trigger can fail the user's write).
CREATE_SQL_MODE = "NO_ENGINE_SUBSTITUTION"

TABLE_TYPE_QUERY = "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
COLUMNS_QUERY = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME,
       NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"""
PRIMARY_KEY_QUERY = """
SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"""
TRIGGERS_QUERY = """
SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT, DEFINER
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s AND TRIGGER_NAME LIKE 'rds\\_streams\\_%%'"""


def quote_literal(text: str) -> str:
    """A string literal under CREATE_SQL_MODE (backslash is an escape character there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''").replace("\0", "\\0") + "'"


def quote_account(account: str) -> str:
    """`user@host` (as information_schema.TRIGGERS.DEFINER shows it) as a DEFINER clause value."""
    user, _, host = account.rpartition("@")
    return f"{quote_identifier(user)}@{quote_identifier(host)}"


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
        # The text of a FLOAT has 6 significant digits; as a DOUBLE it is the stored value exactly.
        value = f"JSON_OBJECT('N', CAST(CAST({ref} AS DOUBLE) AS CHAR))"
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


def image(columns: Sequence[Column], refs: Refs, indent: str, key: Sequence[str] = ()) -> str:
    pairs = f",\n{indent}  ".join(f"{quote_literal(c.name)}, {attribute_value(c, refs[c.name], c.name in key)}"
                                  for c in columns)
    return f"JSON_OBJECT(\n{indent}  {pairs})"


def unchanged_condition(columns: Sequence[Column], indent: str, new: Refs | None = None, old: Refs | None = None) -> str:
    """True when an UPDATE changed no byte of `columns`.

    Plain <=> misses case, accent and trailing-space changes under _ci collations (and -0 vs 0):
    text and floating-point columns are compared as bytes.
    """
    tests = []
    for column in columns:
        before = (old or {}).get(column.name, f"OLD.{quote_identifier(column.name)}")
        after = (new or {}).get(column.name, f"NEW.{quote_identifier(column.name)}")
        if column.data_type in ts.BYTE_EXACT_TYPES:
            tests.append(f"{before} <=> {after}")
        else:
            tests.append(f"CAST({before} AS BINARY) <=> CAST({after} AS BINARY)")
    return f"\n{indent}AND ".join(tests)


def images_for(event_name: str, view_type: ViewType) -> tuple[str, ...]:
    """Which images a record carries, as DynamoDB Streams does: only those the row change has."""
    wants_new = view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and event_name != "REMOVE"
    wants_old = view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and event_name != "INSERT"
    return (("NewImage",) if wants_new else ()) + (("OldImage",) if wants_old else ())


@dataclass(frozen=True)
class RecordSpec:
    """Everything a record needs besides the row."""

    view_type: ViewType
    region: str
    event_source_arn: str
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    event_source: str = EVENT_SOURCE

    @property
    def size_limit(self) -> int:
        return self.max_payload_bytes - PAYLOAD_MARGIN_BYTES


@dataclass(frozen=True)
class RowChange:
    """One record's row change: its event name and the rows it has (as column -> SQL expression)."""

    event_name: str  # INSERT | MODIFY | REMOVE
    new: Refs | None
    old: Refs | None

    @property
    def key_refs(self) -> Refs:
        refs = self.old if self.event_name == "REMOVE" else self.new
        assert refs is not None
        return refs


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
    measured together: the byte length of their CONCAT_WS (which skips NULLs; the binary separator
    makes every argument keep its own bytes, text converted to UTF-8 first) plus one per NULL.
    """
    fixed = [(c, ref, fixed_size(c)) for c, ref in measured if fixed_size(c) is not None]
    variable = [(c, ref) for c, ref in measured if fixed_size(c) is None]
    joined = [(c, ref) for c, ref in variable if c.data_type in _CONCAT_MEASURED_TYPES and ref != "NULL"]
    terms = [str(constant)]
    for start in range(0, len(joined), _CONCAT_GROUP):
        refs = ", ".join(_utf8_bytes(c, ref) for c, ref in joined[start:start + _CONCAT_GROUP])
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


def record_expression(shape: TableShape, change: RowChange, spec: RecordSpec, *, indent: str = "") -> str:
    """The `{"Records":[...]}` payload for one row change, as one JSON_OBJECT expression.

    SequenceNumber: UUID_SHORT() grows with every call on a server; zero-padded to 21 digits.
    """
    pad = indent + "  "
    key = shape.primary_key
    fields = ["'ApproximateCreationDateTime', UNIX_TIMESTAMP()",
              f"'Keys', {image(shape.key_columns, change.key_refs, pad, key)}"]
    size, measured = size_bytes(shape.key_columns, change.key_refs, key)
    for name in images_for(change.event_name, spec.view_type):
        refs = change.new if name == "NewImage" else change.old
        assert refs is not None
        fields.append(f"{quote_literal(name)}, {image(shape.columns, refs, pad, key)}")
        more, more_measured = size_bytes(shape.columns, refs, key)
        size, measured = size + more, measured + more_measured
    fields += ["'SequenceNumber', LPAD(UUID_SHORT(), 21, '0')",
               f"'SizeBytes', {size_expression(size, measured)}",
               f"'StreamViewType', {quote_literal(spec.view_type)}"]
    return (
        f"JSON_OBJECT('Records', JSON_ARRAY(JSON_OBJECT(\n"
        f"{indent}'eventID', UUID(),\n"
        f"{indent}'eventName', {quote_literal(change.event_name)},\n"
        f"{indent}'eventVersion', {quote_literal(EVENT_VERSION)},\n"
        f"{indent}'eventSource', {quote_literal(spec.event_source)},\n"
        f"{indent}'awsRegion', {quote_literal(spec.region)},\n"
        f"{indent}'eventSourceARN', {quote_literal(spec.event_source_arn)},\n"
        f"{indent}'dynamodb', JSON_OBJECT(\n{pad}" + f",\n{pad}".join(fields) + "))))"
    )


def keys_only_fallback(spec: RecordSpec, indent: str) -> str:
    """Replace the record in RECORD_VAR by its keys-only form, marked, if it is too large for Lambda.

    The user's write never fails because of size; keys, SequenceNumber and SizeBytes stay.
    """
    ddb = "'$.Records[0].dynamodb"
    return (f"IF LENGTH({RECORD_VAR}) > {spec.size_limit} THEN\n"
            f"{indent}  SET {RECORD_VAR} = JSON_SET(JSON_REMOVE({RECORD_VAR}, {ddb}.NewImage', {ddb}.OldImage'),\n"
            f"{indent}    {ddb}.rdsStreamsImagesOmitted', TRUE, {ddb}.rdsStreamsOmittedReason',\n"
            f"{indent}    CONCAT('the record with images takes ', LENGTH({RECORD_VAR}), "
            f"' bytes, over the {spec.size_limit} allowed for a Lambda async payload'));\n"
            f"{indent}END IF")


def record_statements(shape: TableShape, change: RowChange, spec: RecordSpec, indent: str) -> tuple[list[str], str]:
    """Statements building the record, and the expression that then holds it (keys only if too large)."""
    full = record_expression(shape, change, spec, indent=indent + "  ")
    if not images_for(change.event_name, spec.view_type):
        return [], full
    return [f"SET {RECORD_VAR} = {full}", keys_only_fallback(spec, indent)], RECORD_VAR


def direct_delivery(dialect_v2: bool, function_arn: str, record: str) -> str:
    """Hand the record to Lambda at statement time (the article's way).

    v3's is a function: a bare SELECT in a trigger is error 1415, and DO would do but, on MariaDB,
    drops the error a failing call raises. Its result goes to the record's own local variable when
    there is one: a statement other than a local SET (`SET @user_var = ...` included) has every
    routine variable it names copied, escaped, into its logged text on every row (MariaDB does so
    even with the binary log off), a second copy of the whole record. v2 has the procedure only.
    """
    if dialect_v2:
        return f"CALL mysql.lambda_async({quote_literal(function_arn)}, {record})"
    target = RECORD_VAR if record == RECORD_VAR else "@rds_streams_r"
    return f"SET {target} = lambda_async({quote_literal(function_arn)}, {record})"


def trigger_body(shape: TableShape, event: TriggerEvent, spec: RecordSpec, deliver: Callable[[str], str]) -> str:
    """BEGIN ... END for one event; `deliver` turns the record expression into the statement sending it.

    An UPDATE that changes the primary key is, as in DynamoDB, a REMOVE of the old key then an
    INSERT of the new one, delivered in that order; an UPDATE that changes no byte emits nothing.
    """
    new, old = row_refs(shape.columns, "NEW"), row_refs(shape.columns, "OLD")
    changes = {"INSERT": [RowChange("INSERT", new, None)], "DELETE": [RowChange("REMOVE", None, old)],
               "UPDATE": [RowChange("MODIFY", new, old)]}[event]
    indent = "    " if event == "UPDATE" else "  "
    body, uses_var = _deliveries(shape, changes, spec, deliver, indent)
    if event == "UPDATE":
        rekey, rekey_var = _deliveries(shape, [RowChange("REMOVE", None, old), RowChange("INSERT", new, None)],
                                       spec, deliver, indent)
        uses_var = uses_var or rekey_var
        body = (f"  IF NOT ({unchanged_condition(shape.key_columns, '      ')}) THEN\n{rekey}"
                f"  ELSEIF NOT ({unchanged_condition(shape.columns, '      ')}) THEN\n{body}  END IF;\n")
    declare = f"  DECLARE {RECORD_VAR} LONGTEXT CHARACTER SET utf8mb4;\n" if uses_var else ""
    return f"BEGIN\n{declare}{body}END"


def _deliveries(shape: TableShape, changes: Sequence[RowChange], spec: RecordSpec, deliver: Callable[[str], str],
                indent: str) -> tuple[str, bool]:
    text, uses_var = "", False
    for change in changes:
        statements, record = record_statements(shape, change, spec, indent)
        statements.append(deliver(record))
        uses_var = uses_var or record == RECORD_VAR
        text += "".join(f"{indent}{statement};\n" for statement in statements)
    return text, uses_var


def create_trigger(schema: str, name: str, table: str, event: TriggerEvent, body: str, definer: str | None,
                   timing: str = "AFTER") -> str:
    definer_clause = f"DEFINER = {quote_account(definer)} " if definer else ""
    return (f"CREATE {definer_clause}TRIGGER {quote_identifier(schema)}.{quote_identifier(name)} {timing} {event} "
            f"ON {quote_identifier(schema)}.{quote_identifier(table)} FOR EACH ROW\n{body}")


def drop_trigger(schema: str, name: str) -> str:
    return f"DROP TRIGGER IF EXISTS {quote_identifier(schema)}.{quote_identifier(name)}"


def lock_table(schema: str, table: str) -> str:
    return f"LOCK TABLES {quote_identifier(schema)}.{quote_identifier(table)} WRITE"


UNLOCK_TABLES = "UNLOCK TABLES"
SESSION_SQL_MODE_QUERY = "SELECT @@SESSION.sql_mode"
SET_SESSION_SQL_MODE = "SET SESSION sql_mode = %s"
SET_NAMES_UTF8MB4 = "SET NAMES utf8mb4"
