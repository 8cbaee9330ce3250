"""`rds-streams verify`: each check with its outcome and latency; passes only when all pass."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.errors import OperationFailed, RdsStreamsError
from orchestrator.ui import UI

LOG_TIMEOUT = {"local": 30.0, "aws": 120.0}
GRACE = {"local": 0.5, "aws": 5.0}   # how long to wait for a record that must not come


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    latencies_ms: dict[str, float] = field(default_factory=dict)  # commit (or call) to consumer log, per event
    note: bool = False  # a known property worth knowing (direct mode's phantom record), neither pass nor fail

    @property
    def outcome(self) -> str:
        return "fail" if not self.ok else "note" if self.note else "pass"


def verify(config: Config, ui: UI, cancel: CancelToken, user_tables: bool | None,
           timeout: float | None = None) -> list[CheckResult]:
    """Writes only to our canary unless `user_tables` (--tables), in the sandbox too: writing to a
    user's table fires their own triggers and advances AUTO_INCREMENT counters."""
    from orchestrator.lifecycle import context_for

    ctx = context_for(config, ui, cancel)
    include_users = bool(user_tables)
    target = config.project.target
    wait = timeout or LOG_TIMEOUT[target]
    try:
        checks: list[tuple[str, Callable[[], CheckResult]]] = [
            ("lambda_async probe", lambda: _probe(ctx, target, wait)),
            ("triggers match what would be generated", lambda: _drift(ctx)),
            ("cascade paths covered", lambda: _cascades(ctx)),
            ("round trip on the canary", lambda: _round_trip(ctx, *_canary(), {}, target, wait)),
            ("rolled-back write", lambda: _rollback(ctx, target)),
        ]
        if include_users:
            checks += [(f"round trip on {config.database.name}.{t.name}",
                        lambda t=t: _round_trip(ctx, config.database.name, t.name, t.sample, target, wait))
                       for t in config.stream.tables]
        import pymysql

        results = []
        for name, check in checks:
            try:
                results.append(check())
            except RdsStreamsError as err:
                if err.exit_code == 130:
                    raise
                results.append(CheckResult(name, False, str(err)))
            except pymysql.err.MySQLError as err:  # e.g. the write itself failed because Lambda did
                results.append(CheckResult(name, False, f"database error {err.args[0]}: {err.args[-1]}"))
    finally:
        ctx.close()
    if not include_users:
        results.append(CheckResult("round trip on user tables", True,
                                   "not run: writing to your tables emits real events and has side effects "
                                   "(your own triggers, AUTO_INCREMENT counters); pass --tables to run it",
                                   note=True))
    _show(results, ui)
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise OperationFailed(f"verify failed: {', '.join(failed)}", hint="the table above says why for each check")
    return results


def summary(results: list[CheckResult]) -> str:
    counts = {o: sum(r.outcome == o for r in results) for o in ("pass", "note", "fail")}
    return f"{len(results)} checks: " + ", ".join(f"{n} {o}" for o, n in counts.items())


def _canary() -> tuple[str, str]:
    from orchestrator.verify.canary import CANARY_SCHEMA, CANARY_TABLE

    return CANARY_SCHEMA, CANARY_TABLE


def _probe(ctx: Any, target: str, wait: float) -> CheckResult:
    from orchestrator.database.probe import call_lambda_async, find_in_logs, new_marker

    name = "lambda_async probe"
    marker = new_marker()
    conn = ctx.session.connect("master", database=ctx.config.database.name)
    try:
        called = time.time()
        call_lambda_async(conn, ctx.config.database.dialect, ctx.deployment.function_arn, marker)
    except Exception as err:
        return CheckResult(name, False, f"lambda_async failed: {err.args[-1] if err.args else err}")
    finally:
        conn.close()
    found = find_in_logs(ctx.aws.client("logs"), ctx.deployment.log_group, marker, since_ms=int(called * 1000) - 1000,
                         timeout=wait, cancel=ctx.cancel)
    if not found:
        return CheckResult(name, False, f"{marker} not in {ctx.deployment.log_group} after {wait:.0f} s")
    latency = max(0.0, found[0]["timestamp"] - called * 1000)
    return CheckResult(name, True, f"{marker} logged by the consumer", {"probe": round(latency, 1)})


def _cascades(ctx: Any) -> CheckResult:
    """Which chains of cascading foreign keys the triggers emit (a refused one fails the check)."""
    from orchestrator.stream_context import cascade_report

    paths = cascade_report(ctx)
    return CheckResult("cascade paths covered", True,
                       "; ".join(paths) if paths else "no cascading foreign key changes a streamed table")


def _drift(ctx: Any) -> CheckResult:
    from orchestrator.stream_context import streamed_drift

    drift = streamed_drift(ctx)
    problems = [f"{d.schema}.{d.table}: " + "; ".join(
        part for part in (f"missing {', '.join(d.missing)}" if d.missing else "",
                          f"changed {', '.join(d.changed)}" if d.changed else "",
                          f"unexpected {', '.join(d.extra)}" if d.extra else "") if part)
        for d in drift if not d.in_sync]
    if problems:
        return CheckResult("triggers match what would be generated", False,
                           " | ".join(problems) + " (run `rds-streams up` to reinstall them)")
    return CheckResult("triggers match what would be generated", True,
                       f"{len(drift)} table(s), {sum(d.expected for d in drift)} triggers in sync")


def _round_trip(ctx: Any, schema: str, table: str, sample: dict[str, Any], target: str,
                wait: float) -> CheckResult:
    from orchestrator.verify.markers import other_triggers
    from orchestrator.verify.roundtrip import round_trip

    user_table = schema != _canary()[0]
    name = f"round trip on {schema}.{table}" if user_table else "round trip on the canary"
    # A user's table keeps nothing of ours: direct delivery emits at statement time, so its round trip
    # is rolled back whole; outbox delivery needs commits, so the user's own triggers would leave rows.
    commit = not user_table or ctx.config.stream.delivery == "outbox"
    conn = ctx.session.connect("app")  # as users write: the triggers run in their definer's context
    conn.autocommit(False)
    try:
        others = other_triggers(conn, schema, table) if user_table and commit else []
        if others:
            return CheckResult(name, False, f"not run: its own triggers ({', '.join(others)}) would fire on committed "
                               "marker rows and leave what they write; outbox delivery needs commits (direct "
                               "delivery's round trip is rolled back)")
        with _reader(ctx, schema, table) as reader:
            result = round_trip(conn, reader, schema, table, view_type=ctx.config.stream.view_type, sample=sample,
                                timeout=wait, grace=GRACE[target], cancel=ctx.cancel, commit=commit)
    finally:
        conn.close()
    return CheckResult(name, result.ok, result.detail, {k: round(v, 1) for k, v in result.latencies_ms.items()})


def _rollback(ctx: Any, target: str) -> CheckResult:
    """Outbox: a rolled-back write must emit nothing. Direct: Aurora calls Lambda before commit, so it
    does emit (a phantom record); that is reported as the known property of that mode, not a failure."""
    from orchestrator.verify.roundtrip import rollback_emits

    name = "rolled-back write"
    outbox = ctx.config.stream.delivery == "outbox"
    # Outbox: longer than a delivery cycle (1 s) plus the log's delay; direct: until the phantom shows.
    wait = (2.5 if target == "local" else 10.0) if outbox else LOG_TIMEOUT[target] / 3
    conn = ctx.session.connect("app")  # as users write: the triggers run in their definer's context
    conn.autocommit(False)
    try:
        with _reader(ctx, *_canary()) as reader:
            emitted = rollback_emits(conn, reader, *_canary(), wait=wait, cancel=ctx.cancel)
    finally:
        conn.close()
    if outbox:
        return CheckResult(name, not emitted, "a record reached the consumer for a rolled-back write" if emitted
                           else f"nothing emitted for a rolled-back write (waited {wait:.1f} s)")
    return CheckResult(name, True, "known property of direct delivery: the rolled-back write reached the consumer "
                       "(Aurora calls Lambda before commit); delivery = \"outbox\" emits only committed changes"
                       if emitted else "no phantom record seen for the rolled-back write (direct delivery may emit "
                       "one: Aurora calls Lambda before commit)", note=True)


@contextlib.contextmanager
def _reader(ctx: Any, schema: str, table: str) -> Iterator[Any]:
    """Where the stream ends (the consumer's log or the sink), read from a little before the writes."""
    from orchestrator.verify.sink_readers import open_reader

    reader = open_reader(ctx.aws, ctx.deployment, int(time.time() * 1000) - 2000, [f"{schema}.{table}"],
                         ctx.config.consumer.sink)
    try:
        yield reader
    finally:
        reader.close()


def _show(results: list[CheckResult], ui: UI) -> None:
    from orchestrator.ui import Styled

    for r in results:
        ui.emit("check", name=r.name, outcome=r.outcome, ok=r.ok, detail=r.detail, latency_ms=r.latencies_ms or None)
    styles = {"pass": Styled("pass", "green"), "note": Styled("note", "yellow"), "fail": Styled("FAIL", "bold red")}
    ui.table(("check", "result", "commit → log (ms)", "detail"),
             [(r.name, styles[r.outcome], " ".join(f"{k} {v:.0f}" for k, v in r.latencies_ms.items()), r.detail)
              for r in results], title="rds-streams verify")
