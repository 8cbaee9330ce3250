"""Outbox delivery against Aurora's call costs (issues 6 and 14), two parts:

1. Writer throughput per connection, single-row transactions, under the latency model (each
   lambda_async/lambda_sync call costs `--lambda-ms`, Aurora's is about 35 ms): no triggers, direct
   triggers (the call sits in the writer's statement) and outbox triggers (no call in the write).
   A private MariaDB with the Aurora emulation; the outbox's relays are off here (write cost only).
2. The full sandbox with delivery = "outbox" and the latency model: `--connections` writer processes
   making steady single-row transactions at `--rate` changes/s in total for `--seconds`, each
   updating keys of its own so every key's versions are known. Measured: the outbox lag (age of the
   oldest waiting row, sampled every 0.25 s), commit-to-consumer-log latency, records lost,
   per-key order violations and duplicates (by eventID), read back from the consumer's log in moto.

The last line printed is one JSON object with the figures.

    .venv/bin/python bench/bench_outbox.py --lambda-ms 35 --rate 1000 --seconds 60 [--partitions 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workdir import project_dir  # noqa: E402
from orchestrator.database.outbox import install_outbox, oldest_waiting_seconds, outbox_lag  # noqa: E402
from orchestrator.database.scripts import run_sql_file  # noqa: E402
from orchestrator.database.trigger_install import install_triggers  # noqa: E402
from orchestrator.database.triggers import StreamSettings  # noqa: E402
from orchestrator.sandbox.aurora_emulation import install_emulation, set_latency  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"
SOURCE = "arn:aws:rds:eu-west-1:123456789012:cluster:bench/stream/{schema}.{table}"
INSERT = ("INSERT INTO `routes` (`airportFrom`, `airportTo`, `operator`, `group`, `carrierCode`, `tags`) VALUES "
          "(%s, %s, 'op', 'grp', 'XX', 'a,b,c')")
UPDATE = "UPDATE `flights`.`routes` SET `connectingAirport` = %s WHERE `airportFrom` = %s AND `airportTo` = 'STEADY'"
KEYS_PER_WRITER = 200


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- part 1: per-connection write rate ---------------------------------------------------------------
def rows_per_second(conn: pymysql.connections.Connection, seconds: float, tag: str) -> float:
    """Single-row autocommit inserts from one connection for `seconds`."""
    written, started = 0, time.perf_counter()
    with conn.cursor() as cursor:
        while time.perf_counter() - started < seconds:
            cursor.execute(INSERT, (f"{tag}{written:07d}", tag))
            written += 1
    return written / (time.perf_counter() - started)


def part_one(lambda_ms: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        server = MariaDBServer(Path(tmp), free_port())
        server.start()
        try:
            conn = pymysql.connect(unix_socket=str(server.socket), user="root", charset="utf8mb4", autocommit=True)
            with conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE `flights` CHARACTER SET utf8mb4")
                cursor.execute("CREATE DATABASE IF NOT EXISTS `rds_streams`")
                cursor.execute("SET GLOBAL event_scheduler = OFF")  # the relays' cost is part two's
            conn.select_db("flights")
            run_sql_file(conn, "migrations/V1__routes.sql")
            install_emulation(conn, ["flights", "rds_streams"])
            install_outbox(conn, function_arn=ARN, batch_size=10000, max_attempts=3, partitions=4)
            set_latency(conn, lambda_ms)
            rates = {"none": rows_per_second(conn, seconds, "N")}
            for delivery in ("direct", "outbox"):
                settings = StreamSettings(function_arn=ARN, region="eu-west-1", event_source_arn=SOURCE,
                                          delivery=delivery)
                install_triggers(conn, "flights", ["routes"], settings)
                rates[delivery] = rows_per_second(conn, seconds, delivery[0].upper())
            conn.close()
        finally:
            server.stop()
    print(f"writer throughput per connection, single-row transactions, lambda_ms = {lambda_ms} ({seconds:.0f} s each):")
    for name, rate in rates.items():
        print(f"  {name:<8} triggers {rate:10,.1f} rows/s")
    return rates


# --- part 2: steady load on the sandbox --------------------------------------------------------------
def writer(socket: str, index: int, rate: float, seconds: float, start_at: float, out: Any) -> None:
    """One connection: UPDATEs of its own keys in turn at `rate`/s; reports (key, version, commit ms)."""
    conn = pymysql.connect(unix_socket=socket, user="root", charset="utf8mb4", autocommit=True)
    keys = [f"W{index}K{k:03d}" for k in range(KEYS_PER_WRITER)]
    versions = dict.fromkeys(keys, 0)
    commits: list[tuple[str, int, float]] = []
    failed = 0
    while time.time() < start_at:
        time.sleep(0.001)
    with conn.cursor() as cursor:
        for n in range(int(rate * seconds)):
            due = start_at + n / rate
            if (pause := due - time.time()) > 0:
                time.sleep(pause)
            elif time.time() > start_at + seconds:
                break  # behind the rate asked: the run still lasts `seconds`; rate_written tells
            key = keys[n % len(keys)]
            try:
                cursor.execute(UPDATE, (str(versions[key] + 1), key))
            except pymysql.err.Error:
                failed += 1
                continue
            versions[key] += 1
            commits.append((key, versions[key], time.time() * 1000))
    conn.close()
    out.put((commits, failed))


def read_log(logs: Any, group: str) -> list[tuple[int, dict[str, Any]]]:
    """Every record line of the consumer's log, with its timestamp (ms), in log order."""
    found: list[tuple[int, dict[str, Any]]] = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        token = None
        while True:
            kwargs = {"logGroupName": group, "logStreamName": stream["logStreamName"], "startFromHead": True,
                      "limit": 10000}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            for event in page["events"]:
                if event["message"].startswith("{"):
                    try:
                        record = json.loads(event["message"])
                    except json.JSONDecodeError:
                        continue
                    if "eventID" in record:
                        found.append((event["timestamp"], record))
            if not page["events"] or page.get("nextForwardToken") == token:
                break
            token = page.get("nextForwardToken")
    return found


def part_two(rate: int, seconds: int, connections: int, lambda_ms: int, partitions: int,
             trace: bool = False) -> dict[str, Any]:
    from orchestrator.cancel import CancelToken
    from orchestrator.config import load_config
    from orchestrator.lifecycle import context_for
    from orchestrator.ui import UI, OutputFormat

    cli = str(Path(sys.executable).with_name("rds-streams"))
    with project_dir(**{'delivery = "direct"': f'delivery = "outbox"\nrelay_partitions = {partitions}',
                        "# lambda_ms = 0": f"lambda_ms = {lambda_ms}"}) as config_file:
        config_path = ["--config", str(config_file)]
        subprocess.run([cli, "up", *config_path, "--yes"], check=True, capture_output=True)
        ctx = context_for(load_config(config_file), UI(output=OutputFormat.JSON), CancelToken())
        try:
            state = ctx.sandbox_state
            root = state.root_connection()
            with root.cursor() as cursor:  # the keys, before the clock starts
                rows = [(f"W{w}K{k:03d}", "STEADY") for w in range(connections) for k in range(KEYS_PER_WRITER)]
                cursor.executemany(INSERT.replace("`routes`", "`flights`.`routes`"), rows)
            while outbox_lag(root).waiting:
                time.sleep(0.2)
            samples: list[tuple[float, float | None]] = []  # (seconds since start, oldest row's age or None)
            stop = threading.Event()

            def sample() -> None:
                own = state.root_connection()  # a connection is not shared between threads
                while not stop.wait(0.25):
                    samples.append((time.time() - start_at, oldest_waiting_seconds(own)))
                    if trace:
                        print(f"  t={samples[-1][0]:6.2f} s lag {samples[-1][1] or 0.0:.3f} s", file=sys.stderr)
                own.close()

            out: Any = multiprocessing.Queue()
            start_at = time.time() + 1.0
            procs = [multiprocessing.Process(target=writer, args=(str(state.mariadb_socket), w, rate / connections,
                                                                  seconds, start_at, out))
                     for w in range(connections)]
            for proc in procs:
                proc.start()
            sampler = threading.Thread(target=sample)
            sampler.start()
            results = [out.get() for _ in procs]  # takes a while: the commits travel back pickled
            for proc in procs:
                proc.join()
            # From the last commit, not from here: collecting the writers' results takes seconds.
            wrote = max((at for batch, _ in results for _, _, at in batch[-1:]), default=start_at * 1000) / 1000 - start_at
            drained_at = None
            while drained_at is None and time.time() - start_at < seconds + 300:
                drained_at = next((t for t, age in list(samples) if t > wrote and age is None), None)
                time.sleep(0.1)
            stop.set()
            sampler.join()
            time.sleep(1.0)  # the runner's last log write
            logged = read_log(ctx.aws.client("logs"), ctx.deployment.log_group)
            with root.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM `rds_streams`.`outbox_dead_letters`")
                dead_letters = cursor.fetchone()[0]
                cursor.execute("SELECT `relay`, `delivered`, `last_error` FROM `rds_streams`.`outbox_relays`")
                relays = cursor.fetchall()
            root.close()
        finally:
            ctx.close()
            subprocess.run([cli, "down", *config_path, "--yes"], capture_output=True)
    lags = [age or 0.0 for t, age in samples if 0 <= t <= wrote]
    commits = {(key, version): at for batch, _ in results for key, version, at in batch}
    failed_writes = sum(failed for _, failed in results)
    first_seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for at, record in logged:
        first_seen.setdefault(record["eventID"], (at, record))
    seen_versions: dict[str, list[int]] = {}
    latencies: list[float] = []
    for at, record in first_seen.values():
        image = record["dynamodb"].get("NewImage", {})
        if record["eventName"] != "MODIFY" or "connectingAirport" not in image:
            continue
        key = record["dynamodb"]["Keys"]["airportFrom"]["S"]
        version = int(image["connectingAirport"]["S"])
        seen_versions.setdefault(key, []).append(version)
        if (key, version) in commits:
            latencies.append(at - commits[(key, version)])
    delivered = {(k, v) for k, vs in seen_versions.items() for v in vs}
    missing = sorted(set(commits) - delivered)
    lost = len(missing)
    for key, version in missing[:5]:  # what a loss looks like, to find its cause
        print(f"  LOST {key} v{version}: committed at {commits[(key, version)]:.0f} ms; that key's versions as "
              f"logged: {seen_versions.get(key, [])[max(0, version - 4):version + 3]}")
    print(f"  relays (relay, delivered, last error): {relays}; dead letters: {dead_letters}")
    order_violations = sum(1 for vs in seen_versions.values() for a, b in zip(vs, vs[1:], strict=False) if b <= a)
    steady = [r for _, r in logged if r["eventName"] == "MODIFY"]
    changes = len(commits)
    figures = {
        "lambda_ms": lambda_ms, "relay_partitions": partitions, "connections": connections, "seconds": seconds,
        "rate_asked": rate, "rate_written": round(changes / wrote, 1),
        "rate_delivered": round(changes / drained_at, 1) if drained_at else None,
        "failed_writes": failed_writes,
        "drained_after_writes_s": _round(drained_at - wrote if drained_at else None, 2),
        "lag_p50_s": _round(_percentile(lags, 0.50)), "lag_p99_s": _round(_percentile(lags, 0.99)),
        "lag_max_s": _round(max(lags) if lags else None),
        "commit_to_log_p50_ms": _round(_percentile(latencies, 0.50), 1),
        "commit_to_log_p99_ms": _round(_percentile(latencies, 0.99), 1),
        "records_lost": lost, "dead_letters": dead_letters, "per_key_order_violations": order_violations,
        "duplicates_by_event_id": len(steady) - len({r["eventID"] for r in steady}),
    }
    print(f"outbox under a steady load, lambda_ms = {lambda_ms}, {partitions} relays, {connections} writers:")
    print(f"  {changes} single-row changes in {wrote:.1f} s ({figures['rate_written']:,}/s written, {rate:,}/s asked), "
          f"{failed_writes} failed writes")
    print(f"  delivered: {figures['rate_delivered']} changes/s; outbox drained {figures['drained_after_writes_s']} s "
          f"after the last write")
    print(f"  lag (oldest waiting row, every 0.25 s): p50 {figures['lag_p50_s']} s, p99 {figures['lag_p99_s']} s, "
          f"max {figures['lag_max_s']} s")
    print(f"  commit → consumer log: p50 {figures['commit_to_log_p50_ms']} ms, p99 {figures['commit_to_log_p99_ms']} ms")
    print(f"  lost {lost}, per-key order violations {order_violations}, duplicates {figures['duplicates_by_event_id']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lambda-ms", type=int, default=35, help="round trip of each emulated Lambda call")
    parser.add_argument("--rate", type=int, default=1000, help="changes/s asked of all writers together")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=4, help="stream.relay_partitions")
    parser.add_argument("--per-connection-seconds", type=float, default=5.0)
    parser.add_argument("--trace", action="store_true", help="print each lag sample (stderr)")
    args = parser.parse_args()
    per_connection = part_one(args.lambda_ms, args.per_connection_seconds)
    figures = part_two(args.rate, args.seconds, args.connections, args.lambda_ms, args.partitions, args.trace)
    figures["direct_rows_per_s_per_connection"] = round(per_connection["direct"], 1)
    figures["outbox_rows_per_s_per_connection"] = round(per_connection["outbox"], 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
