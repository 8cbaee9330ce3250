"""Apply the `[database] schema` file once, and remember that we did.

The file's SHA-256 is recorded in `rds_streams`.`schema_applied` (sql/bookkeeping.sql). A later
`up` with the same file does nothing; with a changed file it reports the change and runs nothing,
because the file may hold DDL that destroys data (DROP, a re-created table) - unless the user
forces it. An apply interrupted by a lost connection resumes at the first statement not yet run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.database.sqltext import quote_identifier, split_statements
from orchestrator.database.tunnel import is_connection_lost
from orchestrator.errors import OperationFailed
from orchestrator.resources import sql_text

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from orchestrator.config import Config

BOOKKEEPING_SCHEMA = "rds_streams"

_SELECT_RECORD = """
    SELECT `file_name`, `checksum`, `statements_total`, `statements_done`, `applied_at`
    FROM `rds_streams`.`schema_applied` WHERE `database_name` = %s"""
_START_RECORD = """
    INSERT INTO `rds_streams`.`schema_applied`
        (`database_name`, `file_name`, `checksum`, `statements_total`, `statements_done`, `started_at`, `applied_at`)
    VALUES (%s, %s, %s, %s, 0, UTC_TIMESTAMP(6), NULL)
    ON DUPLICATE KEY UPDATE `file_name` = VALUES(`file_name`), `checksum` = VALUES(`checksum`),
        `statements_total` = VALUES(`statements_total`), `statements_done` = 0,
        `started_at` = VALUES(`started_at`), `applied_at` = NULL"""
_ADVANCE_RECORD = "UPDATE `rds_streams`.`schema_applied` SET `statements_done` = %s WHERE `database_name` = %s"
_FINISH_RECORD = "UPDATE `rds_streams`.`schema_applied` SET `applied_at` = UTC_TIMESTAMP(6) WHERE `database_name` = %s"


class SchemaState(StrEnum):
    PENDING = "pending"  # never applied, or an apply was interrupted: `up` will run it
    APPLIED = "applied"  # this exact file was applied: nothing to do
    CHANGED = "changed"  # a different version was applied: reported, re-applied only with force


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    details: str
    database: str
    file_name: str
    checksum: str
    applied_checksum: str | None = None
    applied_at: dt.datetime | None = None
    statements_total: int = 0
    resume_at: int = 0  # index of the first statement still to run when resuming


@dataclass(frozen=True)
class SchemaResult:
    status: SchemaStatus  # as it stands after the call
    statements_run: int


@dataclass(frozen=True)
class _SchemaFile:
    path: Path
    checksum: str
    statements: tuple[str, ...]


def schema_status(conn: Connection, config: Config) -> SchemaStatus:
    """What `up` would do with the schema file: for `plan` and `status`. Changes nothing."""
    return _status(conn, config.database.name, _read(config.schema_path))


def apply_schema(conn: Connection, config: Config, *, force: bool = False) -> SchemaResult:
    """Apply the schema file if it is pending (or changed and `force`); idempotent, resumable."""
    database = config.database.name
    schema = _read(config.schema_path)
    _ensure_bookkeeping(conn)
    status = _status(conn, database, schema)
    if status.state is SchemaState.APPLIED or (status.state is SchemaState.CHANGED and not force):
        return SchemaResult(status, 0)
    start = status.resume_at if status.state is SchemaState.PENDING else 0
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)} CHARACTER SET utf8mb4")
        if start == 0:
            cursor.execute(_START_RECORD, (database, schema.path.name, schema.checksum, len(schema.statements)))
        conn.commit()
        conn.select_db(database)
        for index in range(start, len(schema.statements)):
            _run_statement(cursor, schema, index)
            cursor.execute(_ADVANCE_RECORD, (index + 1, database))
            conn.commit()
        cursor.execute(_FINISH_RECORD, (database,))
        conn.commit()
    return SchemaResult(_status(conn, database, schema), len(schema.statements) - start)


def _run_statement(cursor: Any, schema: _SchemaFile, index: int) -> None:
    import pymysql

    statement = schema.statements[index]
    try:
        cursor.execute(statement)
        cursor.fetchall()
    except pymysql.err.MySQLError as err:
        if is_connection_lost(err):
            raise  # run_with_reconnect retries, and the retry resumes at this statement
        first_line = statement.splitlines()[0][:80]
        reason = err.args[1] if len(err.args) > 1 else str(err)
        raise OperationFailed(
            f"{schema.path.name}: statement {index + 1} of {len(schema.statements)} ({first_line!r}) failed: {reason}",
            hint=f"fix the file and run `rds-streams up` again; the {index} statement(s) before it were applied "
                 "and will not run again",
        ) from err


def _status(conn: Connection, database: str, schema: _SchemaFile) -> SchemaStatus:
    record = _record(conn, database)
    base = {"database": database, "file_name": schema.path.name, "checksum": schema.checksum,
            "statements_total": len(schema.statements)}
    if record is None:
        return SchemaStatus(SchemaState.PENDING, f"{schema.path.name} ({len(schema.statements)} statements) has not "
                            f"been applied to {database}", **base)
    file_name, checksum, total, done, applied_at = record
    known = {"applied_checksum": checksum, "applied_at": applied_at}
    if checksum != schema.checksum:
        when = f"applied {applied_at:%Y-%m-%d %H:%M} UTC" if applied_at else "partly applied"
        return SchemaStatus(
            SchemaState.CHANGED,
            f"{schema.path.name} differs from the version {when} to {database} (sha256 {checksum[:12]} -> "
            f"{schema.checksum[:12]}); it is not re-applied, because it may drop data: change the database "
            "yourself, or re-apply the whole file with `rds-streams up --reapply-schema` if running all of it again is safe",
            **base, **known)
    if applied_at is None:
        return SchemaStatus(SchemaState.PENDING, f"applying {schema.path.name} to {database} stopped after {done} of "
                            f"{total} statements; `up` resumes at statement {done + 1}", **base, **known,
                            resume_at=done)
    return SchemaStatus(SchemaState.APPLIED, f"{schema.path.name} was applied to {database} on "
                        f"{applied_at:%Y-%m-%d %H:%M} UTC", **base, **known)


def _record(conn: Connection, database: str) -> tuple[str, str, int, int, dt.datetime | None] | None:
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(_SELECT_RECORD, (database,))
        except pymysql.err.ProgrammingError as err:
            if err.args and err.args[0] in (1049, 1146):  # no bookkeeping yet: nothing was ever applied
                return None
            raise
        return cursor.fetchone()


def _ensure_bookkeeping(conn: Connection) -> None:
    with conn.cursor() as cursor:
        for statement in split_statements(sql_text("bookkeeping.sql"), source="bookkeeping.sql"):
            cursor.execute(statement)


def _read(path: Path) -> _SchemaFile:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise OperationFailed(f"cannot read the schema file {path}: {err.strerror}",
                              hint="check [database] schema in the config") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OperationFailed(f"the schema file {path} is not UTF-8", hint="save it as UTF-8") from None
    return _SchemaFile(path, hashlib.sha256(data).hexdigest(), tuple(split_statements(text, source=str(path))))
