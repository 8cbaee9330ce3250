"""Backfill (issue 15): on a private MariaDB with the Aurora emulation, a ROWS-row table (default 1,000,000)
streamed with NEW_AND_OLD_IMAGES triggers:

1. a writer alone (one connection, single-row autocommit UPDATEs of random rows) for SECONDS: its rate;
2. the backfill alone: rows/s;
3. the backfill with the writer running throughout: rows/s, and the writer's rate meanwhile.

    .venv/bin/python bench/bench_backfill.py [--rows 1000000] [--delivery outbox|direct] [--chunk 1000]
                                             [--seconds 10] [--rate R]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.cancel import CancelToken  # noqa: E402
from orchestrator.config import Dialect  # noqa: E402
from orchestrator.database import backfill  # noqa: E402
from orchestrator.database.catalog import read_table_shape  # noqa: E402
from orchestrator.database.trigger_install import install_triggers  # noqa: E402
from orchestrator.database.triggers import StreamSettings  # noqa: E402
from orchestrator.sandbox.aurora_emulation import LAMBDA_ROLE, install_emulation  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"
SOURCE = "arn:aws:rds:eu-west-1:123456789012:cluster:bench/{schema}/{table}"
TABLE = ("CREATE TABLE items (id INT NOT NULL PRIMARY KEY, grp VARCHAR(20) NOT NULL, v INT NOT NULL, "
         "note VARCHAR(40) NULL, created DATETIME(6) NOT NULL) ENGINE = InnoDB")
OUTBOX = ("CREATE TABLE IF NOT EXISTS rds_streams.outbox (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
          "payload LONGTEXT CHARACTER SET utf8mb4 NOT NULL, created_at DATETIME(6) NOT NULL "
          "DEFAULT CURRENT_TIMESTAMP(6)) ENGINE = InnoDB")


def connect(port: int) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", database="bench", autocommit=True,
                           ssl_disabled=True, charset="utf8mb4")


def prepare(port: int, rows: int, settings: StreamSettings) -> None:
    conn = connect_root(port)
    with conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE bench")
        cursor.execute("CREATE DATABASE IF NOT EXISTS rds_streams")
        cursor.execute(OUTBOX)
        conn.select_db("bench")
        cursor.execute(TABLE)
        cursor.execute("SET SESSION max_recursive_iterations = 100000000")
        cursor.execute("INSERT INTO items WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
                       "SELECT i, IF(i %% 2, 'a', 'b'), i, CONCAT('row ', i), NOW(6) FROM n", (rows,))
    install_emulation(conn, ["bench"])
    with conn.cursor() as cursor:
        cursor.execute(f"GRANT `{LAMBDA_ROLE}` TO CURRENT_USER")
    install_triggers(conn, "bench", ["items"], settings)
    conn.close()


def connect_root(port: int) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True, ssl_disabled=True,
                           charset="utf8mb4")


class Writer:
    def __init__(self, port: int, rows: int) -> None:
        self.port, self.rows, self.writes, self.stop = port, rows, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rnd, conn = random.Random(7), connect(self.port)
        with conn.cursor() as cursor:
            while not self.stop.is_set():
                cursor.execute("UPDATE items SET v = v + 1 WHERE id = %s", (rnd.randrange(1, self.rows + 1),))
                self.writes += 1
        conn.close()

    def measure(self, during: threading.Event | float) -> float:
        started = time.perf_counter()
        self.thread.start()
        if isinstance(during, float):
            time.sleep(during)
        else:
            during.wait()
        self.stop.set()
        self.thread.join()
        return self.writes / (time.perf_counter() - started)


def run_backfill(port: int, settings: StreamSettings, options: backfill.BackfillOptions) -> tuple[float, int]:
    conn = connect(port)
    locking = backfill.prepare_session(conn)
    backfill.ensure_bookkeeping(conn)
    shape = read_table_shape(conn, "bench", "items")
    state = backfill.begin(conn, shape, options)
    assert state is not None
    started = time.perf_counter()
    final = backfill.run_backfill(conn, shape, settings, state, options, CancelToken(), lambda done: None, locking)
    seconds = time.perf_counter() - started
    conn.close()
    return final.rows_done / seconds, final.rows_done


def clear_stream(port: int) -> None:
    conn = connect_root(port)
    with conn.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE rds_streams.outbox")
        cursor.execute("TRUNCATE TABLE rds_streams_sandbox.lambda_calls")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--delivery", choices=["outbox", "direct"], default="outbox")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args()
    settings = StreamSettings(function_arn=ARN, region="eu-west-1", event_source_arn=SOURCE,
                              view_type="NEW_AND_OLD_IMAGES", dialect=Dialect.V3, delivery=args.delivery)
    options = backfill.BackfillOptions(chunk_rows=args.chunk, rate=args.rate, restart=True)
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        server = MariaDBServer(Path(tmp), free_port())
        server.start()
        try:
            started = time.perf_counter()
            prepare(server.port, args.rows, settings)
            print(f"table: {args.rows:,} rows, {args.delivery} delivery, chunks of {args.chunk}"
                  f"{f', --rate {args.rate:.0f}' if args.rate else ''} (filled in {time.perf_counter() - started:.1f} s)")
            alone = Writer(server.port, args.rows).measure(args.seconds)
            print(f"writer alone:               {alone:10,.0f} updates/s")
            clear_stream(server.port)
            rate, rows = run_backfill(server.port, settings, options)
            print(f"backfill alone:             {rate:10,.0f} rows/s ({rows:,} rows)")
            clear_stream(server.port)
            done, writer = threading.Event(), Writer(server.port, args.rows)
            result: list[tuple[float, int]] = []

            def backfill_then_stop() -> None:
                try:
                    result.append(run_backfill(server.port, settings, options))
                finally:
                    done.set()

            threading.Thread(target=backfill_then_stop, daemon=True).start()
            during = writer.measure(done)
            print(f"backfill with the writer:   {result[0][0]:10,.0f} rows/s ({result[0][1]:,} rows)")
            print(f"writer during the backfill: {during:10,.0f} updates/s ({during / alone:.0%} of alone)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
