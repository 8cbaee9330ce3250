"""How long writers wait while a migration alters a large streamed table.

Starts its own MariaDB (the sandbox's stand-in for Aurora, with the emulated lambda_async as the
triggers' target), loads `--rows` rows into a streamed table, then runs migrations through
`apply_migrations` exactly as `up` does (the DDL and the trigger re-generation under one table
lock) while writers on `--writers` connections insert and update single rows without pause. It
prints, per migration, the DDL's duration and the writers' latency (median, p99, max) during it,
and the number of failed writes (which must be 0).

    .venv/bin/python bench/bench_migration.py [--rows 1000000] [--writers 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.database.migrations import apply_migrations  # noqa: E402
from orchestrator.database.trigger_install import install_triggers, refit_triggers_locked  # noqa: E402
from orchestrator.database.triggers import StreamSettings  # noqa: E402
from orchestrator.sandbox.aurora_emulation import install_emulation  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402
from tests.factories import write_config  # noqa: E402

TABLE = ("CREATE TABLE `items` (`id` BIGINT PRIMARY KEY, `name` VARCHAR(40) NOT NULL, `qty` INT NOT NULL, "
         "`note` VARCHAR(100) NULL, `legacy` VARCHAR(20) NULL) ENGINE = InnoDB")
MIGRATIONS = [
    ("V2__add_column.sql", "ALTER TABLE `items` ADD COLUMN `price` DECIMAL(10,2) NULL"),
    ("V3__rename_column.sql", "ALTER TABLE `items` RENAME COLUMN `note` TO `remark`"),
    ("V4__drop_column.sql", "ALTER TABLE `items` DROP COLUMN `legacy`"),
    ("V5__modify_column_copy.sql", "ALTER TABLE `items` MODIFY COLUMN `qty` BIGINT NOT NULL"),
]
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"


class Writers:
    def __init__(self, port: int, database: str, count: int, first_id: int) -> None:
        self.port, self.database = port, database
        self.stop = threading.Event()
        self.latencies: list[tuple[float, float]] = []  # (start, seconds)
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(first_id + n * 10_000_000,)) for n in range(count)]

    def _run(self, next_id: int) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=self.database, autocommit=True)
        with conn.cursor() as cursor:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    cursor.execute("INSERT INTO `items` (`id`, `name`, `qty`) VALUES (%s, 'w', 1)", (next_id,))
                    cursor.execute("UPDATE `items` SET `qty` = `qty` + 1 WHERE `id` = %s", (next_id,))
                except pymysql.err.MySQLError as err:
                    self.failures.append(str(err))
                self.latencies.append((started, time.monotonic() - started))
                next_id += 1
        conn.close()

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        work = Path(tmp)
        server = MariaDBServer(work / "mariadb", free_port())
        server.start()
        try:
            run(server, work, args.rows, args.writers)
        finally:
            server.stop()


def run(server: MariaDBServer, work: Path, rows: int, writers: int) -> None:
    config = load_config(write_config(work, {"database": {"name": "bench_items"},
                                             "stream": {"tables": [{"name": "items"}]}}, schema=TABLE + ";"))
    conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True)
    settings = StreamSettings(function_arn=ARN, region="eu-west-1", event_source_arn="arn:aws:rds:x/{schema}/{table}")
    apply_migrations(conn, config)
    database = config.database.name
    install_emulation(conn, [database])
    with conn.cursor() as cursor:
        cursor.execute("GRANT `AWS_LAMBDA_ACCESS` TO CURRENT_USER")
        cursor.execute("SET DEFAULT ROLE `AWS_LAMBDA_ACCESS`")
        started = time.monotonic()
        batch = 10_000
        for first in range(0, rows, batch):
            values = ",".join(f"({i}, 'name-{i}', {i % 100}, 'note {i}', 'old')" for i in range(first, min(first + batch, rows)))
            cursor.execute(f"INSERT INTO `{database}`.`items` VALUES {values}")
        print(f"loaded {rows:,} rows in {time.monotonic() - started:.1f} s")
    install_triggers(conn, database, ["items"], settings)
    conn.select_db(database)

    def refit(c: pymysql.Connection, tables: list[str]) -> None:
        refit_triggers_locked(c, database, ["items"], settings, tables)

    print(f"{'migration':<28} {'DDL s':>7} {'writes':>7} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} {'failed':>7}")
    with Writers(server.port, database, writers, rows + 1) as load:
        time.sleep(1.0)
        for name, statement in MIGRATIONS:
            (config.migrations_path / name).write_text(statement + ";\n")
            began = time.monotonic()
            apply_migrations(conn, config, refit, ["items"])
            ended = time.monotonic()
            time.sleep(0.5)
            during = [s for t, s in load.latencies if began - 0.001 <= t <= ended or (t < began and t + s > began)]
            during.sort()
            p99 = during[int(len(during) * 0.99)] if during else 0.0
            print(f"{name:<28} {ended - began:>7.2f} {len(during):>7} {statistics.median(during) * 1000 if during else 0:>10.1f} "
                  f"{p99 * 1000:>8.1f} {max(during, default=0) * 1000:>8.1f} {len(load.failures):>7}")
    print(f"failed writes in all: {len(load.failures)}" + (f" (first: {load.failures[0]})" if load.failures else ""))
    conn.close()


if __name__ == "__main__":
    main()
