"""`rds-streams status`: target, stacks, endpoints, sandbox processes, triggers installed vs expected.

Read-only: it starts nothing. A dead sandbox process is reported dead (and the command fails); each
table's trigger state is read on its own, so an error on one table never hides the others.
"""

from __future__ import annotations

from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.graph import stack_order
from orchestrator.deploy.stacks import describe_stack
from orchestrator.errors import ConfigError, OperationFailed
from orchestrator.ui import UI


def show_status(config: Config, ui: UI, cancel: CancelToken) -> dict[str, Any]:
    from orchestrator.lifecycle import context_for

    report: dict[str, Any] = {"target": config.project.target, "region": config.project.region}
    dead: list[str] = []
    if config.project.target == "local":
        from orchestrator.sandbox.manager import NOT_UP_HINT, Sandbox

        sandbox = Sandbox(config)
        processes = sandbox.processes()
        report["sandbox"] = processes
        dead = [name for name, pid in processes.items() if not pid]
        if not sandbox.is_up():
            report["stacks"] = {config.stack_name(k): None for k in stack_order(config)}
            _show(report, ui)
            raise OperationFailed(f"the local sandbox is not running (nothing up under {sandbox.root})",
                                  hint=NOT_UP_HINT)
    ctx = context_for(config, ui, cancel)
    try:
        cfn = ctx.aws.client("cloudformation")
        report["stacks"] = {config.stack_name(k): describe_stack(cfn, config.stack_name(k)).status for k in stack_order(config)}
        if all(report["stacks"].values()):
            report.update(_database(ctx, dead))
    finally:
        ctx.close()
    _show(report, ui)
    if dead:
        raise OperationFailed(f"sandbox process(es) not running: {', '.join(dead)}",
                              hint="run `rds-streams up` to start them again")
    return report


def _database(ctx: Any, dead: list[str]) -> dict[str, Any]:
    from orchestrator.database.backfill import read_all_states
    from orchestrator.database.outbox import outbox_lag
    from orchestrator.database.trigger_health import failing_tables
    from orchestrator.stream_context import cascade_report

    try:
        d = ctx.deployment
    except OperationFailed as err:
        return {"endpoints": {"error": str(err)}}
    result: dict[str, Any] = {"endpoints": {"cluster": f"{d.db_host}:{d.db_port}",
                                            "bastion": f"{d.bastion_user}@{d.bastion_host}:{d.bastion_port}",
                                            "function": d.function_arn, "log_group": d.log_group}}
    if d.sink is not None:
        result["endpoints"]["sink"] = f"{d.sink.kind} {d.sink.arn}"
    queue = ctx.outputs_of("consumer").get("DeadLetterQueueUrl")
    if queue:
        try:
            attributes = ctx.aws.client("sqs").get_queue_attributes(
                QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            result["dead_letters"] = {"lambda_async_queue": int(attributes["ApproximateNumberOfMessages"])}
        except Exception as err:  # a queue that cannot be read is this line's state, not the command's end
            result["dead_letters"] = {"lambda_async_queue": f"not readable: {_reason(err)}"}
    if {"mariadb", "sshd"} & set(dead):
        result["triggers"] = f"database not reachable: {' and '.join(n for n in ('sshd', 'mariadb') if n in dead)} " \
                             "not running"
        return result
    if ctx.config.attached:
        result["attached"] = _attached(ctx, d.cluster_id)
    try:
        failing = ctx.session.run(lambda conn: failing_tables(conn, ctx.config.database.name), "status")
        if failing:
            result["failing_writes"] = [f.message for f in failing]
        lag = ctx.session.run(outbox_lag, "status")
    except OperationFailed as err:
        result["triggers"] = f"database not reachable: {err}"
        return result
    except ConfigError as err:  # a cascade that cannot be emitted: `up` refuses it too
        result["triggers"] = f"refused: {err}"
        return result
    result["cascades"] = cascade_report(ctx)
    backfills = ctx.session.run(read_all_states, "status")
    if backfills is not None:
        result["backfills"] = {f"{b['schema']}.{b['table']}": {
            "state": "done" if b["finished_at"] else "in progress", "rows_done": b["rows_done"],
            "rows_total": b["rows_total"], "chunks_done": b["chunks_done"], "where": b["where"],
            "started_at": b["started_at"], "finished_at": b["finished_at"]} for b in backfills}
    if lag is not None:
        result["outbox"] = {"delivery": ctx.config.stream.delivery, "waiting": lag.waiting,
                            "oldest_seconds": lag.oldest_seconds,
                            "partitions": [{"relay": p.relay, "waiting": p.waiting, "oldest_seconds": p.oldest_seconds}
                                           for p in lag.partitions]}
        result.setdefault("dead_letters", {})["outbox"] = lag.dead_letters
    result["triggers"] = _triggers(ctx)
    return result


def _triggers(ctx: Any) -> dict[str, Any]:
    """Each streamed table's triggers (and ours left on tables no longer streamed). Read per schema;
    if that fails, one table at a time, so an error on one table is that table's line alone."""
    from orchestrator.database.trigger_install import trigger_drift
    from orchestrator.stream_context import stream_settings, streamed

    settings = stream_settings(ctx)
    tables: dict[str, Any] = {}
    for schema, names in streamed(ctx.config):
        try:
            drifts = ctx.session.run(lambda conn, s=schema, n=names: trigger_drift(conn, s, n, settings),
                                     f"the triggers in {schema}")
        except Exception:  # noqa: BLE001  (read again table by table below, to say which one)
            drifts = []
            for table in names:
                try:
                    found = ctx.session.run(lambda conn, s=schema, t=table: trigger_drift(conn, s, [t], settings),
                                            f"the triggers of {schema}.{table}")
                except Exception as err:  # this table's state is the error; the others still report
                    tables[f"{schema}.{table}"] = {"error": _reason(err)}
                    continue
                drifts += [d for d in found if d.table == table]
        for x in drifts:
            tables[f"{x.schema}.{x.table}"] = {"expected": x.expected, "installed": x.expected - len(x.missing),
                                               "missing": list(x.missing), "changed": list(x.changed),
                                               "extra": list(x.extra), "in_sync": x.in_sync,
                                               "two_generations": x.two_generations}
    return tables


def _attached(ctx: Any, cluster: str) -> dict[str, Any]:
    """What `up` changed on the attached cluster (our record), for `down` to reverse."""
    from orchestrator.attach.record import recorded

    try:
        changes = ctx.session.run(recorded, "the bookkeeping")
    except Exception as err:  # this line's state, not the command's end
        return {"cluster": cluster, "error": _reason(err)}
    return {"cluster": cluster, "changes": [{"kind": c.kind, "target": c.target, "name": c.name,
                                             "previous": c.previous if c.kind != "definer-grants" else None}
                                            for c in changes]}


def _reason(err: Exception) -> str:
    args = getattr(err, "args", ())
    return f"{args[-1]}" if args and not isinstance(err, OperationFailed) else str(err)


def _show(report: dict[str, Any], ui: UI) -> None:

    ui.emit("status", **report)
    for line in report.get("failing_writes", []):  # first: this is an outage of the user's own writes
        ui.say("[red]![/] {line}; repair with `rds-streams up`", line=line)
    ui.say("[bold]target[/] {target} ({region})", target=report["target"], region=report["region"])
    for name, pid in report.get("sandbox", {}).items():
        if pid:
            ui.say("  sandbox {name}: running, pid {pid}", name=name, pid=pid)
        else:
            ui.say("  sandbox {name}: [red]not running[/]", name=name)
    for stack, status in report.get("stacks", {}).items():
        if status:
            ui.say("  stack {stack}: {status}", stack=stack, status=status)
        else:
            ui.say("  stack {stack}: [dim]not deployed[/]", stack=stack)
    for name, value in report.get("endpoints", {}).items():
        ui.text(f"  {name}: {value}")
    if "attached" in report:
        attached = report["attached"]
        if "error" in attached:
            ui.say("  attached to {cluster}: record [red]not readable[/]: {error}", **attached)
        else:
            ui.say("  attached to {cluster} (not ours): {n} change(s) recorded, reversed by `down`",
                   cluster=attached["cluster"], n=len(attached["changes"]))
    if "outbox" in report:
        outbox = report["outbox"]
        age = f", oldest {outbox['oldest_seconds']:.1f} s" if outbox["oldest_seconds"] is not None else ""
        ui.text(f"  stream lag ({outbox['delivery']} delivery): {outbox['waiting']} outbox record(s) waiting{age}")
        for part in outbox.get("partitions", []):
            age = f", oldest {part['oldest_seconds']:.1f} s" if part["oldest_seconds"] is not None else ""
            ui.say("    relay {relay}: {waiting} waiting{age}", relay=part["relay"], waiting=part["waiting"], age=age)
    for name, depth in report.get("dead_letters", {}).items():
        ui.text(f"  dead letters ({name.replace('_', ' ')}): {depth}")
    triggers = report.get("triggers")
    if isinstance(triggers, str):
        ui.text(f"  triggers: {triggers}")
    for table, t in (triggers or {}).items() if isinstance(triggers, dict) else ():
        if "error" in t:
            ui.say("  triggers {table}: [red]unknown[/]: {error}", table=table, error=t["error"])
            continue
        counts = f"{t['installed']}/{t['expected']} installed"
        if t["in_sync"]:
            ui.say("  triggers {table}: {counts}, [green]in sync[/]", table=table, counts=counts)
        else:
            drift = "; ".join(f"{k} {', '.join(t[k])}" for k in ("missing", "changed", "extra") if t[k])
            if t.get("two_generations"):
                drift += " (two generations side by side: a replacement was interrupted; `rds-streams up` settles it)"
            ui.say("  triggers {table}: {counts}, [red]drift[/]: {drift}", table=table, counts=counts, drift=drift)
    for table, b in report.get("backfills", {}).items():
        if b["state"] == "done":
            ui.say("  backfill {table}: [green]done[/], {rows} rows, finished {when}", table=table, rows=b["rows_done"],
                   when=b["finished_at"])
        else:
            ui.say("  backfill {table}: [yellow]in progress or interrupted[/], {rows} of about {total} rows; "
                   "`rds-streams backfill` resumes it", table=table, rows=b["rows_done"], total=b["rows_total"])
    if "cascades" in report:
        covered = len(report["cascades"]) or "none (no cascading key reaches a streamed table)"
        ui.say("  cascade paths covered: {covered}", covered=covered)
        for path in report["cascades"]:
            ui.text(f"    {path}")
