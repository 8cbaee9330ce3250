"""Our record of what `up` changed on an attached cluster (sql/attachment.sql): written before each
change, read by `plan`, `status` and `down`, and emptied as `down` reverses each change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.database.scripts import run_sql_file

_RECORD = """INSERT IGNORE INTO `rds_streams`.`cluster_changes`
    (`change_key`, `kind`, `target`, `name`, `had_value`, `previous_value`, `applied_value`, `recorded_at`)
    VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"""
_READ = """SELECT `change_key`, `kind`, `target`, `name`, `had_value`, `previous_value`, `applied_value`
    FROM `rds_streams`.`cluster_changes` ORDER BY `seq` DESC"""
_FORGET = "DELETE FROM `rds_streams`.`cluster_changes` WHERE `change_key` = %s"


@dataclass(frozen=True)
class RecordedChange:
    key: str
    kind: str
    target: str
    name: str
    had_value: bool
    previous: str | None
    applied: str | None


def ensure_record(conn: Any) -> None:
    run_sql_file(conn, "attachment.sql")


def record(conn: Any, change: RecordedChange) -> None:
    """Kept if a row for the same change exists: its previous value is from before our first change."""
    with conn.cursor() as cursor:
        cursor.execute(_RECORD, (change.key, change.kind, change.target, change.name, change.had_value,
                                 change.previous, change.applied))
    conn.commit()


def recorded(conn: Any) -> list[RecordedChange]:
    """Newest first (the order `down` reverses them in); empty when there is no record."""
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(_READ)
        except pymysql.err.ProgrammingError as err:
            if err.args and err.args[0] in (1049, 1146):  # no bookkeeping: nothing of ours changed
                return []
            raise
        return [RecordedChange(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])
                for row in cursor.fetchall()]


def forget(conn: Any, key: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(_FORGET, (key,))
    conn.commit()
