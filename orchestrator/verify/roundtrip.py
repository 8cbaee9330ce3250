"""One round trip on a streamed table: insert a marker row, update it, update it without change,
delete it, then find exactly INSERT, MODIFY, REMOVE for it in the consumer's log, with the right
images and none for the no-op update. The marker row is removed even when the check fails.
Callers pass a connection of the app user: users' writes run the triggers in their definer's
context, which the master's own writes (the definer itself) never exercise."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.database.sqltext import quote_identifier
from orchestrator.verify.markers import (
    ColumnInfo,
    changed_value,
    foreign_key_columns,
    insert_sql,
    marker_row,
    read_columns,
    update_column,
    where_keys,
)
from orchestrator.verify.sink_readers import Found, RecordReader

CONSTRAINT_ERRORS = {1451, 1452, 3819, 4025, 1364, 1048, 1265, 1366}  # FK, CHECK, NOT NULL, bad value


@dataclass
class RoundTrip:
    table: str
    ok: bool = False
    detail: str = ""
    latencies_ms: dict[str, float] = field(default_factory=dict)


def round_trip(conn: Any, reader: RecordReader, schema: str, table: str, *, view_type: str,
               sample: dict[str, Any], timeout: float, grace: float, cancel: CancelToken,
               commit: bool = True) -> RoundTrip:
    """`commit=False`: all four writes in one transaction, rolled back, so nothing they did (the user's
    own triggers included) remains, even if verify is killed; for direct delivery, which emits at
    statement time as Aurora's lambda_async does."""
    import pymysql

    result = RoundTrip(table=f"{schema}.{table}")
    columns = read_columns(conn, schema, table)
    keys_cols = [c for c in columns if c.in_key]
    rng = random.Random()
    row = _unused_marker(conn, schema, table, columns, sample, rng)
    keys = {c.name: row[c.name] for c in keys_cols if c.name in row}
    update_col = update_column(columns, row, sample, foreign_key_columns(conn, schema, table))
    commits: dict[str, float] = {}

    def end_statement() -> None:
        if commit:
            conn.commit()

    try:
        with conn.cursor() as cursor:
            try:
                cursor.execute(insert_sql(schema, table, row), tuple(row.values()))
            except pymysql.err.MySQLError as err:
                code = err.args[0] if err.args else None
                hint = "" if sample else (" ; give values for it in [[stream.tables]] sample = { column = value }"
                                          if code in CONSTRAINT_ERRORS else "")
                result.detail = f"could not insert a marker row: {err.args[-1]}{hint}"
                return result
            keys.update({c.name: cursor.lastrowid for c in keys_cols if c.auto_increment and c.name not in keys})
            end_statement()
            commits["INSERT"] = time.time()
            target = f"{quote_identifier(schema)}.{quote_identifier(table)}"
            if update_col is not None:
                new = changed_value(update_col, row.get(update_col.name))
                update = f"UPDATE {target} SET {quote_identifier(update_col.name)} = %s WHERE {where_keys(keys)}"
                cursor.execute(update, (new, *keys.values()))
                end_statement()
                commits["MODIFY"] = time.time()
                cursor.execute(update, (new, *keys.values()))  # changes nothing: must emit nothing
                end_statement()
            cursor.execute(f"DELETE FROM {target} WHERE {where_keys(keys)}", tuple(keys.values()))
            end_statement()
            commits["REMOVE"] = time.time()
    finally:
        _remove_marker(conn, schema, table, keys)
    records = _wait_for_records(reader, table, keys, set(commits), timeout, grace, cancel)
    result.ok, result.detail = _judge(records, commits, view_type, update_col, keys)
    for name, (_record, logged_ms) in _first_of_each(records).items():
        result.latencies_ms[name] = max(0.0, logged_ms - commits[name] * 1000)
    return result


def _unused_marker(conn: Any, schema: str, table: str, columns: list[ColumnInfo], sample: dict[str, Any],
                   rng: random.Random) -> dict[str, Any]:
    for _ in range(20):
        row = marker_row(columns, sample, rng)
        keys = {c.name: row[c.name] for c in columns if c.in_key and c.name in row}
        if not keys:
            return row
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {quote_identifier(schema)}.{quote_identifier(table)} WHERE {where_keys(keys)}",
                           tuple(keys.values()))
            if cursor.fetchone() is None:
                return row
        if all(c.name in sample for c in columns if c.in_key):
            break
    raise RuntimeError(f"no unused marker key found in {schema}.{table}")


def _remove_marker(conn: Any, schema: str, table: str, keys: dict[str, Any]) -> None:
    if not keys:
        return
    try:
        conn.rollback()
        with conn.cursor() as cursor:
            cursor.execute(f"DELETE FROM {quote_identifier(schema)}.{quote_identifier(table)} WHERE {where_keys(keys)}",
                           tuple(keys.values()))
        conn.commit()
    except Exception:  # the connection is gone: the row went with the rolled-back transaction
        pass


def _search_term(keys: dict[str, Any]) -> str:
    return str(next((v for v in keys.values() if isinstance(v, str)), next(iter(keys.values()))))


def _wait_for_records(reader: RecordReader, table: str, keys: dict[str, Any], wanted: set[str],
                      timeout: float, grace: float, cancel: CancelToken) -> list[tuple[dict[str, Any], int]]:
    deadline = time.monotonic() + timeout
    complete_at: float | None = None
    delay = 0.05
    while True:
        records = _records_for(reader.records(_search_term(keys)), table, keys)
        names = {r["eventName"] for r, _ in records}
        if wanted <= names and complete_at is None:
            complete_at = time.monotonic()  # then wait a little for anything extra (a no-op MODIFY)
        now = time.monotonic()
        if (complete_at is not None and now - complete_at >= grace) or now > deadline:
            return records
        if cancel.wait(delay):
            cancel.raise_if_cancelled("stopped waiting for change records")
        delay = min(delay * 1.5, 1.0)


def _records_for(candidates: list[Found], table: str, keys: dict[str, Any]) -> list[tuple[dict, int]]:
    found = []
    for record, at_ms in candidates:
        if not record.get("eventSourceARN", "").endswith(f".{table}"):
            continue
        record_keys = {name: _plain(value) for name, value in record.get("dynamodb", {}).get("Keys", {}).items()}
        if all(record_keys.get(name) == _text(value) for name, value in keys.items()):
            found.append((record, at_ms))
    return sorted(found, key=lambda pair: int(pair[0]["dynamodb"].get("SequenceNumber", "0")))


def _plain(typed: dict[str, Any]) -> str | None:
    """A typed attribute value as text, for comparing keys and changed columns."""
    if not isinstance(typed, dict) or len(typed) != 1:
        return None
    (kind, value), = typed.items()
    return None if kind == "NULL" else str(value).lower() if kind == "BOOL" else str(value)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return str(value)


def _first_of_each(records: list[tuple[dict, int]]) -> dict[str, tuple[dict, int]]:
    first: dict[str, tuple[dict, int]] = {}
    for record, logged in records:
        first.setdefault(record["eventName"], (record, logged))
    return first


def _judge(records: list[tuple[dict, int]], commits: dict[str, float], view_type: str,
           update_col: ColumnInfo | None, keys: dict[str, Any]) -> tuple[bool, str]:
    names = [r["eventName"] for r, _ in records]
    expected = [n for n in ("INSERT", "MODIFY", "REMOVE") if n in commits]
    if sorted(set(names)) != sorted(expected):
        missing = [n for n in expected if n not in names]
        return False, f"records found: {names or 'none'}; missing {missing}" if missing else f"unexpected records {names}"
    if names.count("MODIFY") > 1:
        return False, f"the update that changed nothing emitted a record too: {names}"
    if len(names) != len(set(names)):
        return False, f"duplicate records: {names}"
    first = _first_of_each(records)
    wants_new = view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    wants_old = view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
    for name, (record, _) in first.items():
        stream = record.get("dynamodb", {})
        if stream.get("StreamViewType") != view_type:
            return False, f"{name} has StreamViewType {stream.get('StreamViewType')}, expected {view_type}"
        has_new, has_old = "NewImage" in stream, "OldImage" in stream
        if has_new != (wants_new and name != "REMOVE") or has_old != (wants_old and name != "INSERT"):
            return False, f"{name} carries the wrong images for {view_type} (new: {has_new}, old: {has_old})"
    if update_col is not None and view_type == "NEW_AND_OLD_IMAGES":
        stream = first["MODIFY"][0]["dynamodb"]
        old, new = (_plain(stream[image].get(update_col.name, {})) for image in ("OldImage", "NewImage"))
        if old == new:
            return False, f"MODIFY shows {update_col.name} unchanged ({old!r})"
    note = "" if update_col is not None else " (no column that can be updated: MODIFY not checked)"
    return True, f"{', '.join(expected)} with the right images, none for the no-op update{note}"


def canary_write(conn: Any, marker: str) -> None:
    """Insert a canary row keyed by `marker` and delete it, each committed: an INSERT and a REMOVE record.
    A failing Lambda call fails the write here as it fails the user's (error 1227 or 1873)."""
    import pymysql

    from orchestrator.errors import OperationFailed
    from orchestrator.verify.canary import CANARY_SCHEMA, CANARY_TABLE

    target = f"{quote_identifier(CANARY_SCHEMA)}.{quote_identifier(CANARY_TABLE)}"
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"INSERT INTO {target} (`id`, `note`) VALUES (%s, 'rds-streams smoke test')", (marker,))
            conn.commit()
            cursor.execute(f"DELETE FROM {target} WHERE `id` = %s", (marker,))
            conn.commit()
    except pymysql.err.MySQLError as err:
        code = err.args[0] if err.args else None
        hints = {1227: "the triggers' definer has no active Lambda role: see what the grants step of `rds-streams up` "
                       "did, and run it again",
                 1873: "the cluster cannot reach Lambda: check its egress (NAT gateway or Lambda endpoint)"}
        raise OperationFailed(f"the app user's write on the canary failed, as users' writes on streamed tables "
                              f"would: {err.args[-1]}",
                              hint=hints.get(code, "the triggers fire on every write to a streamed table; "
                                                   "check the database error")) from err


def rollback_emits(conn: Any, reader: RecordReader, schema: str, table: str, *, wait: float,
                   cancel: CancelToken) -> bool:
    """Insert a marker row and roll back; whether a record for it reached the consumer within `wait`."""
    columns = read_columns(conn, schema, table)
    row = _unused_marker(conn, schema, table, columns, {}, random.Random())
    keys = {c.name: row[c.name] for c in columns if c.in_key and c.name in row}
    conn.begin()
    try:
        with conn.cursor() as cursor:
            cursor.execute(insert_sql(schema, table, row), tuple(row.values()))
    finally:
        conn.rollback()
    records = _wait_for_records(reader, table, keys, {"INSERT"}, wait, 0.0, cancel)
    return bool(records)


def find_marker(reader: RecordReader, marker: str, *, timeout: float, cancel: CancelToken) -> list[Found]:
    """The change records whose text contains `marker`, waiting with backoff up to `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        found = [(r, at) for r, at in reader.records(marker) if marker in json.dumps(r)]
        if found or time.monotonic() > deadline:
            return found
        if cancel.wait(delay):
            cancel.raise_if_cancelled("stopped waiting for the canary's records")
        delay = min(delay * 1.5, 2.0)
