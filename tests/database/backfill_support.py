"""What the backfill tests share: a table to fill, writers that keep changing it, and the replay check.

Run as a module it is a backfill in a process of its own (so a test can SIGKILL it mid-way):
`python -m tests.database.backfill_support PORT SCHEMA TABLE DELIVERY CHUNK RATE`.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from orchestrator.cancel import CancelToken
from orchestrator.config import Dialect
from orchestrator.database import backfill
from orchestrator.database.catalog import read_table_shape
from orchestrator.database.images import decode_image
from orchestrator.database.table_shape import TableShape
from orchestrator.database.triggers import StreamSettings

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"
SOURCE_ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:test/{schema}/{table}"
TABLE_SQL = ("CREATE TABLE items (id INT NOT NULL, grp VARCHAR(20) CHARACTER SET latin1 NOT NULL, "
             "v INT NOT NULL, note VARCHAR(40) NULL, PRIMARY KEY (id, grp)) ENGINE = InnoDB")
GROUPS = ("a", "b")


def settings(delivery: str) -> StreamSettings:
    return StreamSettings(function_arn=FUNCTION_ARN, region="eu-west-1", event_source_arn=SOURCE_ARN,
                          view_type="NEW_AND_OLD_IMAGES", dialect=Dialect.V3, delivery=delivery)  # type: ignore[arg-type]


def fill(conn: Any, rows: int) -> None:
    """`rows` rows with keys (1..rows/2, a|b); every third id left out so inserts land between keys."""
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION max_recursive_iterations = 100000000")  # MariaDB's name for it
        cursor.execute(
            "INSERT INTO items (id, grp, v, note) WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < %s) SELECT i * 3 DIV 2, IF(i %% 2, 'a', 'b'), i, CONCAT('row ', i) FROM n", (rows,))


@dataclass
class Writers:
    """4 connections updating, deleting, inserting and re-keying rows until stopped; every failed write counted."""

    port: int
    schema: str
    key_space: int
    hot: int | None = None  # updates only to keys below this: rows the backfill is reading meanwhile
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    writes: int = 0
    failures: list[str] = field(default_factory=list)

    def start(self, count: int = 4) -> Writers:
        for n in range(count):
            thread = threading.Thread(target=self._write, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _write(self, seed: int) -> None:
        rnd = random.Random(seed)
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=self.schema,
                               autocommit=True, ssl_disabled=True)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 10")  # a chunk takes far less; fail the test sooner
        # Re-keyed rows go to ids no other writer uses and no insert takes (id % 3 == 2, a share per
        # writer, each once), so a key change never meets a duplicate: UPDATE IGNORE meeting one emits
        # REMOVE and INSERT for a change that did not happen (a trigger limitation reported separately).
        targets = [3 * (4 * j + seed) + 2 for j in range(self.key_space // 12)]
        rnd.shuffle(targets)

        def key() -> tuple[int, str]:
            return rnd.randrange(1, self.key_space), rnd.choice(GROUPS)

        def insert_key() -> tuple[int, str]:
            id_, grp = key()
            return id_ - 1 if id_ % 3 == 2 else id_, grp

        def hot_key() -> tuple[int, str]:
            return (rnd.randrange(1, self.hot), rnd.choice(GROUPS)) if self.hot else key()

        statements = (
            ("UPDATE items SET v = v + 1, note = %s WHERE id = %s AND grp = %s", lambda: (f"w{seed}", *hot_key())),
            ("DELETE FROM items WHERE id = %s AND grp = %s", key),
            ("INSERT IGNORE INTO items (id, grp, v, note) VALUES (%s, %s, 0, 'new')", insert_key),
            ("UPDATE items SET id = %s WHERE id = %s AND grp = %s", lambda: (targets.pop(), *key())),
        )

        try:
            while not self.stop.is_set():
                statement, args = rnd.choice(statements)
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(statement, args())
                    self.writes += 1
                except pymysql.err.Error as err:
                    self.failures.append(f"{statement}: {err}")
        finally:
            conn.close()


def replay(records: Sequence[dict[str, Any]], shape: TableShape) -> tuple[dict[tuple[Any, ...], dict[str, Any]], list[str]]:
    """Apply the records in order to a dictionary; and every place where a record contradicts what came before.

    A MODIFY or REMOVE must start from the image the dictionary holds for its key (where it holds one);
    a snapshot record must show what the dictionary holds (a snapshot older than a change received before
    it would not), and a live INSERT must find its key absent.
    """
    state: dict[tuple[Any, ...], dict[str, Any]] = {}
    faults = []
    for record in records:
        ddb = record["dynamodb"]
        keys = decode_image(ddb["Keys"], shape)
        key = tuple(keys[c] for c in shape.primary_key)
        name, snapshot = record["eventName"], "rdsStreamsSnapshot" in ddb
        if name in ("MODIFY", "REMOVE") and key in state and decode_image(ddb["OldImage"], shape) != state[key]:
            faults.append(f"{name} of {key} from {ddb['OldImage']}, but the stream had {state[key]}")
        if name == "INSERT" and snapshot and key in state and decode_image(ddb["NewImage"], shape) != state[key]:
            faults.append(f"snapshot of {key} shows {ddb['NewImage']}, older than {state[key]} received before it")
        if name == "INSERT" and not snapshot and key in state:
            faults.append(f"INSERT of {key}, present already")
        if name == "REMOVE":
            state.pop(key, None)
        else:
            state[key] = decode_image(ddb["NewImage"], shape)
    return state, faults


def table_rows(conn: Any, shape: TableShape) -> dict[tuple[Any, ...], dict[str, Any]]:
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(f"SELECT * FROM `{shape.schema}`.`{shape.table}`")
        return {tuple(row[c] for c in shape.primary_key): row for row in cursor.fetchall()}


def run(conn: Any, schema: str, table: str, delivery: str, options: backfill.BackfillOptions,
        cancel: CancelToken | None = None) -> backfill.BackfillState:
    """The backfill as the command runs it, on a connection of its own."""
    locking = backfill.prepare_session(conn)
    backfill.ensure_bookkeeping(conn)
    shape = read_table_shape(conn, schema, table)
    state = backfill.begin(conn, shape, options)
    assert state is not None
    return backfill.run_backfill(conn, shape, settings(delivery), state, options, cancel or CancelToken(),
                                 lambda done: None, locking)


if __name__ == "__main__":
    port, schema, table, delivery, chunk, rate = sys.argv[1:7]
    connection = pymysql.connect(host="127.0.0.1", port=int(port), user="root", database=schema, autocommit=True,
                                 ssl_disabled=True, charset="utf8mb4")
    run(connection, schema, table, delivery, backfill.BackfillOptions(chunk_rows=int(chunk), rate=float(rate)))
