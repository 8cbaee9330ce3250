"""`rds-streams logs [--follow] [--since]`: the consumer's log, change records as table rows
(event, table, keys, changed columns) instead of raw JSON."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.ui import UI

SINCE = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PLATFORM_LINE = re.compile(r"^(START|END|REPORT) RequestId: ")


def since_ms(text: str) -> int:
    match = SINCE.match(text)
    if not match:
        raise UsageError(f"--since {text!r}: give a duration such as 30s, 10m, 2h or 1d")
    return int((time.time() - int(match[1]) * UNIT_SECONDS[match[2]]) * 1000)


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
    return {"event": record.get("eventName", "?"), "table": record.get("eventSourceARN", "").rsplit("/", 1)[-1],
            "keys": keys, "changed": changed or "-"}


def _show(typed: Any) -> str:
    if not isinstance(typed, dict) or len(typed) != 1:
        return "?"
    (kind, value), = typed.items()
    return "NULL" if kind == "NULL" else f"{value!s:.40}"


def show_logs(config: Config, ui: UI, cancel: CancelToken, *, follow: bool, since: str) -> None:
    from orchestrator.database.probe import filter_events
    from orchestrator.lifecycle import context_for

    ctx = context_for(config, ui, cancel)
    logs = ctx.aws.client("logs")
    group = f"/aws/lambda/{config.consumer.function_name}"
    start = since_ms(since)
    seen: set[str] = set()
    while True:
        events = [e for e in filter_events(logs, group, None, start) if e["eventId"] not in seen]
        seen.update(e["eventId"] for e in events)
        if events:
            _print(events, ui)
            start = max(e["timestamp"] for e in events)
        elif not follow:
            ui.say(f"[dim]no log events in {group} since {since} ago[/]")
        if not follow or cancel.wait(1.0):
            return


def _print(events: list[dict[str, Any]], ui: UI) -> None:
    from rich.markup import escape

    table, rows = _record_table(show_header=True), 0
    for event in sorted(events, key=lambda e: e["timestamp"]):
        when = time.strftime("%H:%M:%S", time.localtime(event["timestamp"] / 1000))
        try:
            record = json.loads(event["message"])
        except (json.JSONDecodeError, TypeError):
            record = None
        if isinstance(record, dict) and "eventName" in record:
            row = describe_record(record)
            ui.emit("record", time=when, **row, eventID=record.get("eventID"))
            table.add_row(when, row["event"], row["table"], *(escape(row[k]) for k in ("keys", "changed")))
            rows += 1
        else:
            ui.emit("log", time=when, message=event["message"])
            if PLATFORM_LINE.match(event["message"]):
                continue  # Lambda's START/END/REPORT: in --output json, not in the table view
            if ui.output.value == "text" and rows:
                ui.console.print(table)
                table, rows = _record_table(show_header=False), 0
            ui.say(f"[dim]{when} {escape(event['message'].rstrip())}[/]")
    if rows and ui.output.value == "text":
        ui.console.print(table)


def _record_table(*, show_header: bool) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold", show_header=show_header)
    for column in ("time", "event", "table", "keys", "changed"):
        table.add_column(column, overflow="fold")
    return table
