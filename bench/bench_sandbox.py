"""The sandbox end to end, as a user runs it: wall time of `up`, `verify` and `down` (whole
processes), then the commit-to-log latency of 1,000 single-row transactions through the tunnel
(issue 5), as median and 99th percentile.

    .venv/bin/python bench/bench_sandbox.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workdir import project_dir  # noqa: E402
from orchestrator.cancel import CancelToken  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.database.probe import filter_events  # noqa: E402
from orchestrator.lifecycle import context_for  # noqa: E402
from orchestrator.ui import UI, OutputFormat  # noqa: E402

CLI = str(Path(sys.executable).with_name("rds-streams"))


def timed(*args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([CLI, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"rds-streams {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def latencies(config_path: Path, rows: int) -> list[float]:
    config = load_config(config_path)
    ctx = context_for(config, UI(output=OutputFormat.JSON), CancelToken())
    try:
        conn = ctx.session.connect("app", database=config.database.name)
        commits: dict[str, float] = {}
        started_ms = int(time.time() * 1000) - 1000
        with conn.cursor() as cursor:
            for n in range(rows):
                key = f"bench{n:05d}"
                cursor.execute("INSERT INTO `routes` (`airportFrom`, `airportTo`, `operator`, `group`, `carrierCode`)"
                               " VALUES (%s, 'LAT', 'bench', 'bench', 'BX')", (key,))
                commits[key] = time.time() * 1000  # autocommit: each row its own transaction
        logs = ctx.aws.client("logs")
        deadline = time.monotonic() + 120
        found: dict[str, float] = {}
        while len(found) < rows and time.monotonic() < deadline:
            for event in filter_events(logs, ctx.deployment.log_group, '"LAT"', started_ms):
                try:
                    record = json.loads(event["message"])
                except json.JSONDecodeError:
                    continue
                key = record.get("dynamodb", {}).get("Keys", {}).get("airportFrom", {}).get("S")
                if key in commits and key not in found:
                    found[key] = event["timestamp"] - commits[key]
            time.sleep(0.5)
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM `routes` WHERE `airportTo` = 'LAT'")
        conn.close()
    finally:
        ctx.close()
    if len(found) < rows:
        sys.exit(f"only {len(found)} of {rows} records reached the log")
    return sorted(found.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    rows = parser.parse_args().rows
    with project_dir() as config_path:
        config = ["--config", str(config_path)]
        try:
            print(f"up (fresh sandbox)       {timed('up', *config, '--yes'):6.2f} s")
            print(f"up (again, no changes)   {timed('up', *config, '--yes'):6.2f} s")
            print(f"verify                   {timed('verify', *config):6.2f} s")
            values = latencies(config_path, rows)
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(f"commit → log, {rows} single-row transactions: median {statistics.median(values):.1f} ms, "
                  f"p99 {p99:.1f} ms, max {values[-1]:.1f} ms")
        finally:
            print(f"down                     {timed('down', *config, '--yes'):6.2f} s")


if __name__ == "__main__":
    main()
