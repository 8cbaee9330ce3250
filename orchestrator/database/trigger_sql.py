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
from orchestrator.database.attributes import Refs, attribute_value, row_refs, size_bytes, size_expression
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import Column, TableShape

ViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
VIEW_TYPES: tuple[ViewType, ...] = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
TriggerEvent = Literal["INSERT", "UPDATE", "DELETE"]
EVENT_NAMES: dict[TriggerEvent, str] = {"INSERT": "INSERT", "UPDATE": "MODIFY", "DELETE": "REMOVE"}
EVENT_SOURCE = "aws:dynamodb"
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
       NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLLATION_NAME
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


def record_expression(shape: TableShape, change: RowChange, spec: RecordSpec, *, indent: str = "",
                      extra: Sequence[str] = ()) -> str:
    """The `{"Records":[...]}` payload for one row change, as one JSON_OBJECT expression.

    SequenceNumber: UUID_SHORT() grows with every call on a server; zero-padded to 21 digits.
    `extra`: more `'name', expression` pairs for `dynamodb` (a backfill's snapshot marker).
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
               f"'StreamViewType', {quote_literal(spec.view_type)}", *extra]
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


def keys_only(record: str, spec: RecordSpec, indent: str) -> str:
    """`record` (an expression) without its images, marked, saying why: for one too large for Lambda.

    The user's write never fails because of size; keys, SequenceNumber and SizeBytes stay.
    """
    ddb = "'$.Records[0].dynamodb"
    return (f"JSON_SET(JSON_REMOVE({record}, {ddb}.NewImage', {ddb}.OldImage'),\n"
            f"{indent}  {ddb}.rdsStreamsImagesOmitted', TRUE, {ddb}.rdsStreamsOmittedReason',\n"
            f"{indent}  CONCAT('the record with images takes ', LENGTH({record}), "
            f"' bytes, over the {spec.size_limit} allowed for a Lambda async payload'))")


def keys_only_fallback(spec: RecordSpec, indent: str) -> str:
    """Replace the record in RECORD_VAR by its keys-only form if it is too large for Lambda."""
    return (f"IF LENGTH({RECORD_VAR}) > {spec.size_limit} THEN\n"
            f"{indent}  SET {RECORD_VAR} = {keys_only(RECORD_VAR, spec, indent + '  ')};\n"
            f"{indent}END IF")


def direct_delivery_rows(function_arn: str, record: str, rows: str) -> str:
    """Hand Lambda one record per row `rows` (FROM ... WHERE ...) selects, in one statement.

    An aggregate over the function's results calls it once per row without materialising the rows
    (a cursor would put every record in an on-disk temporary table). Aurora MySQL 2 and 3 both have
    the native lambda_async function.
    """
    return f"SET @rds_streams_r = (SELECT COUNT(lambda_async({quote_literal(function_arn)}, {record}))\n    {rows})"


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
    even with the binary log off), a second copy of the whole record. v2 (Aurora MySQL 2.06 and later)
    calls the same native function, as AWS recommends over its deprecated mysql.lambda_async procedure;
    there it needs INVOKE LAMBDA.
    """
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
