"""Managed sinks (issue 13): how fast the forwarder moves a burst of changes into each sink in the
sandbox (outbox delivery, batches of 100, moto as the sink), and how many requests that took.

N single-row changes over K keys (an insert per key, then updates round-robin), committed as fast as
one writer can, then: time from the first commit until every record is in the sink, records/s, and the
forwarder's requests per record (one record per key per request keeps per-key order, so few keys
mean small requests). Figures are for moto on this machine, not for AWS: moto's SQS FIFO checks every
stored message on each send (0.45 s per 10-message batch with 300 messages queued, measured), and
its EventBridge delivery to a queue is slow too, so for those two the time says more about moto
than about the forwarder; the requests per record are ours.

    .venv/bin/python bench/bench_sinks.py [--changes 3000] [--keys 300] [--sink kinesis --sink sqs ...]
"""

from __future__ import annotations

import argparse
import json
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
from orchestrator.verify.sink_readers import EventBridgeReader, KinesisReader  # noqa: E402

INSERT = ("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, `carrierCode`) "
          "VALUES (%s, 'BENCH', 'op', 'grp', 'v0')")
UPDATE = "UPDATE `flights`.`routes` SET `carrierCode` = %s WHERE `airportFrom` = %s AND `airportTo` = 'BENCH'"


class Drain:
    """SQS: a consumer that receives and deletes (the bench owns the queue)."""

    def __init__(self, sqs, url: str) -> None:
        self.sqs, self.url, self.count = sqs, url, 0

    def records(self, term: str = "") -> list:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            for m in messages:
                self.count += "BENCH" in m["Body"]
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            if not messages:
                return [None] * self.count

    def close(self) -> None:
        pass


def run(sink: str, changes: int, keys: int) -> None:
    cli = str(Path(sys.executable).with_name("rds-streams"))
    replace = {'delivery = "direct"': 'delivery = "outbox"', 'log_retention_days = 7': f'log_retention_days = 7\nsink = "{sink}"'}
    with project_dir(**replace) as config_file:
        subprocess.run([cli, "up", "--config", str(config_file), "--yes"], check=True, capture_output=True)
        ctx = context_for(load_config(config_file), UI(output=OutputFormat.JSON), CancelToken())
        try:
            target = ctx.deployment.sink.target
            since = int(time.time() * 1000) - 1000
            reader = (KinesisReader(ctx.aws.client("kinesis"), target, since) if sink == "kinesis"
                      else Drain(ctx.aws.client("sqs"), target) if sink == "sqs"
                      else EventBridgeReader(ctx.aws.client("events"), ctx.aws.client("sqs"), target,
                                             ["rds-streams.flights.routes"]).open())
            writer = ctx.sandbox_state.root_connection()
            started = time.perf_counter()
            with writer.cursor() as cursor:
                for n in range(changes):
                    key = f"K{n % keys:05d}"
                    if n < keys:
                        cursor.execute(INSERT, (key,))
                    else:
                        cursor.execute(UPDATE, (f"v{n // keys}", key))
            wrote = time.perf_counter() - started
            seen = 0
            while time.perf_counter() - started < 300:
                found = reader.records("")
                seen = len(found) if sink == "sqs" else sum(
                    1 for r, _ in found if r["dynamodb"]["Keys"].get("airportTo") == {"S": "BENCH"})
                if seen >= changes:
                    break
                time.sleep(0.2)
            arrived = time.perf_counter() - started
            reader.close()
            requests = 0
            for event in filter_events(ctx.aws.client("logs"), ctx.deployment.log_group, '"forwarded"', since):
                line = json.loads(event["message"])
                requests += line.get("requests", 0)
            writer.close()
        finally:
            ctx.close()
            subprocess.run([cli, "down", "--config", str(config_file), "--yes"], capture_output=True)
    print(f"{sink}: {changes} changes over {keys} keys written in {wrote:.1f} s; {seen} in the sink after "
          f"{arrived:.1f} s ({seen / arrived:,.0f} records/s end to end); {requests} put requests "
          f"({seen / max(requests, 1):.1f} records per request)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--sink", action="append", choices=["kinesis", "sqs", "eventbridge"])
    args = parser.parse_args()
    for sink in args.sink or ["kinesis", "sqs", "eventbridge"]:
        run(sink, args.changes, args.keys)


if __name__ == "__main__":
    main()
