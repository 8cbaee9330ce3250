"""Managed sinks in the sandbox (the sink resources made by the consumer stack in moto, the forwarder run
as deployed by the runner), per sink and delivery mode: a write load over many keys arrives complete,
each key in commit order where the sink keeps order (Kinesis per shard, SQS per message group), with
duplicates only as repeats of an eventID, while the sink throttles for a while (the runner's Lambda
worker patches botocore to refuse entries, see orchestrator/sandbox/sink_faults.py: moto cannot);
a record too large for the sink arrives keys-only and marked; verify passes through the sink."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.runner import SINK_FAULTS_FILE
from orchestrator.sandbox.sink_faults import faults_left, write_faults
from tests.sandbox.conftest import ROUTE_INSERT, ROUTE_UPDATE, local_config, root_connection, wait_for

WRITERS, KEYS_PER_WRITER, UPDATES = 4, 6, 4
BIG_BODY = 300_000  # over SQS's and EventBridge's 256 KiB per entry, under Kinesis's 1 MiB
NOTES = "CREATE TABLE IF NOT EXISTS `notes` (`id` INT PRIMARY KEY, `body` MEDIUMTEXT) CHARACTER SET utf8mb4;\n"


class QueueDrain:
    """The team's consumer of an SQS FIFO queue: receive, then delete, in the order SQS hands them out."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url, self.seen = sqs, url, []

    def records(self, term: str = "") -> list[tuple[dict, int]]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                                AttributeNames=["MessageGroupId"]).get("Messages", [])
            for message in messages:
                self.seen.append((json.loads(message["Body"]), int(time.time() * 1000)))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                return list(self.seen)

    def close(self) -> None:
        pass


def sink_reader(config_path: Path) -> Any:
    from orchestrator.deploy.stacks import describe_stack
    from orchestrator.deployment import sink_ref
    from orchestrator.verify.sink_readers import EventBridgeReader, KinesisReader

    config = load_config(config_path)
    aws = Sandbox(config).state().aws()
    sink = sink_ref(describe_stack(aws.client("cloudformation"), config.stack_name("consumer")).outputs)
    assert sink is not None and sink.kind == config.consumer.sink
    since = int(time.time() * 1000) - 1000
    if sink.kind == "kinesis":
        return KinesisReader(aws.client("kinesis"), sink.target, since)
    if sink.kind == "sqs":
        return QueueDrain(aws.client("sqs"), sink.target)
    return EventBridgeReader(aws.client("events"), aws.client("sqs"), sink.target,
                             ["rds-streams.flights.routes", "rds-streams.flights.notes"]).open()


def write_load(config_path: Path, tag: str) -> list[Exception]:
    errors: list[Exception] = []

    def writer(n: int) -> None:
        conn = root_connection(config_path)
        try:
            with conn.cursor() as cursor:
                for k in range(KEYS_PER_WRITER):
                    cursor.execute(ROUTE_INSERT, (f"W{n}K{k}", tag, "v0"))
                for version in range(1, UPDATES + 1):
                    for k in range(KEYS_PER_WRITER):
                        cursor.execute(ROUTE_UPDATE, (f"v{version}", f"W{n}K{k}", tag))
        except Exception as err:  # counted: there must be none
            errors.append(err)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def version_of(record: dict) -> int:
    image = record["dynamodb"]["NewImage"]
    return int(image["carrierCode"]["S"][1:])


@pytest.mark.parametrize("sink", ["kinesis", "sqs", "eventbridge"])
def test_a_write_load_reaches_the_sink_complete_in_key_order_while_it_throttles(tmp_path, capsys, sink):
    """Both delivery modes on one sandbox (the second `up` switches the mode in place): a sandbox start
    costs more than the load itself. Then verify passes through the sink, tail shows the records, and
    down removes what a killed verify would leave on an EventBridge bus."""
    from orchestrator.cli import main

    config_path = tmp_path / "config.toml"
    try:
        for note_id, delivery in enumerate(("direct", "outbox"), start=1):
            config_path = local_config(tmp_path, {"consumer": {"sink": sink}, "stream": {
                "delivery": delivery, "tables": [{"name": "routes"}, {"name": "notes"}]}})
            (tmp_path / "sql" / "migrations" / "V2__notes.sql").write_text(NOTES)
            assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
            load_arrives_complete_and_in_order(config_path, sink, delivery, note_id)
            if sink == "sqs" and delivery == "direct":
                a_failure_that_does_not_clear_reaches_the_dead_letter_queue(config_path)
        capsys.readouterr()
        assert main(["verify", "--config", str(config_path), "--output", "json"]) == 0
        checks = {o["name"]: o for o in json_lines(capsys.readouterr().out) if o["type"] == "check"}
        assert checks["round trip on the canary"]["outcome"] == "pass"
        if sink == "eventbridge":
            sink_reader(config_path)  # opened and never closed, as by a verify killed mid-check
            assert main(["tail", "--config", str(config_path), "--output", "json"]) == 2
        else:
            # the test's queue consumer took the routes' messages from SQS; verify's canary records stay
            assert main(["tail", "--config", str(config_path), "--output", "json", "--since", "10m", "--all"]) == 0
            shown = {o["table"] for o in json_lines(capsys.readouterr().out) if o["type"] == "record" and o["sink"] == sink}
            assert shown == ({"flights.routes", "flights.notes", "rds_streams.canary"} if sink == "kinesis"
                             else {"rds_streams.canary"}), "tail shows what is in the sink"
    finally:
        capsys.readouterr()
        assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    (down,) = [o for o in json_lines(capsys.readouterr().out) if o["type"] == "down"]
    if sink == "eventbridge":
        assert [r for r in down["removed"] if r.startswith("EventBridge rule rds-streams-verify-")], down


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def load_arrives_complete_and_in_order(config_path: Path, sink: str, delivery: str, note_id: int) -> None:
    reader = sink_reader(config_path)
    try:
        faults = Sandbox(load_config(config_path)).root / SINK_FAULTS_FILE
        write_faults(faults, 8)  # the next 8 requests to the sink: every other entry refused as throttled
        tag = f"SINK-{sink}-{delivery}"[:20]
        errors = write_load(config_path, tag)
        conn = root_connection(config_path)
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO `flights`.`notes` (`id`, `body`) VALUES (%s, %s)", (note_id, "n" * BIG_BODY))
        conn.close()
        expected = WRITERS * KEYS_PER_WRITER * (UPDATES + 1)

        def ours(record: dict) -> bool:
            keys = record["dynamodb"]["Keys"]
            return keys.get("airportTo") == {"S": tag} or keys.get("id") == {"N": str(note_id)}

        def arrived() -> list[dict] | None:
            records = [r for r, _ in reader.records(tag) if ours(r)]
            routes = {r["eventID"] for r in records if r["eventSourceARN"].endswith(".routes")}
            notes = [r for r in records if r["eventSourceARN"].endswith(".notes")]
            return records if len(routes) >= expected and notes else None

        records = wait_for(arrived, 60, f"{expected} route records and the note in the {sink} sink ({delivery})")
        assert errors == [], "no user's write failed"
        assert faults_left(faults) == 0, "the sink did throttle"

        by_id: dict[str, dict] = {}
        for record in records:
            assert by_id.setdefault(record["eventID"], record) == record, "a duplicate is a repeat of an eventID"
        routes = [r for r in by_id.values() if r["eventSourceARN"].endswith(".routes")]
        assert len(routes) == expected
        versions: dict[str, list[int]] = {}
        first_seen = list(dict.fromkeys(r["eventID"] for r in records))  # arrival order, duplicates dropped
        for event_id in first_seen:
            record = by_id[event_id]
            if record["eventSourceARN"].endswith(".routes"):
                versions.setdefault(record["dynamodb"]["Keys"]["airportFrom"]["S"], []).append(version_of(record))
        assert len(versions) == WRITERS * KEYS_PER_WRITER
        for key, seen in versions.items():
            assert sorted(seen) == list(range(UPDATES + 1)), key
            if sink != "eventbridge":  # EventBridge keeps no order
                assert seen == list(range(UPDATES + 1)), f"{key} out of commit order: {seen}"

        (note,) = [r for r in by_id.values() if r["eventSourceARN"].endswith(".notes")]
        stream = note["dynamodb"]
        if sink == "kinesis":
            assert len(stream["NewImage"]["body"]["S"]) == BIG_BODY, "1 MiB per Kinesis record: it fits whole"
        else:
            assert "NewImage" not in stream and stream["Keys"] == {"id": {"N": str(note_id)}}
            assert stream["rdsStreamsImagesOmitted"] is True
            assert f"over the {256 * 1024} allowed for one {sink} entry" in stream["rdsStreamsOmittedReason"]
    finally:
        reader.close()


def a_failure_that_does_not_clear_reaches_the_dead_letter_queue(config_path: Path) -> None:
    """The sink refuses the call (AccessDenied: no retry helps) for the first try and Lambda's two async
    retries: the forwarder fails each invocation, and the event lands in the dead-letter queue whole."""
    from orchestrator.deploy.stacks import describe_stack

    config = load_config(config_path)
    sandbox = Sandbox(config)
    write_faults(sandbox.root / SINK_FAULTS_FILE, 3, error="AccessDeniedException")
    conn = root_connection(config_path)
    with conn.cursor() as cursor:
        cursor.execute(ROUTE_INSERT, ("DLQ1", "SINK-DENIED", "v0"))
    conn.close()
    aws = sandbox.state().aws()
    queue = describe_stack(aws.client("cloudformation"), config.stack_name("consumer")).outputs["DeadLetterQueueUrl"]

    def dead_letters() -> list[dict]:
        messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    (dead,) = wait_for(dead_letters, 30, "the event in the dead-letter queue")
    assert dead["requestContext"]["condition"] == "RetriesExhausted"
    assert dead["requestPayload"]["Records"][0]["dynamodb"]["Keys"]["airportFrom"] == {"S": "DLQ1"}
    assert dead["responsePayload"]["errorType"] == "ClientError"
    assert faults_left(sandbox.root / SINK_FAULTS_FILE) == 0
