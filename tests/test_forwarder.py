"""The forwarder's rules, against a small in-memory sink that refuses entries as the real services do
(a partial batch failure): per-key order under refusals, only refused entries resent, sizes and
keys within each sink's limits, a refusal that does not clear failing the invocation. The same code
runs against moto in tests/sandbox/test_sinks.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from blueprints import consumer_forwarder as forwarder

ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:c/stream/{schema}.{table}"


def record(key: str, n: int, *, table: str = "routes", payload: str = "", event: str = "MODIFY") -> dict:
    return {"eventID": f"{key}-{n}", "eventName": event, "eventSourceARN": ARN.format(schema="flights", table=table),
            "dynamodb": {"Keys": {"id": {"S": key}}, "NewImage": {"id": {"S": key}, "n": {"N": str(n)},
                                                                  "blob": {"S": payload}},
                         "SequenceNumber": f"{n:021d}", "StreamViewType": "NEW_IMAGE"}}


class FlakySink:
    """Stores what it accepts, per order key, in arrival order; `refuse(call, position)` decides refusals."""

    def __init__(self, refuse: Callable[[int, int], bool] = lambda call, position: False) -> None:
        self.refuse = refuse
        self.calls: list[int] = []
        self.stored: list[dict] = []

    def _take(self, entries: list[dict], body: Callable[[dict], str]) -> list[bool]:
        call = len(self.calls)
        self.calls.append(len(entries))
        accepted = []
        for position, entry in enumerate(entries):
            ok = not self.refuse(call, position)
            if ok:
                self.stored.append(json.loads(body(entry)))
            accepted.append(ok)
        return accepted

    def put_records(self, Records: list[dict], StreamName: str) -> dict:  # noqa: N803 (boto3's names)
        accepted = self._take(Records, lambda e: e["Data"].decode())
        return {"Records": [{"SequenceNumber": "1"} if ok else {"ErrorCode": "ProvisionedThroughputExceededException"}
                            for ok in accepted]}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803
        accepted = self._take(Entries, lambda e: e["MessageBody"])
        return {"Successful": [{"Id": e["Id"]} for e, ok in zip(Entries, accepted, strict=True) if ok],
                "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "RequestThrottled"}
                           for e, ok in zip(Entries, accepted, strict=True) if not ok]}

    def put_events(self, Entries: list[dict]) -> dict:  # noqa: N803
        accepted = self._take(Entries, lambda e: e["Detail"])
        return {"Entries": [{"EventId": "e"} if ok else {"ErrorCode": "ThrottlingException"} for ok in accepted]}


def forward(records: list[dict], sink: str, client: FlakySink) -> tuple[int, list[str]]:
    requests, degraded, _entries = forwarder.forward(records, sink, "target", client, sleep=lambda _s: None)
    return requests, degraded


def per_key(stored: list[dict]) -> dict[str, list[int]]:
    order: dict[str, list[int]] = {}
    for r in stored:
        order.setdefault(r["dynamodb"]["Keys"]["id"]["S"], []).append(int(r["dynamodb"]["NewImage"]["n"]["N"]))
    return order


@pytest.mark.parametrize("sink", ["kinesis", "sqs"])
def test_refused_entries_are_resent_and_no_record_overtakes_an_earlier_one_of_its_key(sink):
    records = [record(f"k{i % 7}", i) for i in range(200)]
    sink_client = FlakySink(refuse=lambda call, position: call < 30 and position % 3 == 1)
    forward(records, sink, sink_client)
    expected = per_key(records)
    assert per_key(sink_client.stored) == expected, "every record once, each key in order"
    assert max(sink_client.calls) <= forwarder.LIMITS[sink][0]


def test_a_request_never_carries_two_records_of_one_key_and_only_refused_entries_are_resent():
    records = [record("hot", i) for i in range(3)] + [record(f"k{i}", i) for i in range(3, 8)]
    sink_client = FlakySink(refuse=lambda call, position: call == 0 and position == 0)
    forward(records, "sqs", sink_client)
    assert sink_client.calls[0] == 6, "hot-0 and k3..k7: hot-1 and hot-2 wait for hot-0"
    assert [r["eventID"] for r in sink_client.stored].count("k3-3") == 1
    assert per_key(sink_client.stored)["hot"] == [0, 1, 2]


def test_eventbridge_batches_ten_entries_with_source_and_detail_type_from_the_record():
    sent: list[dict] = []

    class Bus(FlakySink):
        def put_events(self, Entries):  # noqa: N803
            sent.extend(Entries)
            return super().put_events(Entries)

    records = [record("same", i, table="fares", event="INSERT") for i in range(25)]
    bus = Bus()
    forward(records, "eventbridge", bus)
    assert bus.calls == [10, 10, 5], "no order to keep: one key may fill a request"
    assert {(e["Source"], e["DetailType"], e["EventBusName"]) for e in sent} == {
        ("rds-streams.flights.fares", "INSERT", "target")}
    assert json.loads(sent[0]["Detail"]) == records[0]


@pytest.mark.parametrize(("sink", "limit"), [("sqs", 256 * 1024), ("eventbridge", 256 * 1024)])
def test_a_record_too_large_for_the_sink_arrives_keys_only_and_marked(sink, limit):
    big = record("big", 1, payload="x" * (limit + 10))
    small = record("small", 2)
    client = FlakySink()
    _attempts, degraded = forward([big, small], sink, client)
    assert degraded == ["big-1"]
    stored = {r["eventID"]: r for r in client.stored}
    assert stored["small-2"] == small
    slim = stored["big-1"]["dynamodb"]
    assert "NewImage" not in slim and slim["Keys"] == {"id": {"S": "big"}}
    assert slim["rdsStreamsImagesOmitted"] is True and str(limit) in slim["rdsStreamsOmittedReason"]


def test_requests_stay_within_the_total_size_of_a_kinesis_put():
    records = [record(f"k{i}", i, payload="y" * 900_000) for i in range(12)]
    client = FlakySink()
    forward(records, "kinesis", client)
    assert client.calls == [5, 5, 2], "5 MiB per PutRecords"


def test_order_keys_and_deduplication_ids_fit_the_sinks_rules():
    plain = record("LHR", 1)
    assert forwarder.order_key(plain, 128) == 'flights.routes:{"id":{"S":"LHR"}}'
    for odd in (record("with space", 1), record("é", 1), record("z" * 300, 1)):
        key = forwarder.order_key(odd, 128)
        assert len(key) == 64 and all(33 <= ord(c) <= 126 for c in key)
        assert key == forwarder.order_key(odd, 128), "stable"
    assert forwarder.dedup_id("93cac1f9-ee7e-11f1-b1d5-02fc00000001") == "93cac1f9-ee7e-11f1-b1d5-02fc00000001"
    assert len(forwarder.dedup_id("x" * 200)) == 64


def test_a_refusal_that_does_not_clear_fails_the_invocation_without_losing_order():
    records = [record("k", i) for i in range(3)]
    client = FlakySink(refuse=lambda call, position: call >= 1)
    with pytest.raises(RuntimeError, match="refused 1 of 1 record"):
        forward(records, "kinesis", client)
    assert per_key(client.stored) == {"k": [0]}, "nothing after the refused record was sent"


def test_a_throttled_request_is_retried_whole_and_other_errors_fail_at_once():
    class Throttled(Exception):
        def __init__(self, code: str) -> None:
            self.response = {"Error": {"Code": code}}

    class Sink(FlakySink):
        def __init__(self, code: str) -> None:
            super().__init__()
            self.code, self.raised = code, 0

        def put_records(self, Records, StreamName):  # noqa: N803
            if self.raised < 2:
                self.raised += 1
                raise Throttled(self.code)
            return super().put_records(Records, StreamName)

    ok = Sink("ProvisionedThroughputExceededException")
    forward([record("a", 1)], "kinesis", ok)
    assert [r["eventID"] for r in ok.stored] == ["a-1"]
    with pytest.raises(Throttled):
        forward([record("a", 1)], "kinesis", Sink("AccessDeniedException"))


def test_the_handler_logs_probes_forwards_records_then_calls_the_teams_handler(tmp_path, monkeypatch, capsys):
    (tmp_path / "team_app.py").write_text("SEEN = []\ndef handler(event, context):\n"
                                          "    SEEN.append(len(event['Records']))\n    return {'team': True}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    client = FlakySink()
    monkeypatch.setitem(forwarder._clients, "sqs", client)
    monkeypatch.setenv("RDS_STREAMS_SINK", "sqs")
    monkeypatch.setenv("RDS_STREAMS_SINK_TARGET", "https://queue")
    assert forwarder.handler({"rds_streams_probe": "m-1"}) == {"records": 0}
    assert '"rds_streams_probe":"m-1"' in capsys.readouterr().out
    assert forwarder.handler({"Records": [record("a", 1)]}) == {"records": 1, "sink": "sqs"}
    monkeypatch.setenv("RDS_STREAMS_USER_HANDLER", "team_app.handler")
    assert forwarder.handler({"Records": [record("a", 2)]}) == {"team": True}
    import team_app

    assert team_app.SEEN == [1] and len(client.stored) == 2
    client.refuse = lambda call, position: True
    monkeypatch.setattr(forwarder, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(forwarder.time, "sleep", lambda _s: None)
    with pytest.raises(RuntimeError):
        forwarder.handler({"Records": [record("a", 3)]})
    assert team_app.SEEN == [1], "the team's handler runs only after every record reached the sink"
