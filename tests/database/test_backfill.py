"""A backfill emits every existing row as a snapshot record, consistent with the writes going on meanwhile.

On the sandbox's MariaDB with the Aurora Lambda emulation (direct delivery: the emulated lambda_async
queue, in call order) or the outbox (outbox delivery: in outbox order, the order the relay delivers a
key's records in). Four writer connections update, delete, insert and re-key rows throughout; every
record passes the consumers of consumers.py; replaying them in order gives the table's final content.

The table has ROWS rows here (the time budget of `make test`); RDS_STREAMS_BACKFILL_ROWS=200000 runs
the issue's 200,000-row case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.cancel import CancelToken
from orchestrator.database import backfill
from orchestrator.database.catalog import read_table_shape
from orchestrator.errors import Cancelled
from tests.database import backfill_support as support
from tests.database.conftest import StreamDb
from tests.database.consumers import consume, create_outbox_table, drop_outbox_table, outbox_records

ROWS = int(os.environ.get("RDS_STREAMS_BACKFILL_ROWS", "20000"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["direct", "outbox"])
def items(request: pytest.FixtureRequest, stream_db: StreamDb) -> Iterator[tuple[StreamDb, str]]:
    """`items` filled with ROWS rows and streamed with the given delivery; rds_streams as the test found it."""
    delivery = request.param
    created = create_outbox_table(stream_db)
    stream_db.execute(support.TABLE_SQL)
    support.fill(stream_db.conn, ROWS)
    stream_db.install(["items"], delivery=delivery)
    yield stream_db, delivery
    drop_outbox_table(stream_db, created)


def received(db: StreamDb, delivery: str) -> list[dict[str, Any]]:
    return db.new_records() if delivery == "direct" else outbox_records(db)


def check(db: StreamDb, records: list[dict[str, Any]], writers: support.Writers, below: int | None = None) -> dict[str, Any]:
    """The replay equals the table (only keys with id < `below`, where the backfill had --where id < below)."""
    shape = read_table_shape(db.conn, db.schema, "items")
    state, faults = support.replay(records, shape)
    final = support.table_rows(db.conn, shape)
    if below is not None:
        state = {k: v for k, v in state.items() if k[0] < below}
        final = {k: v for k, v in final.items() if k[0] < below}
    assert writers.failures == [], writers.failures[:5]
    assert writers.writes > 100, "the writers barely wrote: the test proves nothing"
    assert faults == [], faults[:5]
    assert len(state) == len(final)
    assert state == final
    snapshots = [r for r in records if "rdsStreamsSnapshot" in r["dynamodb"]]
    assert all(r["eventName"] == "INSERT" and "OldImage" not in r["dynamodb"] for r in snapshots)
    return {"snapshots": snapshots, "shape": shape}


def snapshot_keys(snapshots: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    chunks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in snapshots:
        keys = record["dynamodb"]["Keys"]
        chunks[(keys["id"]["N"], keys["grp"]["S"])].append(record["dynamodb"]["rdsStreamsSnapshot"]["chunk"])
    return chunks


def test_a_backfill_under_writers_replays_to_the_final_table(items):
    db, delivery = items
    received(db, delivery)  # nothing before the backfill counts
    writers = support.Writers(db.server.port, db.schema, ROWS).start()
    try:
        time.sleep(0.3)
        conn = db.connect()
        state = support.run(conn, db.schema, "items", delivery, backfill.BackfillOptions(chunk_rows=500))
    finally:
        writers.finish()
    assert state.finished and state.rows_done >= ROWS * 0.9
    records = received(db, delivery)
    checked = check(db, records, writers)
    per_key = snapshot_keys(checked["snapshots"])
    assert all(len(chunks) == 1 for chunks in per_key.values()), "a row emitted twice without a kill"
    # In primary-key order, chunk by chunk.
    order = [(int(k["id"]["N"]), k["grp"]["S"]) for k in (r["dynamodb"]["Keys"] for r in checked["snapshots"])]
    assert order == sorted(order)


def test_writers_hammering_the_rows_being_read_wait_for_a_chunk_and_never_fail(items):
    """Updates go to the first rows only, where a slowed backfill is reading: every writer keeps meeting
    the chunk's locks (and, with direct delivery in the sandbox, holds the Lambda queue's table lock
    while it waits, which the chunk's next statement needs)."""
    db, delivery = items
    received(db, delivery)
    writers = support.Writers(db.server.port, db.schema, ROWS, hot=800).start()
    try:
        time.sleep(0.3)
        conn = db.connect()
        support.run(conn, db.schema, "items", delivery, backfill.BackfillOptions(chunk_rows=200, rate=1000.0,
                                                                                   row_filter="id < 800"))
    finally:
        writers.finish()
    check(db, received(db, delivery), writers, below=800)


def test_a_killed_backfill_resumes_and_repeats_at_most_the_chunk_it_was_in(items):
    db, delivery = items
    received(db, delivery)
    backfill.ensure_bookkeeping(db.conn)
    writers = support.Writers(db.server.port, db.schema, ROWS).start()
    try:
        child = subprocess.Popen([sys.executable, "-m", "tests.database.backfill_support", str(db.server.port), db.schema,
                                  "items", delivery, "400", str(ROWS * 2)], cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = backfill.read_state(db.conn, db.schema, "items")
            if state is not None and state.chunks_done >= 5:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed = backfill.read_state(db.conn, db.schema, "items")
        assert killed is not None and not killed.finished and killed.chunks_done >= 5
        conn = db.connect()
        state = support.run(conn, db.schema, "items", delivery, backfill.BackfillOptions(chunk_rows=400))
    finally:
        writers.finish()
    assert state.finished and state.run_id == killed.run_id
    checked = check(db, received(db, delivery), writers)
    repeated = {key: chunks for key, chunks in snapshot_keys(checked["snapshots"]).items() if len(chunks) > 1}
    interrupted = killed.chunks_done + 1
    assert all(interrupted in chunks for chunks in repeated.values()), repeated
    if delivery == "outbox":
        assert repeated == {}, "the outbox chunk is one transaction with its bookkeeping: never repeated"


def test_ctrl_c_stops_after_the_current_chunk_and_the_next_run_resumes(stream_db):
    created = create_outbox_table(stream_db)
    try:
        stream_db.execute(support.TABLE_SQL)
        support.fill(stream_db.conn, 3000)
        stream_db.install(["items"])
        stream_db.new_records()
        cancel = CancelToken()
        conn = stream_db.connect()
        locking = backfill.prepare_session(conn)
        backfill.ensure_bookkeeping(conn)
        shape = read_table_shape(conn, stream_db.schema, "items")
        options = backfill.BackfillOptions(chunk_rows=1000)
        state = backfill.begin(conn, shape, options)
        with pytest.raises(Cancelled, match="stopped after chunk 1 .* resumes|stopped after chunk 1"):
            backfill.run_backfill(conn, shape, support.settings("direct"), state, options, cancel,
                                  lambda done: cancel.cancel(), locking)
        first = stream_db.new_records()
        assert len(first) == 1000
        again = backfill.begin(conn, shape, options)
        assert again.chunks_done == 1 and again.run_id == state.run_id
        done = backfill.run_backfill(conn, shape, support.settings("direct"), again, options, CancelToken(),
                                     lambda done: None, locking)
        rest = stream_db.new_records()
        assert done.finished and len(first) + len(rest) == 3000
        keys = [r["dynamodb"]["Keys"]["id"]["N"] + r["dynamodb"]["Keys"]["grp"]["S"] for r in first + rest]
        assert len(set(keys)) == 3000
    finally:
        drop_outbox_table(stream_db, created)


@pytest.mark.parametrize("view_type", ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"])
def test_snapshot_records_pass_the_consumers_in_every_view_type(stream_db, view_type):
    created = create_outbox_table(stream_db)
    try:
        stream_db.execute(support.TABLE_SQL)
        support.fill(stream_db.conn, 10)
        stream_db.install(["items"], view_type=view_type)
        conn = stream_db.connect()
        locking = backfill.prepare_session(conn)
        backfill.ensure_bookkeeping(conn)
        shape = read_table_shape(conn, stream_db.schema, "items")
        options = backfill.BackfillOptions(chunk_rows=3)
        state = backfill.begin(conn, shape, options)
        backfill.run_backfill(conn, shape, stream_db.settings(view_type), state, options, CancelToken(),
                              lambda done: None, locking)
        records = stream_db.new_records()
        assert len(records) == 10
        for record in records:
            decoded = consume(record)
            assert record["eventName"] == "INSERT" and record["dynamodb"]["StreamViewType"] == view_type
            assert ("NewImage" in decoded) == (view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"))
            assert "OldImage" not in decoded
            assert record["dynamodb"]["rdsStreamsSnapshot"]["backfill"] == state.run_id
    finally:
        drop_outbox_table(stream_db, created)


def test_every_row_once_whatever_the_key_types(stream_db):
    """A composite key of dates, _ci text, bytes, BIT and DECIMAL: the chunk boundaries (kept as JSON,
    given back as literals) compare as the index orders, so small chunks emit every row exactly once."""
    created = create_outbox_table(stream_db)
    try:
        stream_db.execute("CREATE TABLE odd (d DATE NOT NULL, t VARCHAR(10) CHARACTER SET latin1 NOT NULL, "
                          "b VARBINARY(4) NOT NULL, f BIT(3) NOT NULL, n DECIMAL(10, 2) NOT NULL, x INT NULL, "
                          "PRIMARY KEY (d, t, b, f, n))")
        rows = [(f"2024-01-0{1 + i % 3}", ["a", "B", "c", "é", "Z"][i % 5], bytes([i % 4, 255]), i % 8,
                 f"{(i % 7) - 3}.5{i % 2}", i) for i in range(200)]
        with stream_db.conn.cursor() as cursor:
            cursor.executemany("INSERT IGNORE INTO odd VALUES (%s, %s, %s, %s, %s, %s)", rows)
        total = stream_db.query("SELECT COUNT(*) AS n FROM odd")[0]["n"]
        stream_db.install(["odd"])
        stream_db.new_records()
        conn = stream_db.connect()
        locking = backfill.prepare_session(conn)
        backfill.ensure_bookkeeping(conn)
        shape = read_table_shape(conn, stream_db.schema, "odd")
        options = backfill.BackfillOptions(chunk_rows=7)
        state = backfill.begin(conn, shape, options)
        done = backfill.run_backfill(conn, shape, stream_db.settings(), state, options, CancelToken(),
                                     lambda chunk: None, locking)
        records = stream_db.new_records()
        keys = [tuple(sorted(consume(r)["Keys"].items())) for r in records]
        assert done.rows_done == total == len(records) == len(set(keys))
    finally:
        drop_outbox_table(stream_db, created)
