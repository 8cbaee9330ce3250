"""rds-streams forwarder: puts each change record into the configured sink (Kinesis, SQS FIFO or
EventBridge), in per-key order where the sink keeps order, and fails the invocation when a record
cannot be delivered, so the stream's own retry and dead-letter path takes the whole batch.

Inlined verbatim into the consumer stack's template (as index.py) and run as deployed by the sandbox's
runner: standard library and boto3 only (the Lambda runtime has both), one module, handler(event, context).

Environment: RDS_STREAMS_SINK (kinesis | sqs | eventbridge), RDS_STREAMS_SINK_TARGET (stream name,
queue URL or bus name), optionally RDS_STREAMS_USER_HANDLER ("module.function"): a team's own handler,
called with the same event after every record reached the sink.

Order: a request never carries two records of the same key. Kinesis and SQS accept or refuse each entry
of a batch on its own, so a later entry of a key could be stored while an earlier one was refused and
retried, overtaking it; with one entry per key per request, the next record of a key is only sent
after the previous one was accepted.
"""

import hashlib
import importlib
import json
import os
import random
import time

OWN_SCHEMA = "rds_streams"  # verify's canary table lives here
MARKER = "rdsStreamsImagesOmitted"  # the field the triggers set on a record degraded to its keys
REASON = "rdsStreamsOmittedReason"
RETRYABLE = {"ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "RequestThrottled",
             "InternalFailure", "InternalError", "ServiceUnavailable", "KMSThrottlingException",
             "LimitExceededException", "RequestLimitExceeded", "ThrottledException"}
MAX_ATTEMPTS = int(os.environ.get("RDS_STREAMS_SINK_ATTEMPTS", "10"))
BACKOFF_BASE, BACKOFF_CAP = 0.05, 4.0
SAFETY_MS = 3000  # stop retrying this long before the invocation would time out: fail it instead

# Per sink: entries per request, bytes per request, bytes per entry, longest order key (None: unordered).
LIMITS = {
    "kinesis": (500, 5 * 1024 * 1024, 1024 * 1024, 256),
    "sqs": (10, 256 * 1024, 256 * 1024, 128),
    "eventbridge": (10, 256 * 1024, 256 * 1024, None),
}
_clients = {}


def _line(value):
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


def origin(record):
    """(schema, table) from the record's eventSourceARN (.../stream/<schema>.<table>)."""
    tail = str(record.get("eventSourceARN", "")).rsplit("/", 1)[-1]
    schema, _, table = tail.partition(".")
    return schema, table


def order_key(record, limit):
    """The table and the record's keys as stable text; its SHA-256 when too long or not plain ASCII
    (SQS group ids allow printable ASCII without spaces only)."""
    schema, table = origin(record)
    keys = json.dumps(record.get("dynamodb", {}).get("Keys", {}), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    text = f"{schema}.{table}:{keys}"
    if len(text) <= limit and all(33 <= ord(c) <= 126 for c in text):
        return text
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dedup_id(event_id):
    text = str(event_id)
    if len(text) <= 128 and all(33 <= ord(c) <= 126 for c in text):
        return text
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def keys_only(record, size, limit, sink):
    """The record without its images, marked as the triggers mark one too large for Lambda."""
    slim = json.loads(json.dumps(record))
    stream = slim.setdefault("dynamodb", {})
    stream.pop("NewImage", None)
    stream.pop("OldImage", None)
    stream[MARKER] = True
    stream[REASON] = f"the record with images takes {size} bytes, over the {limit} allowed for one {sink} entry"
    return slim


class Entry:
    """One record as the sink's request entry, with what batching needs to know about it."""

    def __init__(self, index, record, sink, target):
        self.index = index
        self.record = record
        per_request, _total, per_entry, key_limit = LIMITS[sink]
        self.key = order_key(record, key_limit) if key_limit else f"#{index}"
        self.request = self._request(record, sink, target)
        self.size = self._size(sink)
        self.degraded = False
        self.refusals = 0
        self.receipt = None  # what the sink answered once it stored the entry
        if self.size > per_entry:
            self.record = keys_only(record, self.size, per_entry, sink)
            self.request = self._request(self.record, sink, target)
            self.size = self._size(sink)
            self.degraded = True
            if self.size > per_entry:
                raise ValueError(f"record {record.get('eventID')}: even its keys take {self.size} bytes, over the "
                                 f"{per_entry} one {sink} entry may hold")

    def _request(self, record, sink, target):
        body = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        if sink == "kinesis":
            return {"Data": body.encode("utf-8"), "PartitionKey": self.key}
        if sink == "sqs":
            return {"Id": str(self.index), "MessageBody": body, "MessageGroupId": self.key,
                    "MessageDeduplicationId": dedup_id(record.get("eventID", self.index))}
        schema, table = origin(record)
        return {"Source": f"rds-streams.{schema}.{table}", "DetailType": str(record.get("eventName", "UNKNOWN")),
                "Detail": body, "EventBusName": target}

    def _size(self, sink):
        r = self.request
        if sink == "kinesis":
            return len(r["Data"]) + len(r["PartitionKey"].encode("utf-8"))
        if sink == "sqs":
            return len(r["MessageBody"].encode("utf-8"))
        return sum(len(r[k].encode("utf-8")) for k in ("Source", "DetailType", "Detail"))


def next_batch(pending, sink):
    """The next request's entries, in record order: within the sink's limits, at most one per key, and
    never a record whose key has an earlier record still waiting. Returns (batch, rest)."""
    per_request, total_limit, _per_entry, _key_limit = LIMITS[sink]
    batch, rest, keys, waiting, total = [], [], set(), set(), 0
    for entry in pending:
        fits = len(batch) < per_request and total + entry.size <= total_limit
        if fits and entry.key not in keys and entry.key not in waiting:
            batch.append(entry)
            keys.add(entry.key)
            total += entry.size
        else:
            rest.append(entry)
            waiting.add(entry.key)
    return batch, rest


def _client(sink):
    if sink not in _clients:
        import boto3
        from botocore.config import Config

        service = {"kinesis": "kinesis", "sqs": "sqs", "eventbridge": "events"}[sink]
        # Our own backoff keeps per-key order; botocore's would retry whole requests behind our back.
        _clients[sink] = boto3.client(service, config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    return _clients[sink]


def put(sink, target, batch, client):
    """Send one request; the entries the sink refused, with the reason, as [(entry, reason)]."""
    if sink == "kinesis":
        name = {"StreamARN": target} if target.startswith("arn:") else {"StreamName": target}
        reply = client.put_records(Records=[e.request for e in batch], **name)
        for e, r in zip(batch, reply["Records"], strict=True):
            e.receipt = {"shardId": r.get("ShardId"), "sequenceNumber": r.get("SequenceNumber")}
        return [(e, r.get("ErrorCode")) for e, r in zip(batch, reply["Records"], strict=True) if r.get("ErrorCode")]
    if sink == "sqs":
        reply = client.send_message_batch(QueueUrl=target, Entries=[e.request for e in batch])
        by_id = {e.request["Id"]: e for e in batch}
        for ok in reply.get("Successful", []):
            by_id[ok["Id"]].receipt = {"messageId": ok.get("MessageId"), "sequenceNumber": ok.get("SequenceNumber")}
        bad = [f for f in reply.get("Failed", []) if f.get("SenderFault")]
        if bad:  # the message itself is wrong: retrying cannot help
            raise RuntimeError(f"SQS refused {len(bad)} message(s) as malformed: {bad[0].get('Message')}")
        return [(by_id[f["Id"]], f.get("Code")) for f in reply.get("Failed", [])]
    reply = client.put_events(Entries=[e.request for e in batch])
    for e, r in zip(batch, reply["Entries"], strict=True):
        e.receipt = {"eventId": r.get("EventId")}
    return [(e, r.get("ErrorCode")) for e, r in zip(batch, reply["Entries"], strict=True) if r.get("ErrorCode")]


def _error_code(err):
    response = getattr(err, "response", None) or {}
    return response.get("Error", {}).get("Code")


def forward(records, sink, target, client, context=None, sleep=None):
    """Every record into the sink or an exception: returns (requests, degraded eventIDs, the entries). A record
    refused MAX_ATTEMPTS times (or when the invocation runs out of time) fails the invocation."""
    pending = [Entry(i, r, sink, target) for i, r in enumerate(records)]
    degraded = [e.record.get("eventID") for e in pending if e.degraded]
    delivered = list(pending)
    requests = 0
    while pending:
        batch, rest = next_batch(pending, sink)
        requests += 1
        try:
            refused = put(sink, target, batch, client)
        except Exception as err:
            if _error_code(err) not in RETRYABLE and not _is_connection_error(err):
                raise
            refused = [(e, _error_code(err) or type(err).__name__) for e in batch]
        if not refused:
            pending = rest
            continue
        for entry, _reason in refused:
            entry.refusals += 1
        worst = max(e.refusals for e, _ in refused)
        if worst >= MAX_ATTEMPTS or _out_of_time(context):
            reasons = sorted({str(reason) for _, reason in refused})
            raise RuntimeError(f"{sink} refused {len(refused)} of {len(batch)} record(s), one of them {worst} times "
                               f"({', '.join(reasons)}); failing the invocation so the stream retries the batch")
        pending = sorted(rest + [e for e, _ in refused], key=lambda e: e.index)
        (sleep or time.sleep)(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** worst)))
    return requests, degraded, delivered


def _is_connection_error(err):
    return type(err).__name__ in {"EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
                                  "ConnectTimeoutError"}


def _out_of_time(context):
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is not None and remaining() < SAFETY_MS


def _user_handler():
    name = os.environ.get("RDS_STREAMS_USER_HANDLER")
    if not name:
        return None
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(module), function)


def handler(event, context=None):
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        # A probe payload or anything else: logged whole, as the logging consumer does, never forwarded.
        print(_line({"rds_streams": "message", "payload": event}))
        return {"records": 0}
    sink, target = os.environ["RDS_STREAMS_SINK"], os.environ["RDS_STREAMS_SINK_TARGET"]
    changes = [r for r in records if isinstance(r, dict) and "eventID" in r]
    for other in records:
        if not (isinstance(other, dict) and "eventID" in other):
            print(_line({"rds_streams": "malformed-record", "record": other}))
    requests, degraded, entries = forward(changes, sink, target, _client(sink), context) if changes else (0, [], [])
    print(_line({"rds_streams": "forwarded", "sink": sink, "records": len(changes), "requests": requests,
                 "keys_only": degraded, "eventIDs": [r["eventID"] for r in changes]}))
    for entry in entries:
        # `verify`'s canary (our own schema, never user data): the record and the sink's receipt, so
        # verify can prove delivery into a queue it must not read from (see orchestrator/verify/sink_readers.py).
        if origin(entry.record)[0] == OWN_SCHEMA:
            print(_line({"rds_streams": "delivered", "sink": sink, "receipt": entry.receipt, "record": entry.record}))
    user = _user_handler()
    if user is not None:
        return user(event, context)
    return {"records": len(changes), "sink": sink}
