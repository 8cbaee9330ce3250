"""All SQL text of the triggers: the one generator module (STYLE.md), no I/O here.

A trigger turns its row into one DynamoDB Streams record built only with JSON_OBJECT/JSON_ARRAY
(never by concatenating JSON text), in a single expression, since every statement and every
re-parse of JSON costs per row (see bench/bench_triggers.py); then it hands the record to a
delivery statement. The generated SQL runs on Aurora MySQL 2 and 3 and on MariaDB 10.11 (the sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.database import table_shape as ts
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import Column, TableShape

ViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
VIEW_TYPES: tuple[ViewType, ...] = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
TriggerEvent = Literal["INSERT", "UPDATE", "DELETE"]
EVENT_NAMES: dict[TriggerEvent, str] = {"INSERT": "INSERT", "UPDATE": "MODIFY", "DELETE": "REMOVE"}
EVENT_SOURCE = "rds-streams:aurora-mysql"
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
def quote_literal(text: str) -> str:
    """A string literal under CREATE_SQL_MODE (backslash is an escape character there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''").replace("\0", "\\0") + "'"


def quote_account(account: str) -> str:
    """`user@host` (as information_schema.TRIGGERS.DEFINER shows it) as a DEFINER clause value."""
    user, _, host = account.rpartition("@")
    return f"{quote_identifier(user)}@{quote_identifier(host)}"


def attribute_value(column: Column, row: Literal["NEW", "OLD"]) -> str:
    """A typed DynamoDB attribute value ({"N": ..}, {"S": ..}, ...) for `column` of `row`."""
    ref = f"{row}.{quote_identifier(column.name)}"
    kind = column.data_type
    if column.is_boolean_bit:
        value = f"JSON_OBJECT('BOOL', {ref} = 1)"
    elif kind == "bit":
        # A BIT value inside JSON_OBJECT yields invalid JSON (FACTS.md): go through a number.
        value = f"JSON_OBJECT('N', CAST(CAST({ref} AS UNSIGNED) AS CHAR))"
    elif kind in ts.EXACT_NUMBER_TYPES or kind in ts.FLOAT_TYPES:
        value = f"JSON_OBJECT('N', CAST({ref} AS CHAR))"
    elif kind in ts.BINARY_TYPES:
        # TO_BASE64 breaks lines every 76 characters on both MySQL and MariaDB.
        value = f"JSON_OBJECT('B', REPLACE(TO_BASE64({ref}), '\\n', ''))"
    elif kind in ts.TEMPORAL_TYPES:
        value = f"JSON_OBJECT('S', CAST({ref} AS CHAR))"
    elif kind in ts.SPATIAL_TYPES:
        value = f"JSON_OBJECT('S', ST_AsText({ref}))"
    elif kind in ts.TEXT_TYPES and kind not in ("longtext", "json"):
        # Converted here, once: a JSON_OBJECT of other charsets takes their charset, and every
        # enclosing JSON_OBJECT would convert again (or fail on a column name outside it).
        value = f"JSON_OBJECT('S', {ref})" if column.charset == "utf8mb4" else f"JSON_OBJECT('S', CONVERT({ref} USING utf8mb4))"
    else:
        # A JSON column (MariaDB: LONGTEXT, MySQL: JSON) would be embedded as JSON, not as its
        # text; so are other long texts, cheaply; and types newer than this code as text.
        value = f"JSON_OBJECT('S', CAST({ref} AS CHAR CHARACTER SET utf8mb4))"
    if column.nullable:
        return f"IF({ref} IS NULL, JSON_OBJECT('NULL', TRUE), {value})"
    return value


def image(columns: Sequence[Column], row: Literal["NEW", "OLD"], indent: str) -> str:
    pairs = f",\n{indent}  ".join(f"{quote_literal(c.name)}, {attribute_value(c, row)}" for c in columns)
    return f"JSON_OBJECT(\n{indent}  {pairs})"


def unchanged_condition(columns: Sequence[Column], indent: str) -> str:
    """True when an UPDATE changed no byte of the row.

    Plain <=> misses case, accent and trailing-space changes under _ci collations (and -0 vs 0):
    text and floating-point columns are compared as bytes.
    """
    tests = []
    for column in columns:
        old, new = f"OLD.{quote_identifier(column.name)}", f"NEW.{quote_identifier(column.name)}"
        if column.data_type in ts.BYTE_EXACT_TYPES:
            tests.append(f"{old} <=> {new}")
        else:
            tests.append(f"CAST({old} AS BINARY) <=> CAST({new} AS BINARY)")
    return f"\n{indent}AND ".join(tests)


def images_for(event: TriggerEvent, view_type: ViewType) -> tuple[str, ...]:
    """Which images a record carries, as DynamoDB Streams does: only those the row change has."""
    wants_new = view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and event != "DELETE"
    wants_old = view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and event != "INSERT"
    return (("NewImage",) if wants_new else ()) + (("OldImage",) if wants_old else ())


@dataclass(frozen=True)
class RecordSpec:
    """Everything a record needs besides the row."""

    view_type: ViewType
    region: str
    event_source_arn: str
    max_payload_bytes: int = MAX_PAYLOAD_BYTES

    @property
    def size_limit(self) -> int:
        return self.max_payload_bytes - PAYLOAD_MARGIN_BYTES


def size_bytes(columns: Sequence[Column], row: Literal["NEW", "OLD"]) -> tuple[int, list[tuple[Column, str]]]:
    """DynamoDB's item size (attribute names plus values) of an image: a constant, and the values to measure.

    Only variable-length values are measured (each counts its bytes, a NULL one byte), so it costs
    a few LENGTH() calls rather than measuring the JSON text (which would mean building the record
    twice). size_expression() turns the measured values into SQL.
    """
    constant, measured = 0, []
    for column in columns:
        constant += len(column.name.encode("utf-8"))
        fixed = _fixed_size(column)
        if fixed is None:
            measured.append((column, f"{row}.{quote_identifier(column.name)}"))
        else:
            constant += fixed
    return constant, measured


# Values of these types hold at most 65,535 bytes, so a group of them joined by CONCAT_WS stays
# within 1 MiB, far below any max_allowed_packet the record itself would fit in.
_CONCAT_MEASURED_TYPES = frozenset({"char", "varchar", "tinytext", "text", "enum", "set",
                                    "binary", "varbinary", "tinyblob", "blob"})
_CONCAT_GROUP = 16


def size_expression(constant: int, measured: Sequence[tuple[Column, str]]) -> str:
    """SizeBytes: `constant` plus, for each measured value, IFNULL(LENGTH(value), 1).

    Every SQL function in a trigger is re-resolved on every row (MariaDB), so short values are
    measured together: the byte length of their CONCAT_WS (which skips NULLs; the binary separator
    makes every argument keep its own bytes, whatever its charset or collation) plus one per NULL.
    """
    joined = [(c, ref) for c, ref in measured if c.data_type in _CONCAT_MEASURED_TYPES]
    terms = [str(constant)]
    for start in range(0, len(joined), _CONCAT_GROUP):
        refs = ", ".join(ref for _, ref in joined[start:start + _CONCAT_GROUP])
        terms.append(f"LENGTH(CONCAT_WS(CAST('' AS BINARY), {refs}))")
    terms += [f"({ref} IS NULL)" for column, ref in joined if column.nullable]
    terms += [f"IFNULL(LENGTH({ref}), 1)" for c, ref in measured if c.data_type not in _CONCAT_MEASURED_TYPES]
    return " + ".join(terms)


def _fixed_size(column: Column) -> int | None:
    kind = column.data_type
    if kind == "bit":
        return 1 if column.is_boolean_bit else ((column.numeric_precision or 1) + 7) // 8
    if kind in ts.EXACT_NUMBER_TYPES or kind in ts.FLOAT_TYPES:
        # DynamoDB: about one byte per two significant digits, plus one.
        return (column.numeric_precision or 4) // 2 + 1
    if kind in ts.TEMPORAL_TYPES:
        fraction = column.datetime_precision + 1 if column.datetime_precision else 0
        return {"date": 10, "time": 8}.get(kind, 19) + fraction
    return None


def record_expression(shape: TableShape, event: TriggerEvent, spec: RecordSpec, *, images: bool = True,
                      omitted_because: str | None = None, indent: str = "") -> str:
    """The `{"Records":[...]}` payload for one row change, as one JSON_OBJECT expression.

    `images=False` with `omitted_because` (an SQL expression) gives the keys-only fallback.
    SequenceNumber: UUID_SHORT() grows with every call on a server; zero-padded to 21 digits.
    """
    key_row = "OLD" if event == "DELETE" else "NEW"
    pad = indent + "  "
    fields = ["'ApproximateCreationDateTime', UNIX_TIMESTAMP()",
              f"'Keys', {image(shape.key_columns, key_row, pad)}"]
    size, measured = size_bytes(shape.key_columns, key_row)
    for name in images_for(event, spec.view_type):
        row: Literal["NEW", "OLD"] = "NEW" if name == "NewImage" else "OLD"
        if images:
            fields.append(f"{quote_literal(name)}, {image(shape.columns, row, pad)}")
        more, more_measured = size_bytes(shape.columns, row)
        size, measured = size + more, measured + more_measured
    fields += ["'SequenceNumber', LPAD(UUID_SHORT(), 21, '0')",
               f"'SizeBytes', {size_expression(size, measured)}",
               f"'StreamViewType', {quote_literal(spec.view_type)}"]
    if omitted_because is not None:
        fields += ["'rdsStreamsImagesOmitted', TRUE", f"'rdsStreamsOmittedReason', {omitted_because}"]
    return (
        f"JSON_OBJECT('Records', JSON_ARRAY(JSON_OBJECT(\n"
        f"{indent}'eventID', UUID(),\n"
        f"{indent}'eventName', {quote_literal(EVENT_NAMES[event])},\n"
        f"{indent}'eventVersion', {quote_literal(EVENT_VERSION)},\n"
        f"{indent}'eventSource', {quote_literal(EVENT_SOURCE)},\n"
        f"{indent}'awsRegion', {quote_literal(spec.region)},\n"
        f"{indent}'eventSourceARN', {quote_literal(spec.event_source_arn)},\n"
        f"{indent}'dynamodb', JSON_OBJECT(\n{pad}" + f",\n{pad}".join(fields) + "))))"
    )


def record_statements(shape: TableShape, event: TriggerEvent, spec: RecordSpec, indent: str) -> tuple[list[str], str]:
    """Statements building the record, and the expression that then holds it.

    A record with images that would not fit in a Lambda async payload is replaced by its keys-only
    form, marked, so the user's write never fails because of size. Keys alone always fit.
    """
    full = record_expression(shape, event, spec, indent=indent + "  ")
    if not images_for(event, spec.view_type):
        return [], full
    reason = (f"CONCAT('the record with images takes ', LENGTH({RECORD_VAR}), "
              f"' bytes, over the {spec.size_limit} allowed for a Lambda async payload')")
    fallback = record_expression(shape, event, spec, images=False, omitted_because=reason, indent=indent + "    ")
    return [
        f"SET {RECORD_VAR} = {full}",
        f"IF LENGTH({RECORD_VAR}) > {spec.size_limit} THEN\n{indent}  SET {RECORD_VAR} = {fallback};\n{indent}END IF",
    ], RECORD_VAR


def direct_delivery(dialect_v2: bool, function_arn: str, record: str) -> str:
    """Hand the record to Lambda at statement time (the article's way).

    v3's is a function: a bare SELECT in a trigger is error 1415, and DO would do but, on MariaDB,
    drops the error a failing call raises. Its result goes to the record's own local variable when
    there is one: a statement other than a local SET (`SET @user_var = ...` included) has every
    routine variable it names copied, escaped, into its logged text on every row (MariaDB does so
    even with the binary log off), a second copy of the whole record. v2 (Aurora MySQL 2.06 and later)
    calls the same native function, as AWS recommends over its deprecated mysql.lambda_async procedure;
    there it needs INVOKE LAMBDA.
    """
    target = RECORD_VAR if record == RECORD_VAR else "@rds_streams_r"
    return f"SET {target} = lambda_async({quote_literal(function_arn)}, {record})"


def trigger_body(shape: TableShape, event: TriggerEvent, spec: RecordSpec, deliver: Callable[[str], str]) -> str:
    """BEGIN ... END for one event; `deliver` turns the record expression into the statement sending it.

    Record building and delivery stay apart so that other deliveries (an outbox) can reuse the former.
    """
    indent = "    " if event == "UPDATE" else "  "
    statements, record = record_statements(shape, event, spec, indent)
    statements.append(deliver(record))
    body = "".join(f"{indent}{statement};\n" for statement in statements)
    if event == "UPDATE":
        body = f"  IF NOT ({unchanged_condition(shape.columns, '      ')}) THEN\n{body}  END IF;\n"
    declare = f"  DECLARE {RECORD_VAR} LONGTEXT CHARACTER SET utf8mb4;\n" if record == RECORD_VAR else ""
    return f"BEGIN\n{declare}{body}END"


def create_trigger(schema: str, name: str, table: str, event: TriggerEvent, body: str, definer: str | None) -> str:
    definer_clause = f"DEFINER = {quote_account(definer)} " if definer else ""
    return (f"CREATE {definer_clause}TRIGGER {quote_identifier(schema)}.{quote_identifier(name)} AFTER {event} "
            f"ON {quote_identifier(schema)}.{quote_identifier(table)} FOR EACH ROW\n{body}")


def drop_trigger(schema: str, name: str) -> str:
    return f"DROP TRIGGER IF EXISTS {quote_identifier(schema)}.{quote_identifier(name)}"


def lock_table(schema: str, table: str) -> str:
    return f"LOCK TABLES {quote_identifier(schema)}.{quote_identifier(table)} WRITE"


def lock_tables(schema: str, tables: Sequence[str]) -> str:
    return "LOCK TABLES " + ", ".join(f"{quote_identifier(schema)}.{quote_identifier(t)} WRITE" for t in tables)


UNLOCK_TABLES = "UNLOCK TABLES"
SESSION_SQL_MODE_QUERY = "SELECT @@SESSION.sql_mode"
SET_SESSION_SQL_MODE = "SET SESSION sql_mode = %s"
SET_NAMES_UTF8MB4 = "SET NAMES utf8mb4"
