"""Versioned migrations: `V<n>__<name>.sql` files applied in order, each once (as Flyway does).

Each migration's SHA-256 and the checksum of every statement it has run are kept in
`rds_streams`.`migrations` (sql/bookkeeping.sql). So:
- an applied file that was edited is refused, with both checksums and how to proceed;
- a migration that failed part way resumes after the fix at its first statement not yet run,
  provided the statements already run are unchanged (a changed one is refused: it ran as it was);
- `up` never says a migration is done before its last statement committed.
`[database] schema = FILE` is the same thing with one migration, version 1.

Statements that alter a streamed table run under `LOCK TABLES ... WRITE` together with the
re-generation of the triggers, so no write fails on a trigger naming a dropped column and no
record is written in the old shape after the DDL (see `apply_migrations`' `refit`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.database.scripts import run_sql_file
from orchestrator.database.sqltext import quote_identifier, split_statements
from orchestrator.database.tunnel import is_connection_lost
from orchestrator.errors import ConfigError, OperationFailed

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from orchestrator.config import Config

BOOKKEEPING_SCHEMA = "rds_streams"
MIGRATION_NAME = re.compile(r"^V(?P<version>\d+(?:[._]\d+)*)__(?P<description>[^/\\]+)\.sql$")
# `ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] name`: the statements that change a table's columns in place.
_ALTER_TABLE = re.compile(
    r"^\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?"
    r"(?:(?P<schema>`(?:[^`]|``)+`|\w+)\s*\.\s*)?(?P<table>`(?:[^`]|``)+`|\w+)", re.IGNORECASE)

_SELECT_ROWS = """
    SELECT `version`, `file_name`, `checksum`, `statement_checksums`, `applied_at`
    FROM `rds_streams`.`migrations` WHERE `database_name` = %s"""
_SELECT_LEGACY = """
    SELECT `file_name`, `checksum`, `statements_done`, `applied_at`
    FROM `rds_streams`.`schema_applied` WHERE `database_name` = %s"""
_START_ROW = """
    INSERT INTO `rds_streams`.`migrations`
        (`database_name`, `version`, `description`, `file_name`, `checksum`, `statements_total`,
         `statement_checksums`, `started_at`, `applied_at`)
    VALUES (%s, %s, %s, %s, %s, %s, JSON_ARRAY(), UTC_TIMESTAMP(6), NULL)
    ON DUPLICATE KEY UPDATE `file_name` = VALUES(`file_name`), `checksum` = VALUES(`checksum`),
        `statements_total` = VALUES(`statements_total`)"""
_ADVANCE_ROW = """
    UPDATE `rds_streams`.`migrations`
    SET `statement_checksums` = JSON_ARRAY_APPEND(`statement_checksums`, '$', %s)
    WHERE `database_name` = %s AND `version` = %s"""
_FINISH_ROW = """
    UPDATE `rds_streams`.`migrations` SET `applied_at` = UTC_TIMESTAMP(6)
    WHERE `database_name` = %s AND `version` = %s"""
_ADOPT_LEGACY = """
    INSERT IGNORE INTO `rds_streams`.`migrations`
        (`database_name`, `version`, `description`, `file_name`, `checksum`, `statements_total`,
         `statement_checksums`, `started_at`, `applied_at`)
    VALUES (%s, '1', %s, %s, %s, %s, %s, UTC_TIMESTAMP(6), %s)"""


class MigrationState(StrEnum):
    PENDING = "pending"  # never run: `up` runs it
    PARTIAL = "partial"  # stopped part way (a failed or interrupted statement): `up` resumes it
    APPLIED = "applied"  # ran to the end with this exact content
    EDITED = "edited"  # applied (or partly) with other content: refused until resolved


@dataclass(frozen=True)
class Migration:
    version: tuple[int, ...]
    description: str
    path: Path
    checksum: str
    statements: tuple[str, ...]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def file_name(self) -> str:
        return self.path.name

    def altered_tables(self, database: str) -> list[str]:
        """Tables of `database` that its statements ALTER: their triggers are re-fitted under a lock."""
        return sorted({t for s in self.statements if (t := altered_table(s, database))})


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    state: MigrationState
    details: str
    resume_at: int = 0  # index of the first statement still to run
    applied_checksum: str | None = None
    applied_at: dt.datetime | None = None


@dataclass(frozen=True)
class MigrationsResult:
    applied: tuple[str, ...]  # file names run (or resumed) by this call
    statements_run: int


def migration_files(config: Config) -> list[Path]:
    """The migration files in order; refuses (ConfigError, exit 2) a folder that is not well formed."""
    database = config.database
    if database.schema_file is not None:
        return [config.migrations_path]
    folder = config.migrations_path
    if not folder.is_dir():
        raise ConfigError(f"{config.source}: [database] migrations: folder {database.migrations!r} not found "
                          f"(looked at {folder}); give a folder relative to the config file",
                          hint="create it with a first migration such as V1__create_tables.sql")
    versions: dict[tuple[int, ...], Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ConfigError(f"{config.source}: [database] migrations: {path.name!r} in {folder} is not named "
                              "V<version>__<description>.sql",
                              hint="rename it (e.g. V3__add_fare_column.sql) or move it out of the folder")
        version = _version(match["version"])
        if version in versions:
            raise ConfigError(f"{config.source}: [database] migrations: {path.name} and {versions[version].name} "
                              f"both have version {'.'.join(map(str, version))}", hint="give each file its own version")
        versions[version] = path
    return [versions[v] for v in sorted(versions)]


def load_migrations(config: Config) -> list[Migration]:
    if not config.applies_migrations:  # an attached cluster holds its schema; no migrations were named
        return []
    migrations = []
    for path in migration_files(config):
        if config.database.schema_file is not None:
            version, description = (1,), path.stem
        else:
            match = MIGRATION_NAME.match(path.name)
            assert match is not None  # migration_files checked every name
            version, description = _version(match["version"]), match["description"]
        migrations.append(_read(path, version, description))
    return migrations


def migration_status(conn: Connection, config: Config) -> list[MigrationStatus]:
    """Each migration's state against our bookkeeping: for `plan`, `status` and `up`. Changes nothing."""
    database = config.database.name
    rows = _rows(conn, database)
    if not rows and (legacy := _legacy_row(conn, database)) is not None:
        rows = {"1": legacy}
    return [_status(m, rows.get(m.version_text)) for m in load_migrations(config)]


def apply_migrations(conn: Connection, config: Config,
                     refit: Callable[[Connection, Sequence[str]], Any] | None = None,
                     streamed_tables: Sequence[str] = ()) -> MigrationsResult:
    """Run what is pending or partial, in order; refuse before running anything if one was edited.

    `refit(conn, tables)` re-generates the triggers of `tables` for their current shape without
    locking (the caller holds the lock): a statement that ALTERs a streamed table which has our
    triggers runs between LOCK TABLES (all such tables, WRITE) and UNLOCK TABLES together with it.
    """
    database = config.database.name
    run_sql_file(conn, "bookkeeping.sql")
    _adopt_legacy(conn, database)
    statuses = migration_status(conn, config)
    edited = [s for s in statuses if s.state is MigrationState.EDITED]
    if edited:
        raise OperationFailed("\n".join(s.details for s in edited), hint=_EDITED_HINT)
    applied: list[str] = []
    run = 0
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)} CHARACTER SET utf8mb4")
    for status in statuses:
        if status.state is MigrationState.APPLIED:
            continue
        run += _apply_one(conn, database, status, refit, streamed_tables)
        applied.append(status.migration.file_name)
    return MigrationsResult(tuple(applied), run)


_EDITED_HINT = ("a migration that ran is never run again: restore the file to what ran (e.g. `git checkout` it) and put "
                "the change in a new migration with a higher version; if the edit changes nothing that ran (comments, "
                "formatting), accept it with `rds-streams up --accept-edited-migrations`")


def accept_edited(conn: Connection, config: Config) -> list[str]:
    """Record the edited files' current checksums without running them (Flyway's `repair`)."""
    database = config.database.name
    run_sql_file(conn, "bookkeeping.sql")
    _adopt_legacy(conn, database)
    accepted = []
    with conn.cursor() as cursor:
        for status in migration_status(conn, config):
            if status.state is MigrationState.EDITED:
                m = status.migration
                done = status.resume_at if status.applied_at is None else len(m.statements)
                cursor.execute(
                    "UPDATE `rds_streams`.`migrations` SET `checksum` = %s, `statements_total` = %s, "
                    "`statement_checksums` = %s WHERE `database_name` = %s AND `version` = %s",
                    (m.checksum, len(m.statements), json.dumps([_digest(s) for s in m.statements[:done]]),
                     database, m.version_text))
                accepted.append(m.file_name)
    conn.commit()
    return accepted


def altered_table(statement: str, database: str) -> str | None:
    """The table an `ALTER TABLE` statement changes, when it is in `database`; None otherwise."""
    match = _ALTER_TABLE.match(_strip_leading_comments(statement))
    if not match:
        return None
    if match["schema"] and _unquote(match["schema"]) != database:
        return None
    return _unquote(match["table"])


def _apply_one(conn: Connection, database: str, status: MigrationStatus,
               refit: Callable[[Connection, Sequence[str]], Any] | None, streamed_tables: Sequence[str]) -> int:
    migration = status.migration
    with conn.cursor() as cursor:
        # PENDING: a new row; PARTIAL: the fixed file's checksum, as it is what runs from here on
        cursor.execute(_START_ROW, (database, migration.version_text, migration.description[:200],
                                    migration.file_name, migration.checksum, len(migration.statements)))
        conn.commit()
        conn.select_db(database)
        streamed = {t.lower(): t for t in streamed_tables}
        for index in range(status.resume_at, len(migration.statements)):
            statement = migration.statements[index]
            target = altered_table(statement, database)
            locked = refit is not None and target is not None and target.lower() in streamed \
                and _has_our_triggers(conn, database, streamed[target.lower()])
            if locked:
                _run_locked(conn, cursor, migration, index, database, streamed_tables, refit)  # type: ignore[arg-type]
            else:
                _run_statement(cursor, migration, index)
            cursor.execute(_ADVANCE_ROW, (_digest(statement), database, migration.version_text))
            conn.commit()
        cursor.execute(_FINISH_ROW, (database, migration.version_text))
        conn.commit()
    return len(migration.statements) - status.resume_at


def _run_locked(conn: Connection, cursor: Any, migration: Migration, index: int, database: str,
                streamed_tables: Sequence[str], refit: Callable[[Connection, Sequence[str]], Any]) -> None:
    """The DDL and the triggers that fit its result, with writers to every streamed table waiting.

    All streamed tables are locked, not only the altered one: another table's triggers can depend on
    this one's shape (a parent emitting its cascaded children's changes).
    """
    from orchestrator.database.catalog import table_exists
    from orchestrator.database.trigger_install import lock_for_refit, read_our_triggers
    from orchestrator.database.trigger_sql import UNLOCK_TABLES

    # Streamed tables, and tables carrying ours for them (a parent emitting its cascaded children).
    present = [t for t in streamed_tables if table_exists(conn, database, t)]
    present += sorted({t.table for t in read_our_triggers(conn, database)} - set(present))
    cursor.execute(lock_for_refit(database, present))
    try:
        _run_statement(cursor, migration, index)
        refit(conn, present)
    finally:
        cursor.execute(UNLOCK_TABLES)


def _run_statement(cursor: Any, migration: Migration, index: int) -> None:
    import pymysql

    statement = migration.statements[index]
    try:
        cursor.execute(statement)
        cursor.fetchall()
    except pymysql.err.MySQLError as err:
        if is_connection_lost(err):
            raise  # run_with_reconnect retries, and the retry resumes at this statement
        first_line = statement.strip().splitlines()[0][:80]
        reason = err.args[1] if len(err.args) > 1 else str(err)
        raise OperationFailed(
            f"{migration.file_name}: statement {index + 1} of {len(migration.statements)} ({first_line!r}) failed: {reason}",
            hint=f"fix the file and run `rds-streams up` again: it resumes at statement {index + 1}; the {index} "
                 "statement(s) before it ran and must stay as they are",
        ) from err


def _status(migration: Migration, row: dict[str, Any] | None) -> MigrationStatus:
    name, total = migration.file_name, len(migration.statements)
    if row is None:
        return MigrationStatus(migration, MigrationState.PENDING, f"{name} ({total} statement(s)) has not run")
    known = {"applied_checksum": row["checksum"], "applied_at": row["applied_at"]}
    if row["applied_at"] is not None:
        if row["checksum"] == migration.checksum:
            return MigrationStatus(migration, MigrationState.APPLIED,
                                   f"{name} ran on {row['applied_at']:%Y-%m-%d %H:%M} UTC", total, **known)
        return MigrationStatus(migration, MigrationState.EDITED,
                               f"{name} was edited after it ran on {row['applied_at']:%Y-%m-%d %H:%M} UTC "
                               f"(sha256 then {row['checksum'][:12]}, now {migration.checksum[:12]})", total, **known)
    done = row["statement_checksums"]
    if done is None:  # adopted from the old single-file bookkeeping, which kept no per-statement checksums
        if row["checksum"] != migration.checksum:
            return MigrationStatus(migration, MigrationState.EDITED,
                                   f"{name} stopped after {row['statements_done']} statement(s) and was edited since "
                                   f"(sha256 then {row['checksum'][:12]}, now {migration.checksum[:12]})", **known)
        done = [_digest(s) for s in migration.statements[: row["statements_done"]]]
    for index, digest in enumerate(done):
        if index >= total or _digest(migration.statements[index]) != digest:
            return MigrationStatus(migration, MigrationState.EDITED,
                                   f"{name}: statement {index + 1}, which already ran, was changed or removed since",
                                   index, **known)
    return MigrationStatus(migration, MigrationState.PARTIAL,
                           f"{name} stopped after {len(done)} of {total} statement(s); `up` resumes at statement "
                           f"{len(done) + 1}", len(done), **known)


def _rows(conn: Connection, database: str) -> dict[str, dict[str, Any]]:
    rows = _query(conn, _SELECT_ROWS, database)
    return {version: {"file_name": file_name, "checksum": checksum, "applied_at": applied_at,
                      "statement_checksums": json.loads(done) if done is not None else None}
            for version, file_name, checksum, done, applied_at in rows}


def _legacy_row(conn: Connection, database: str) -> dict[str, Any] | None:
    """What the single-schema-file bookkeeping of earlier releases recorded: adopted as version 1."""
    rows = _query(conn, _SELECT_LEGACY, database)
    if not rows:
        return None
    file_name, checksum, done, applied_at = rows[0]
    return {"file_name": file_name, "checksum": checksum, "applied_at": applied_at, "statement_checksums": None,
            "statements_done": done}


def _adopt_legacy(conn: Connection, database: str) -> None:
    legacy = _legacy_row(conn, database)
    if legacy is None or _rows(conn, database):
        return
    with conn.cursor() as cursor:
        cursor.execute(_ADOPT_LEGACY, (database, Path(legacy["file_name"]).stem, legacy["file_name"], legacy["checksum"],
                                       legacy["statements_done"], None, legacy["applied_at"]))
        if legacy["applied_at"] is None:  # partly applied: keep its count, checked against the file on resume
            cursor.execute("UPDATE `rds_streams`.`migrations` SET `statements_total` = %s WHERE `database_name` = %s "
                           "AND `version` = '1'", (legacy["statements_done"], database))
    conn.commit()


def _query(conn: Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(sql, args)
        except pymysql.err.ProgrammingError as err:
            if err.args and err.args[0] in (1049, 1146):  # no bookkeeping yet: nothing ever ran
                return []
            raise
        return list(cursor.fetchall())


def _has_our_triggers(conn: Connection, database: str, table: str) -> bool:
    from orchestrator.database.trigger_install import read_our_triggers

    return any(t.table == table for t in read_our_triggers(conn, database))


def _read(path: Path, version: tuple[int, ...], description: str) -> Migration:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise OperationFailed(f"cannot read the migration {path}: {err.strerror}",
                              hint="check [database] migrations in the config") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OperationFailed(f"the migration {path} is not UTF-8", hint="save it as UTF-8") from None
    statements = tuple(split_statements(text, source=str(path)))
    if not statements:
        raise OperationFailed(f"the migration {path.name} holds no SQL statement",
                              hint="add its statements, or remove the file if it is not meant to be a migration")
    return Migration(version, description, path, hashlib.sha256(data).hexdigest(), statements)


def _digest(statement: str) -> str:
    return hashlib.sha256(statement.strip().encode("utf-8")).hexdigest()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[._]", text))


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _strip_leading_comments(statement: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|#[^\n]*\n|/\*.*?\*/))*", "", statement, flags=re.DOTALL)
