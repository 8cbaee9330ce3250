"""`rds-streams tail`: what reached the managed sink, read without taking it from the team's readers.

Kinesis: our own shard iterators from --since on (reading is not consuming). SQS: a peek
(ReceiveMessage with VisibilityTimeout=0: the messages stay visible to the team's consumers, each
peek counts one receive, and a FIFO queue shows only the heads of its oldest message groups).
EventBridge keeps no copy of what it routed, and `tail` creates nothing (a rule to a queue would be
one), so it says how to see the events instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.logs_view import EVENT_STYLE, OUR_SCHEMA, describe_record, record_table, since_ms
from orchestrator.ui import UI, Styled, iso_utc


@dataclass
class TailTally:
    records: int = 0
    hidden: int = 0
    header_shown: bool = False


def tail_sink(config: Config, ui: UI, cancel: CancelToken, *, follow: bool, since: str,
              everything: bool = False) -> TailTally:
    start = since_ms(since)
    if config.consumer.sink == "log":
        raise UsageError("tail shows what reached a managed sink, and [consumer] sink is \"log\"",
                         hint="run `rds-streams logs` for the logging consumer's records")
    if config.consumer.sink == "eventbridge":
        raise UsageError("EventBridge keeps no copy of the events it routed, so there is nothing to read back",
                         hint="add a rule on the bus to a queue or archive of yours; `rds-streams verify` follows "
                              "the canary through a temporary rule; `rds-streams logs --all` shows the forwarder's "
                              "line per batch")
    from orchestrator.deployment import sink_ref
    from orchestrator.lifecycle import context_for
    from orchestrator.verify.sink_readers import KinesisReader, SqsPeekReader

    ctx = context_for(config, ui, cancel)
    tally = TailTally()
    try:
        sink = sink_ref(ctx.outputs_of("consumer"))
        if sink is None:
            raise UsageError(f"the deployed consumer stack has no {config.consumer.sink} sink yet",
                             hint="run `rds-streams up` to deploy the sink set in config.toml")
        reader: Any = (KinesisReader(ctx.aws.client("kinesis"), sink.target, start) if sink.kind == "kinesis"
                       else SqsPeekReader(ctx.aws.client("sqs"), sink.target, start))
        shown = 0
        while True:
            found = reader.records("")
            fresh, shown = found[shown:], len(found)
            _print(fresh, sink.kind, ui, tally, everything)
            if not found and not follow:
                ui.say("[dim]nothing in {where} since {since} ago[/]", where=reader.where, since=since)
            if not follow or cancel.wait(1.0):
                break
    finally:
        ctx.close()
    if tally.hidden:
        ui.say("[dim]{n} canary record(s) hidden (pass --all to see them)[/]", n=tally.hidden)
    return tally


def _print(found: list[tuple[dict[str, Any], int]], sink: str, ui: UI, tally: TailTally, everything: bool) -> None:
    rows: list[tuple[Any, ...]] = []
    for record, at_ms in sorted(found, key=lambda pair: pair[1]):
        if record_table(record).split(".", 1)[0] == OUR_SCHEMA and not everything:
            tally.hidden += 1
            continue
        row = describe_record(record)
        tally.records += 1
        ui.emit("record", time=iso_utc(at_ms), sink=sink, event=record.get("eventName"), table=row["table"],
                record=record)
        rows.append((iso_utc(at_ms), Styled(row["event"], EVENT_STYLE.get(row["event"], "")), row["table"],
                     row["keys"], row["changed"]))
    if rows:
        ui.table(("reached the sink", "event", "table", "keys", "changed"), rows, header=not tally.header_shown)
        tally.header_shown = True
