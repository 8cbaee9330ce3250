"""Wait for stacks to settle, streaming their events: a live table on a terminal, plain lines
elsewhere, one JSON object per event with --output json. Polls with backoff, always time-bound."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.deploy.stacks import Phase, StackState, describe_stack, phase_of
from orchestrator.errors import Cancelled, OperationFailed
from orchestrator.ui import UI

FIRST_POLL, MAX_POLL = 1.0, 10.0


@dataclass
class Watched:
    """One stack being waited on."""

    name: str
    action: str                      # create | update | delete
    total: int                       # resources the template declares
    started: float = field(default_factory=time.monotonic)
    state: StackState | None = None
    seen: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    since: datetime | None = None

    @property
    def finished(self) -> bool:
        if self.state is None:
            return False
        if self.action == "delete":
            return self.state.phase is Phase.ABSENT or self.state.status == "DELETE_FAILED"
        return self.state.phase not in (Phase.IN_PROGRESS,) and self.state.status != "REVIEW_IN_PROGRESS"

    @property
    def succeeded(self) -> bool:
        if self.state is None:
            return False
        if self.action == "delete":
            return self.state.phase is Phase.ABSENT
        return self.state.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")

    def progress(self) -> str:
        done = self.total if self.finished and self.succeeded else min(len(self.done), self.total)
        return f"{done}/{self.total}"


def wait_for(cfn: Any, stacks: list[Watched], ui: UI, cancel: CancelToken, *, timeout: float) -> None:
    """Return when every stack settled successfully; raise with the root cause otherwise."""
    display = _LiveTable(stacks, ui) if ui.live else None
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    try:
        while True:
            for stack in stacks:
                if not stack.finished:
                    _poll(cfn, stack, ui, plain=display is None)
            if display:
                display.refresh()
            if all(s.finished for s in stacks):
                break
            if time.monotonic() > deadline:
                busy = ", ".join(f"{s.name} {s.state.status if s.state else '?'}" for s in stacks if not s.finished)
                raise OperationFailed(f"stacks did not settle within {timeout / 60:.0f} min: {busy}",
                                      hint="CloudFormation keeps going; run the command again to resume waiting")
            if cancel.wait(delay):
                _stop_waiting(cfn, stacks)
            delay = min(delay * 1.5, MAX_POLL)
    finally:
        if display:
            display.stop()
    _raise_root_cause(stacks)


def _poll(cfn: Any, stack: Watched, ui: UI, *, plain: bool) -> None:
    stack.state = describe_stack(cfn, stack.name, stack_id=stack.state.stack_id if stack.state else None)
    if stack.state.stack_id is None:
        return
    for event in _new_events(cfn, stack):
        logical = event["LogicalResourceId"]
        status = event["ResourceStatus"]
        if event["ResourceType"] != "AWS::CloudFormation::Stack":
            if status.endswith("_COMPLETE") or status == "DELETE_SKIPPED":
                stack.done.add(logical)
            if status.endswith("_FAILED"):
                stack.failures.append(event)
            if status == "DELETE_SKIPPED":
                stack.skipped.append(event)
        elif status.endswith("_FAILED") or status == "ROLLBACK_IN_PROGRESS":
            stack.failures.append(event)
        _report_event(ui, stack, event, plain)


def _new_events(cfn: Any, stack: Watched) -> list[dict[str, Any]]:
    """Events of this operation not yet reported, oldest first (the first page is enough per poll)."""
    events = cfn.describe_stack_events(StackName=stack.state.stack_id)["StackEvents"]
    if stack.since is None:
        # Events before this operation belong to earlier runs.
        stack.since = _operation_start(events, stack.action)
    fresh = [e for e in events if e["EventId"] not in stack.seen and e["Timestamp"] >= stack.since]
    stack.seen.update(e["EventId"] for e in events)
    return sorted(fresh, key=lambda e: e["Timestamp"])


def _operation_start(events: list[dict[str, Any]], action: str) -> datetime:
    starts = {"create": ("REVIEW_IN_PROGRESS", "CREATE_IN_PROGRESS"), "update": ("UPDATE_IN_PROGRESS",),
              "delete": ("DELETE_IN_PROGRESS",)}[action]
    for event in events:  # newest first
        if event["ResourceType"] == "AWS::CloudFormation::Stack" and event["ResourceStatus"] in starts:
            return event["Timestamp"]
    return events[-1]["Timestamp"] if events else datetime.min.replace(tzinfo=UTC)


def _report_event(ui: UI, stack: Watched, event: dict[str, Any], plain: bool) -> None:
    reason = event.get("ResourceStatusReason") or ""
    ui.emit("stack_event", stack=stack.name, logical_id=event["LogicalResourceId"],
            resource_type=event["ResourceType"], status=event["ResourceStatus"], reason=reason,
            timestamp=event["Timestamp"])
    if plain:
        when = event["Timestamp"].strftime("%H:%M:%S")
        what = ("" if event["ResourceType"] == "AWS::CloudFormation::Stack"
                else f" {event['LogicalResourceId']} ({event['ResourceType']})")
        ui.text(f"{when} {stack.name}{what} {event['ResourceStatus']}" + (f": {reason}" if reason else ""))


def _stop_waiting(cfn: Any, stacks: list[Watched]) -> None:
    still = []
    for stack in stacks:
        if not stack.finished:
            state = describe_stack(cfn, stack.name)
            if phase_of(state.status) is Phase.IN_PROGRESS:
                still.append(f"{stack.name}: {state.status}")
    doing = ("CloudFormation is still working on " + "; ".join(still)) if still else "CloudFormation has finished"
    raise Cancelled(f"stopped waiting. {doing}.",
                    hint="nothing is lost: run the same command again and it resumes where this left off")


def _raise_root_cause(stacks: list[Watched]) -> None:
    failed = [s for s in stacks if not s.succeeded]
    if not failed:
        return
    resource_failures = [e for s in stacks for e in s.failures if e["ResourceType"] != "AWS::CloudFormation::Stack"]
    if resource_failures:
        first = min(resource_failures, key=lambda e: e["Timestamp"])
        raise OperationFailed(
            f"{first['StackName']}: {first['LogicalResourceId']} ({first['ResourceType']}) "
            f"{first['ResourceStatus']}: {first.get('ResourceStatusReason') or 'no reason given'}",
            hint=_next_step(failed),
        )
    stack = failed[0]
    reason = (stack.state.reason if stack.state else None) or next(
        (e.get("ResourceStatusReason") for e in stack.failures if e.get("ResourceStatusReason")), None)
    raise OperationFailed(f"{stack.name} ended in {stack.state.status if stack.state else 'an unknown state'}"
                          + (f": {reason}" if reason else ""), hint=_next_step(failed))


def _next_step(failed: list[Watched]) -> str:
    if all(s.action == "delete" for s in failed):
        return "fix the cause, then run `rds-streams down` again"
    return "fix the cause, then run `rds-streams up` again: a stack whose creation failed is recreated"


class _LiveTable:
    """One line per stack: status, resources done of total, elapsed time."""

    def __init__(self, stacks: list[Watched], ui: UI) -> None:
        from rich.live import Live

        self.stacks = stacks
        self.live = Live(self._render(), console=ui.console, refresh_per_second=4, transient=False)
        self.live.start()

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("stack", "action", "status", "resources", "elapsed"):
            table.add_column(column)
        for s in self.stacks:
            status = s.state.status if s.state and s.state.status else ("DELETE_COMPLETE" if s.finished else "…")
            style = "green" if s.finished and s.succeeded else "red" if s.finished else "yellow"
            table.add_row(Text(s.name), s.action, Text(status, style=style), s.progress(),
                          f"{time.monotonic() - s.started:5.1f}s")
        return table

    def refresh(self) -> None:
        self.live.update(self._render())

    def stop(self) -> None:
        self.refresh()
        self.live.stop()
