"""Backfill: every existing row of a streamed table into its stream, chunk by chunk, while writers write.

The SQL and the argument for its consistency are in backfill_sql.py and README.md ("Backfill"). Here:
the chunk loop on one connection, its bookkeeping (sql/backfill.sql, advanced in the chunk's own
transaction), retries when a chunk meets a writer's lock, rate control and cancellation between chunks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.database import backfill_sql as sql
from orchestrator.database.scripts import run_sql_file
from orchestrator.database.table_shape import TableShape
from orchestrator.database.triggers import StreamSettings, record_spec, rows_delivery
from orchestrator.errors import OperationFailed, UsageError

MAX_CONFLICTS = 200  # chunk attempts in a row that met a writer's lock before the backfill gives up


@dataclass(frozen=True)
class BackfillOptions:
    chunk_rows: int = 1000
    rate: float | None = None         # rows per second at most; None: as fast as the chunks go
    row_filter: str | None = None     # --where
    restart: bool = False             # start over even where an unfinished backfill could resume
    resume_only: bool = False         # only resume unfinished backfills


@dataclass(frozen=True)
class BackfillState:
    """A table's row in `rds_streams`.`backfills`."""

    schema: str
    table: str
    run_id: str
    row_filter: str | None
    last_key: tuple[Any, ...] | None
    chunks_done: int
    rows_done: int
    rows_total: int
    finished: bool
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


def ensure_bookkeeping(conn: Any) -> None:
    run_sql_file(conn, "backfill.sql")


def read_state(conn: Any, schema: str, table: str) -> BackfillState | None:
    with conn.cursor() as cursor:
        cursor.execute(sql.READ_STATE, (schema, table))
        row = cursor.fetchone()
    if row is None:
        return None
    run_id, row_filter, last_key, chunks, done, total, started, _updated, finished = row
    return BackfillState(schema, table, run_id, row_filter, decode_key(last_key), int(chunks), int(done), int(total),
                         finished is not None, started, finished)


def read_all_states(conn: Any) -> list[dict[str, Any]] | None:
    """Every table's latest backfill, for `status`; None where no backfill ever ran (read-only: creates nothing)."""
    import pymysql

    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.READ_ALL)
            rows = cursor.fetchall()
    except pymysql.err.ProgrammingError:
        return None
    names = ("schema", "table", "run_id", "where", "chunks_done", "rows_done", "rows_total", "started_at",
             "updated_at", "finished_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def begin(conn: Any, shape: TableShape, options: BackfillOptions) -> BackfillState | None:
    """The backfill to run for `shape`'s table: the unfinished one resumed, or a new one (None: nothing to do).

    A new one counts its rows first (for progress); an unfinished one resumes only with the same --where.
    """
    state = read_state(conn, shape.schema, shape.table)
    unfinished = state is not None and not state.finished
    if unfinished and not options.restart:
        assert state is not None
        if options.row_filter is not None and options.row_filter != state.row_filter:
            raise UsageError(f"{shape.qualified_name} has an unfinished backfill with --where {state.row_filter!r}, "
                             f"not {options.row_filter!r}",
                             hint="resume it without --where (or with the same one), or start over with --restart")
        return state
    if options.resume_only:
        return None
    run_id = uuid.uuid4().hex
    with conn.cursor() as cursor:
        cursor.execute(sql.count_rows(shape, options.row_filter))
        total = int(cursor.fetchone()[0])
        cursor.execute(sql.BEGIN_RUN, (shape.schema, shape.table, run_id, options.row_filter, total))
    conn.commit()
    return BackfillState(shape.schema, shape.table, run_id, options.row_filter, None, 0, 0, total, False)


@dataclass(frozen=True)
class ChunkDone:
    state: BackfillState
    rows: int          # in this chunk
    seconds: float     # since this run of the backfill started


def run_backfill(conn: Any, shape: TableShape, settings: StreamSettings, state: BackfillState,
                 options: BackfillOptions, cancel: CancelToken, on_chunk: Callable[[ChunkDone], None],
                 locking: sql.Locking) -> BackfillState:
    """Emit chunks until the table is done (or cancelled: then Cancelled says how to resume).

    `conn` is a connection of its own (autocommit, set up by `prepare_session`) whose current
    database is the table's schema: Aurora's lambda_async is native, the sandbox's lives there.
    """
    chunks = sql.ChunkSql(shape, record_spec(settings, shape.schema, shape.table), locking, state.run_id,
                          state.row_filter)
    deliver = rows_delivery(settings)
    started, emitted, size = time.monotonic(), 0, options.chunk_rows
    while True:
        if cancel.cancelled:
            raise _stopped(shape, state)
        keys, size = _chunk_with_retries(conn, chunks, state, size, options.chunk_rows, deliver, cancel)
        if keys is None:  # the table is done
            with conn.cursor() as cursor:
                cursor.execute(sql.FINISH, (shape.schema, shape.table, state.run_id))
            conn.commit()
            return replace(state, finished=True)
        state = replace(state, last_key=keys[-1], chunks_done=state.chunks_done + 1, rows_done=state.rows_done + len(keys))
        emitted += len(keys)
        on_chunk(ChunkDone(state, len(keys), time.monotonic() - started))
        if options.rate:
            ahead = emitted / options.rate - (time.monotonic() - started)
            if ahead > 0:
                cancel.wait(ahead)


def _chunk_with_retries(conn: Any, chunks: sql.ChunkSql, state: BackfillState, size: int, full: int,
                        deliver: Callable[[str, str], str], cancel: CancelToken) -> tuple[list[tuple[Any, ...]] | None, int]:
    """One chunk committed: its keys (None when no row is left) and the chunk size to go on with.

    A chunk meeting a writer's lock is rolled back and tried again shortly, halved after a few
    conflicts (a smaller range is less likely to hold a busy row), back to full size after a success.
    """
    import pymysql

    conflicts = 0
    while True:
        try:
            keys = _one_chunk(conn, chunks, state, size, deliver)
            return keys, min(full, size * 2)
        except pymysql.err.OperationalError as err:
            conn.rollback()
            if err.args[0] not in sql.LOCK_CONFLICT_ERRORS:
                raise
            conflicts += 1
            if conflicts >= MAX_CONFLICTS:
                raise OperationFailed(f"backfill of {chunks.shape.qualified_name}: {conflicts} attempts in a row met "
                                      f"writers' locks after key {state.last_key!r}",
                                      hint="run it again later or with a smaller --chunk; it resumes there") from err
            if conflicts % 3 == 0:
                size = max(1, size // 2)
            if cancel.wait(min(0.2, 0.002 * 2 ** min(conflicts, 7))):
                raise _stopped(chunks.shape, state) from err


def _stopped(shape: TableShape, state: BackfillState) -> Exception:
    from orchestrator.errors import Cancelled

    return Cancelled(f"backfill of {shape.qualified_name} stopped after chunk {state.chunks_done} "
                     f"({state.rows_done} of about {state.rows_total} rows emitted)",
                     hint="run `rds-streams backfill` again: it resumes at the next chunk")


def _one_chunk(conn: Any, chunks: sql.ChunkSql, state: BackfillState, size: int,
               deliver: Callable[[str, str], str]) -> list[tuple[Any, ...]] | None:
    after = None if state.last_key is None else key_literals(chunks.shape, state.last_key, conn.escape)
    with conn.cursor() as cursor:
        cursor.execute(sql.START)
        cursor.execute(chunks.lock_keys(after, size))
        keys = [tuple(row) for row in cursor.fetchall()]
        if not keys:
            conn.rollback()
            return None
        if state.last_key is not None and tuple(state.last_key) in keys:
            conn.rollback()  # before anything is emitted: a key we cannot page through would loop forever
            raise OperationFailed(f"backfill of {chunks.shape.qualified_name}: the chunk after key {state.last_key!r} "
                                  "starts at that key again; its key types cannot be paged through",
                                  hint="please report the table's primary key definition")
        cursor.execute(chunks.emit(after, size, state.chunks_done + 1, deliver))
        cursor.execute(sql.ADVANCE, (encode_key(keys[-1]), len(keys), state.schema, state.table, state.run_id))
    conn.commit()
    return keys


def key_literals(shape: TableShape, values: Sequence[Any], escape: Callable[[Any], str]) -> list[str]:
    """The last key's values as SQL literals that compare as the index orders them.

    A BIT value comes back from PyMySQL as bytes, and compared with bytes a BIT column does not
    order as its index does (a backfill would never get past it): it goes back as its number.
    """
    literals = []
    for column, value in zip(shape.key_columns, values, strict=True):
        if column.data_type == "bit" and isinstance(value, bytes):
            literals.append(str(int.from_bytes(value, "big")))
        else:
            literals.append(escape(value))
    return literals


def prepare_session(conn: Any) -> sql.Locking:
    """Our session settings for chunks; the server's locking clause."""
    with conn.cursor() as cursor:
        for statement in sql.SESSION_SETUP:
            cursor.execute(statement)
        cursor.execute(sql.VERSION_QUERY)
        version = cursor.fetchone()[0]
    return sql.Locking.for_version(version)


# --- the last key, kept as JSON in the bookkeeping row -----------------------------------------------
def encode_key(values: Sequence[Any]) -> str:
    """Primary key values as PyMySQL returns them, as JSON that decode_key reads back exactly."""
    def one(value: Any) -> list[Any]:
        if isinstance(value, bool | int):
            return ["i", int(value)]
        if isinstance(value, bytes):
            return ["b", base64.b64encode(value).decode()]
        if isinstance(value, Decimal):
            return ["d", str(value)]
        if isinstance(value, float):
            return ["f", repr(value)]
        if isinstance(value, dt.datetime):
            return ["dt", value.isoformat()]
        if isinstance(value, dt.date):
            return ["da", value.isoformat()]
        if isinstance(value, dt.timedelta):
            return ["td", value.total_seconds()]
        return ["s", str(value)]
    return json.dumps([one(v) for v in values])


def decode_key(text: str | None) -> tuple[Any, ...] | None:
    if text is None:
        return None
    decoders: dict[str, Callable[[Any], Any]] = {
        "i": int, "b": base64.b64decode, "d": Decimal, "f": float, "dt": dt.datetime.fromisoformat,
        "da": dt.date.fromisoformat, "td": lambda s: dt.timedelta(seconds=s), "s": str}
    return tuple(decoders[kind](value) for kind, value in json.loads(text))
