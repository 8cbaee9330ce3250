"""Where verify, the smoke test and `tail` read change records back from: the consumer's log, or the sink
our forwarder feeds, always without taking anything from the team that reads that sink.

- log: CloudWatch Logs' filter on a text the record contains.
- kinesis: our own shard iterators (AT_TIMESTAMP), as any extra reader of a stream; consumers of the
  stream see nothing of it (reads are not consumption; only the read throughput is shared).
- sqs: a FIFO queue cannot be read without interfering: a received message is hidden from the team's
  consumers (with VisibilityTimeout=0 it is not, but counts one more receive towards their redrive
  policy), and receives return the oldest message groups first, so a reader never gets past a backlog
  to the canary's group. So verify reads SQS's own acceptance instead: for the canary's records only
  (our schema, no user data), the forwarder logs the record with the MessageId and SequenceNumber
  SQS returned, which it returns only once the message is stored. `tail`, and `verify --tables` (no
  receipts are logged for user data), peek with VisibilityTimeout=0, documented as such.
- eventbridge: keeps no copy of what it routed, so a rule of ours (matching only the sources we
  wait for) copies the events to a queue of ours; both are removed when the reader closes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

VERIFY_PREFIX = "rds-streams-verify-"  # verify's temporary rule and queue on an EventBridge sink
Found = tuple[dict[str, Any], int]  # a change record and when it reached the log or sink (epoch ms)


class RecordReader(Protocol):
    where: str

    def records(self, term: str) -> list[Found]:
        """Every change record seen since the reader opened (the log's filter wants a text they contain)."""
        ...

    def close(self) -> None: ...


def parse_change(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return record if isinstance(record, dict) and "eventName" in record else None


@dataclass
class LogReader:
    logs: Any
    group: str
    since_ms: int

    @property
    def where(self) -> str:
        return self.group

    def records(self, term: str) -> list[Found]:
        from orchestrator.database.probe import filter_events

        found = []
        for event in filter_events(self.logs, self.group, f'"{term}"' if term else None, self.since_ms):
            record = parse_change(event["message"])
            if record is not None:
                found.append((record, event["timestamp"]))
        return found

    def close(self) -> None:
        pass


@dataclass
class KinesisReader:
    kinesis: Any
    stream: str
    since_ms: int
    seen: list[Found] = field(default_factory=list)
    iterators: dict[str, str | None] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Kinesis stream {self.stream}"

    def _open_shards(self) -> None:
        shards = self.kinesis.list_shards(StreamName=self.stream)["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.kinesis.get_shard_iterator(
                    StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="AT_TIMESTAMP",
                    Timestamp=self.since_ms / 1000)["ShardIterator"]

    def records(self, term: str = "") -> list[Found]:
        self._open_shards()  # on-demand streams split shards as they grow
        for shard, iterator in list(self.iterators.items()):
            for _ in range(20):  # a page at a time until caught up
                if iterator is None:
                    break
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
                iterator = page.get("NextShardIterator")
                for item in page["Records"]:
                    record = parse_change(item["Data"].decode("utf-8"))
                    if record is not None:
                        self.seen.append((record, int(item["ApproximateArrivalTimestamp"].timestamp() * 1000)))
                if not page["Records"] or not page.get("MillisBehindLatest"):
                    break
            self.iterators[shard] = iterator
        return list(self.seen)

    def close(self) -> None:
        pass


@dataclass
class ReceiptReader:
    """The records the forwarder logged with the sink's receipt (canary records only)."""

    logs: Any
    group: str
    since_ms: int
    sink: str

    @property
    def where(self) -> str:
        return f"{self.sink} (its receipts in {self.group})"

    def records(self, term: str) -> list[Found]:
        from orchestrator.database.probe import filter_events

        found = []
        for event in filter_events(self.logs, self.group, f'"{term}"' if term else None, self.since_ms):
            try:
                line = json.loads(event["message"])
            except (json.JSONDecodeError, TypeError):
                continue
            receipt = line.get("receipt") if isinstance(line, dict) and line.get("rds_streams") == "delivered" else None
            record = line.get("record") if receipt else None
            if isinstance(record, dict) and "eventName" in record and any(receipt.values()):
                found.append((record, event["timestamp"]))
        return found

    def close(self) -> None:
        pass


@dataclass
class SqsPeekReader:
    sqs: Any
    queue_url: str
    since_ms: int
    seen: dict[str, Found] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"SQS queue {self.queue_url.rsplit('/', 1)[-1]}"

    def records(self, term: str = "") -> list[Found]:
        for _ in range(10):
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                                WaitTimeSeconds=0, MessageSystemAttributeNames=["SentTimestamp"]
                                                ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in self.seen]
            for message in fresh:
                sent = int(message.get("Attributes", {}).get("SentTimestamp", 0))
                record = parse_change(message["Body"])
                if record is not None and sent >= self.since_ms:
                    self.seen[message["MessageId"]] = (record, sent)
            if not fresh:
                break
        return list(self.seen.values())

    def close(self) -> None:
        pass


@dataclass
class EventBridgeReader:
    """A rule on the bus for `sources` only, to a queue of ours; removed by close()."""

    events: Any
    sqs: Any
    bus: str
    sources: list[str]
    seen: list[Found] = field(default_factory=list)
    name: str = field(default_factory=lambda: f"{VERIFY_PREFIX}{uuid.uuid4().hex[:12]}")
    queue_url: str | None = None
    rule_created: bool = False

    @property
    def where(self) -> str:
        return f"EventBridge bus {self.bus} (through the rule {self.name})"

    def open(self) -> EventBridgeReader:
        try:
            self.queue_url = self.sqs.create_queue(QueueName=self.name, Attributes={
                "MessageRetentionPeriod": "3600", "SqsManagedSseEnabled": "true"})["QueueUrl"]
            queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                      AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            rule_arn = self.events.put_rule(Name=self.name, EventBusName=self.bus, State="ENABLED",
                                            EventPattern=json.dumps({"source": self.sources}),
                                            Description="rds-streams verify: temporary, removed after the check"
                                            )["RuleArn"]
            self.rule_created = True
            self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                    "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
            self.events.put_targets(Rule=self.name, EventBusName=self.bus, Targets=[{"Id": "verify", "Arn": queue_arn}])
        except Exception:
            self.close()
            raise
        return self

    def records(self, term: str = "") -> list[Found]:
        assert self.queue_url is not None
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages", [])
            now = int(time.time() * 1000)  # EventBridge's own time has whole seconds only
            for message in messages:
                envelope = json.loads(message["Body"])
                detail = envelope.get("detail")
                if isinstance(detail, dict) and "eventName" in detail:
                    self.seen.append((detail, now))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if len(messages) < 10:
                return list(self.seen)

    def close(self) -> None:
        from botocore.exceptions import ClientError

        if self.rule_created:
            try:
                self.events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["verify"])
            except ClientError:
                pass  # no target yet: the rule itself still goes
            self.events.delete_rule(Name=self.name, EventBusName=self.bus)
            self.rule_created = False
        if self.queue_url is not None:
            self.sqs.delete_queue(QueueUrl=self.queue_url)
            self.queue_url = None


def open_reader(aws: Any, deployment: Any, since_ms: int, sources: list[str], configured: str = "log") -> RecordReader:
    """The reader for where this deployment's stream ends. `sources`: "schema.table" the caller waits for
    (EventBridge's rule matches only those); `configured`: the config's consumer.sink, which the deployed
    consumer stack must match."""
    sink = deployment.sink
    if (sink.kind if sink else "log") != configured:
        from orchestrator.errors import OperationFailed

        raise OperationFailed(f"config.toml sets consumer.sink = \"{configured}\" but the deployed consumer stack ends "
                              f"in {sink.kind if sink else 'the log'}", hint="run `rds-streams up` to deploy the sink")
    if sink is None:
        return LogReader(aws.client("logs"), deployment.log_group, since_ms)
    if sink.kind == "kinesis":
        return KinesisReader(aws.client("kinesis"), sink.target, since_ms)
    if sink.kind == "sqs" and any(not s.startswith("rds_streams.") for s in sources):
        # a user's table (verify --tables): no receipts are logged for user data, so peek
        return SqsPeekReader(aws.client("sqs"), sink.target, since_ms)
    if sink.kind == "sqs":
        return ReceiptReader(aws.client("logs"), deployment.log_group, since_ms, f"SQS queue {sink.target.rsplit('/', 1)[-1]}")
    return EventBridgeReader(aws.client("events"), aws.client("sqs"), sink.target,
                             [f"rds-streams.{s}" for s in sources]).open()


def remove_verify_leftovers(events: Any, sqs: Any, bus: str) -> list[str]:
    """The rules and queues a killed verify left behind (a bus with rules cannot be deleted)."""
    removed = []
    for rule in events.list_rules(EventBusName=bus, NamePrefix=VERIFY_PREFIX).get("Rules", []):
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus).get("Targets", [])
        if targets:
            events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
        removed.append(f"EventBridge rule {rule['Name']}")
    for url in sqs.list_queues(QueueNamePrefix=VERIFY_PREFIX).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
        removed.append(f"queue {url.rsplit('/', 1)[-1]}")
    return removed
