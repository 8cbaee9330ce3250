"""Outbox delivery (issue 6), two figures:

1. Write rate for the same 20,000-row load (batches of 500) with no triggers, direct triggers and
   outbox triggers (NEW_AND_OLD_IMAGES), on a private MariaDB with the Aurora emulation, the outbox's
   delivering event running meanwhile as it would. Target: outbox writes at least as fast as direct.
2. In the full sandbox with delivery = "outbox": a steady 1,000 single-row changes/s for 30 s; the
   delivery rate, the outbox lag (age of the oldest waiting row, sampled) and commit-to-log latency.
   Target: lag under 2 s.

    .venv/bin/python bench/bench_outbox.py [--seconds 30] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workdir import project_dir  # noqa: E402
from orchestrator.database.outbox import install_outbox, outbox_lag  # noqa: E402
from orchestrator.database.probe import filter_events  # noqa: E402
from orchestrator.database.scripts import run_sql_file  # noqa: E402
from orchestrator.database.trigger_install import install_triggers  # noqa: E402
from orchestrator.database.triggers import StreamSettings  # noqa: E402
from orchestrator.sandbox.aurora_emulation import install_emulation  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"
SOURCE = "arn:aws:rds:eu-west-1:123456789012:cluster:bench/stream/{schema}.{table}"
# Placeholders only, so PyMySQL's executemany sends one multi-row INSERT per batch.
INSERT = ("INSERT INTO `routes` (`airportFrom`, `airportTo`, `operator`, `group`, `carrierCode`, `tags`) VALUES "
          "(%s, %s, %s, %s, %s, %s)")
FILLER = ("op", "grp", "XX", "a,b,c")


def write_rate(conn: pymysql.connections.Connection, rows: int, batch: int) -> float:
    with conn.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE `routes`")  # fires no trigger, unlike DELETE
        conn.commit()
        started = time.perf_counter()
        for first in range(0, rows, batch):
            values = [(f"A{n:07d}", f"B{n:07d}", *FILLER) for n in range(first, min(rows, first + batch))]
            cursor.executemany(INSERT, values)
            conn.commit()
        return rows / (time.perf_counter() - started)


def part_one(rows: int, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        server = MariaDBServer(Path(tmp), free_port())
        server.start()
        try:
            conn = pymysql.connect(unix_socket=str(server.socket), user="root", charset="utf8mb4")
            with conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE `flights` CHARACTER SET utf8mb4")
                cursor.execute("CREATE DATABASE IF NOT EXISTS `rds_streams`")
            conn.select_db("flights")
            run_sql_file(conn, "migrations/V1__routes.sql")
            install_emulation(conn, ["flights", "rds_streams"])
            install_outbox(conn, function_arn=ARN, batch_size=100, max_attempts=3)
            rates = {"no triggers": max(write_rate(conn, rows, batch) for _ in range(3))}
            for delivery in ("direct", "outbox"):
                settings = StreamSettings(function_arn=ARN, region="eu-west-1", event_source_arn=SOURCE,
                                          delivery=delivery)
                install_triggers(conn, "flights", ["routes"], settings)
                rates[delivery] = max(write_rate(conn, rows, batch) for _ in range(3))
            # The same with the delivering event paused: what the writes cost by themselves.
            with conn.cursor() as cursor:
                cursor.execute("SET GLOBAL event_scheduler = OFF")
            rates["outbox, delivery paused"] = max(write_rate(conn, rows, batch) for _ in range(3))
            conn.close()
        finally:
            server.stop()
    base = rates["no triggers"]
    print(f"write rate, {rows} rows in batches of {batch} (best of 3):")
    for name, rate in rates.items():
        print(f"  {name:<24} {rate:10,.0f} rows/s   cost {base / rate:4.2f}x")
    verdict = "meets" if rates["outbox"] >= rates["direct"] else "misses"
    print(f"  outbox vs direct: {rates['outbox'] / rates['direct']:.2f}x the direct write rate ({verdict} the target)")


def part_two(seconds: int, rate: int) -> None:
    from orchestrator.cancel import CancelToken
    from orchestrator.config import load_config
    from orchestrator.lifecycle import context_for
    from orchestrator.ui import UI, OutputFormat

    cli = str(Path(sys.executable).with_name("rds-streams"))
    with project_dir(**{'delivery = "direct"': 'delivery = "outbox"'}) as config_file:
        config_path = ["--config", str(config_file)]
        subprocess.run([cli, "up", *config_path, "--yes"], check=True, capture_output=True)
        ctx = context_for(load_config(config_file), UI(output=OutputFormat.JSON), CancelToken())
        try:
            root = ctx.sandbox_state.root_connection()
            writer = ctx.sandbox_state.root_connection()
            commits: dict[str, float] = {}
            lags: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.25):
                    lag = outbox_lag(root)
                    lags.append(lag.oldest_seconds or 0.0)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            with writer.cursor() as cursor:
                for n in range(seconds * rate):
                    due = started + n / rate
                    if (pause := due - time.perf_counter()) > 0:
                        time.sleep(pause)
                    cursor.execute(INSERT.replace("`routes`", "`flights`.`routes`"), (f"L{n:07d}", "STEADY", *FILLER))
                    commits[f"L{n:07d}"] = time.time() * 1000
            wrote = time.perf_counter() - started
            drained_at = None
            while drained_at is None and time.perf_counter() - started < seconds + 60:
                if outbox_lag(root).waiting == 0:
                    drained_at = time.perf_counter() - started
                time.sleep(0.1)
            stop.set()
            sampler.join()
            latencies = _latencies(ctx, commits)
            root.close()
            writer.close()
        finally:
            ctx.close()
            subprocess.run([cli, "down", *config_path, "--yes"], capture_output=True)
    changes = seconds * rate
    print(f"outbox under a steady load: {changes} single-row changes in {wrote:.1f} s ({changes / wrote:,.0f}/s)")
    print(f"  outbox drained {drained_at - wrote:.2f} s after the last write; delivery rate "
          f"{changes / drained_at:,.0f} records/s")
    print(f"  outbox lag (age of oldest waiting row, sampled every 0.25 s): median {statistics.median(lags):.2f} s, "
          f"max {max(lags):.2f} s (target < 2 s)")
    if latencies:
        print(f"  commit → consumer log: median {statistics.median(latencies):.0f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.0f} ms ({len(latencies)} records)")


def _latencies(ctx, commits: dict[str, float]) -> list[float]:
    events = filter_events(ctx.aws.client("logs"), ctx.deployment.log_group, '"STEADY"', 0)
    found: dict[str, float] = {}
    for event in events:
        try:
            key = json.loads(event["message"])["dynamodb"]["Keys"]["airportFrom"]["S"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if key in commits and key not in found:
            found[key] = event["timestamp"] - commits[key]
    return sorted(found.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    part_one(args.rows, args.batch)
    part_two(args.seconds, args.rate)


if __name__ == "__main__":
    main()
