"""A sink and your own code together (`consumer.sink` with `consumer.source`): our forwarder, packaged
with your code, is the function's entry point; your handler gets each batch only after every record of
it reached the sink, and a failure of your handler fails the invocation, so the batch is delivered again
(repeats of an eventID in the sink, never a gap). Outbox delivery, a writer running throughout."""

from __future__ import annotations

from tests.factories import write_consumer
from tests.sandbox.conftest import local_config, logged_lines, wait_for
from tests.sandbox.test_sinks import json_lines, sink_reader, version_of, write_load

# Raises once for the first batch holding a key of the load (a flag file in the function's working
# folder makes it succeed on the retry), and logs each record it got with the sink's stamp of order.
HANDLER = '''import json
import os

FLAG = "raised-once"


def handler(event, context):
    ours = [r for r in event["Records"] if r["dynamodb"]["Keys"].get("airportTo") == {"S": "OWN-SINK"}]
    if ours and not os.path.exists(FLAG):
        open(FLAG, "w").close()
        raise RuntimeError("the team's handler fails once")
    for record in event["Records"]:
        print(json.dumps({"own_after_sink": record["eventID"]}))
    return {"handled": len(event["Records"])}
'''


def handled_ids(config_path) -> set[str]:
    return {line["own_after_sink"] for line in logged_lines(config_path, "own_after_sink") if "own_after_sink" in line}


def test_your_handler_runs_after_the_sink_took_the_batch_and_its_failure_redelivers(tmp_path, capsys) -> None:
    from orchestrator.cli import main

    write_consumer(tmp_path / "consumer", HANDLER)
    config_path = local_config(tmp_path, {"consumer": {"sink": "kinesis", "source": "consumer", "handler": "app.handler"},
                                          "stream": {"delivery": "outbox"}})
    try:
        assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
        reader = sink_reader(config_path)
        try:
            errors = write_load(config_path, "OWN-SINK")

            def arrived() -> tuple[list[dict], set[str]] | None:
                records = [r for r, _ in reader.records("OWN-SINK")
                           if r["dynamodb"]["Keys"].get("airportTo") == {"S": "OWN-SINK"}]
                ids = {r["eventID"] for r in records}
                handled = handled_ids(config_path)
                return (records, handled) if len(ids) == 120 and ids <= handled else None

            records, handled = wait_for(arrived, 90, "every record in Kinesis and then in the team's handler")
        finally:
            reader.close()
        assert errors == [], "no user's write failed"
        ids = [r["eventID"] for r in records]
        assert len(ids) > len(set(ids)), "the batch the handler failed went to the sink again"
        by_key: dict[str, list[int]] = {}
        for event_id in dict.fromkeys(ids):
            record = next(r for r in records if r["eventID"] == event_id)
            by_key.setdefault(record["dynamodb"]["Keys"]["airportFrom"]["S"], []).append(version_of(record))
        assert all(seen == sorted(seen) for seen in by_key.values()), "each key in commit order"
        capsys.readouterr()
        assert main(["verify", "--config", str(config_path), "--output", "json"]) == 0
        checks = {o["name"]: o for o in json_lines(capsys.readouterr().out) if o["type"] == "check"}
        assert checks["round trip on the canary"]["outcome"] == "pass"
    finally:
        assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0
