"""`rds-streams logs`: the consumer's log. Change records as rows (event, table, keys, changed columns)
for people; with --output json each record whole under `record`, beside its log time and request id.

Shown by default: the change records of the user's tables and whatever else the consumer logged.
Hidden unless --all: Lambda's START/END/REPORT lines, our probes and the canary's records.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.ui import UI, Styled, iso_utc

SINCE = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PLATFORM_LINE = re.compile(r"^(START|END|REPORT) RequestId: (\S+)")
EVENTS = ("INSERT", "MODIFY", "REMOVE")
OUR_SCHEMA = "rds_streams"  # the canary and our bookkeeping live here
EVENT_STYLE = {"INSERT": "green", "MODIFY": "yellow", "REMOVE": "red"}


@dataclass(frozen=True)
class LogFilter:
    tables: tuple[str, ...] = ()     # table or schema.table, any case
    events: tuple[str, ...] = ()     # INSERT | MODIFY | REMOVE
    everything: bool = False         # --all: Lambda's own lines, our probes and canary records too

    def __post_init__(self) -> None:
        unknown = [e for e in self.events if e not in EVENTS]
        if unknown:
            raise UsageError(f"--event {', '.join(unknown)}: not an event name",
                             hint=f"use one of {', '.join(EVENTS)}")

    @property
    def narrowed(self) -> bool:
        return bool(self.tables or self.events)


@dataclass
class LogTally:
    records: int = 0
    lines: int = 0
    hidden: int = 0
    records_shown: bool = False  # the column header is printed once, above the first rows
    request_ids: dict[str, str] = field(default_factory=dict)  # log stream -> the invocation it is in


def since_ms(text: str) -> int:
    match = SINCE.match(text)
    if not match:
        raise UsageError(f"--since {text!r}: give a duration such as 30s, 10m, 2h or 1d")
    return int((time.time() - int(match[1]) * UNIT_SECONDS[match[2]]) * 1000)


def record_table(record: dict[str, Any]) -> str:
    """schema.table, from the record's eventSourceARN (…/stream/<schema>.<table>)."""
    return str(record.get("eventSourceARN", "")).rsplit("/", 1)[-1]


def describe_record(record: dict[str, Any]) -> dict[str, str]:
    stream = record.get("dynamodb", {})
    keys = ", ".join(f"{k}={_show(v)}" for k, v in stream.get("Keys", {}).items())
    old, new = stream.get("OldImage") or {}, stream.get("NewImage") or {}
    if record.get("eventName") == "MODIFY" and old and new:
        changed = ", ".join(f"{c}: {_show(old.get(c))} → {_show(new.get(c))}" for c in new if old.get(c) != new.get(c))
    elif new:
        changed = ", ".join(f"{c}={_show(v)}" for c, v in new.items())
    else:
        changed = ", ".join(f"{c}={_show(v)}" for c, v in old.items())
    return {"event": record.get("eventName", "?"), "table": record_table(record), "keys": keys, "changed": changed or "-"}


def _show(typed: Any) -> str:
    if not isinstance(typed, dict) or len(typed) != 1:
        return "?"
    (kind, value), = typed.items()
    return "NULL" if kind == "NULL" else f"{value!s:.40}"


def show_logs(config: Config, ui: UI, cancel: CancelToken, *, follow: bool, since: str,
              only: LogFilter | None = None) -> LogTally:
    from orchestrator.database.probe import filter_events
    from orchestrator.lifecycle import context_for

    only = only or LogFilter()
    start = since_ms(since)
    _warn_unknown_tables(config, only, ui)
    ctx = context_for(config, ui, cancel)
    logs = ctx.aws.client("logs")
    group = f"/aws/lambda/{config.consumer.function_name}"
    seen: set[str] = set()
    tally = LogTally()
    try:
        while True:
            events = [e for e in filter_events(logs, group, None, start) if e["eventId"] not in seen]
            seen.update(e["eventId"] for e in events)
            if events:
                _print(events, ui, only, tally)
                start = max(e["timestamp"] for e in events)
            elif not follow and not seen:
                ui.say("[dim]no log events in {group} since {since} ago[/]", group=group, since=since)
            if not follow or cancel.wait(1.0):
                break
    finally:
        ctx.close()
    if tally.hidden and not only.everything:
        ui.say("[dim]{n} line(s) hidden: Lambda's START/END/REPORT, our probes and canary records "
               "(pass --all to see them)[/]", n=tally.hidden)
    return tally


def _print(events: list[dict[str, Any]], ui: UI, only: LogFilter, tally: LogTally) -> None:
    rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        if rows:
            ui.table(("time", "event", "table", "keys", "changed"), rows, header=not tally.records_shown)
            tally.records_shown = True
            rows.clear()

    for event in sorted(events, key=lambda e: (e["timestamp"], e.get("ingestionTime", 0))):
        message, stream = event["message"], event.get("logStreamName", "")
        platform = PLATFORM_LINE.match(message)
        if platform and platform[1] == "START":
            tally.request_ids[stream] = platform[2]
        request_id = platform[2] if platform else tally.request_ids.get(stream)
        parsed = _json(message)
        common = {"time": iso_utc(event["timestamp"]), "request_id": request_id, "log_stream": stream}
        if isinstance(parsed, dict) and "eventName" in parsed:
            if not _matches(parsed, only):
                continue
            if _ours(parsed) and not only.everything:
                tally.hidden += 1
                continue
            row = describe_record(parsed)
            tally.records += 1
            ui.emit("record", **common, event=parsed.get("eventName"), table=row["table"], record=parsed)
            rows.append((_clock(event["timestamp"]), Styled(row["event"], EVENT_STYLE.get(row["event"], "")),
                         row["table"], row["keys"], row["changed"]))
            continue
        if only.narrowed:  # --table/--event: change records only
            continue
        if (platform or _ours(parsed)) and not only.everything:
            tally.hidden += 1
            continue
        tally.lines += 1
        ui.emit("log", **common, message=message)
        flush()
        ui.text(f"{_clock(event['timestamp'])} {message.rstrip()}", style="dim")
    flush()


def _warn_unknown_tables(config: Config, only: LogFilter, ui: UI) -> None:
    """A --table that is not streamed may still have old records, so it is a warning, with a suggestion."""
    from orchestrator.config import did_you_mean

    known = [t.name for t in config.stream.tables] + [f"{config.database.name}.{t.name}" for t in config.stream.tables]
    for table in only.tables:
        if table.lower() not in {k.lower() for k in known} and not table.lower().startswith(f"{OUR_SCHEMA}."):
            ui.say("[yellow]![/] --table {table}: not in {where}{hint}", table=table, where="[[stream.tables]]",
                   hint=did_you_mean(table, known))


def _matches(record: dict[str, Any], only: LogFilter) -> bool:
    table = record_table(record).lower()
    if only.tables and not any(t.lower() in (table, table.split(".", 1)[-1]) for t in only.tables):
        return False
    return not only.events or record.get("eventName") in only.events


def _ours(parsed: Any) -> bool:
    """Our probe payloads and the canary's records; never a user's table."""
    if not isinstance(parsed, dict):
        return False
    if "eventName" in parsed:
        return record_table(parsed).split(".", 1)[0] == OUR_SCHEMA
    if parsed.get("rds_streams") == "delivered":  # the forwarder's receipt for a canary record
        return True
    payload = parsed.get("payload")
    return parsed.get("rds_streams") == "message" and isinstance(payload, dict) and "rds_streams_probe" in payload


def _json(message: str) -> Any:
    try:
        return json.loads(message)
    except (json.JSONDecodeError, TypeError):
        return None


def _clock(timestamp_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp_ms / 1000))
