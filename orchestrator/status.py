"""`rds-streams status`: target, stacks, endpoints, sandbox processes, triggers installed vs expected."""

from __future__ import annotations

from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.graph import STACK_ORDER
from orchestrator.deploy.stacks import describe_stack
from orchestrator.errors import OperationFailed
from orchestrator.ui import UI


def show_status(config: Config, ui: UI, cancel: CancelToken) -> dict[str, Any]:
    from orchestrator.lifecycle import context_for

    report: dict[str, Any] = {"target": config.project.target, "region": config.project.region}
    if config.project.target == "local":
        from orchestrator.sandbox.manager import Sandbox

        sandbox = Sandbox(config)
        state = sandbox.state()
        report["sandbox"] = {name: pid for name, pid in sandbox.processes().items()}
        if state is None or not report["sandbox"].get("moto"):
            report["stacks"] = {config.stack_name(k): None for k in STACK_ORDER}
            _show(report, ui)
            return report
    ctx = context_for(config, ui, cancel)
    try:
        cfn = ctx.aws.client("cloudformation")
        report["stacks"] = {config.stack_name(k): describe_stack(cfn, config.stack_name(k)).status for k in STACK_ORDER}
        if all(report["stacks"].values()):
            report.update(_database(ctx))
    finally:
        ctx.close()
    _show(report, ui)
    return report


def _database(ctx: Any) -> dict[str, Any]:
    from orchestrator.database.outbox import outbox_lag
    from orchestrator.up_steps import streamed_drift

    d = ctx.deployment
    result: dict[str, Any] = {"endpoints": {"cluster": f"{d.db_host}:{d.db_port}",
                                            "bastion": f"{d.bastion_user}@{d.bastion_host}:{d.bastion_port}",
                                            "function": d.function_arn, "log_group": d.log_group}}
    queue = ctx.outputs_of("consumer").get("DeadLetterQueueUrl")
    if queue:
        attributes = ctx.aws.client("sqs").get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        result["dead_letters"] = {"lambda_async_queue": int(attributes["ApproximateNumberOfMessages"])}
    try:
        drift = streamed_drift(ctx)
        lag = ctx.session.run(outbox_lag, "status")
    except OperationFailed as err:
        result["triggers"] = f"database not reachable: {err}"
        return result
    if lag is not None:
        result["outbox"] = {"delivery": ctx.config.stream.delivery, "waiting": lag.waiting,
                            "oldest_seconds": lag.oldest_seconds}
        result.setdefault("dead_letters", {})["outbox"] = lag.dead_letters
    result["triggers"] = {f"{x.schema}.{x.table}": {"expected": 3, "installed": 3 - len(x.missing),
                                                     "missing": list(x.missing), "changed": list(x.changed),
                                                     "extra": list(x.extra), "in_sync": x.in_sync} for x in drift}
    return result


def _show(report: dict[str, Any], ui: UI) -> None:
    ui.emit("status", **report)
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
    if "outbox" in report:
        outbox = report["outbox"]
        age = f", oldest {outbox['oldest_seconds']:.1f} s" if outbox["oldest_seconds"] is not None else ""
        ui.text(f"  stream lag ({outbox['delivery']} delivery): {outbox['waiting']} outbox record(s) waiting{age}")
    for name, depth in report.get("dead_letters", {}).items():
        ui.text(f"  dead letters ({name.replace('_', ' ')}): {depth}")
    triggers = report.get("triggers")
    if isinstance(triggers, str):
        ui.text(f"  triggers: {triggers}")
    for table, t in (triggers or {}).items() if isinstance(triggers, dict) else ():
        counts = f"{t['installed']}/{t['expected']} installed"
        if t["in_sync"]:
            ui.say("  triggers {table}: {counts}, [green]in sync[/]", table=table, counts=counts)
        else:
            drift = "; ".join(f"{k} {', '.join(t[k])}" for k in ("missing", "changed", "extra") if t[k])
            ui.say("  triggers {table}: {counts}, [red]drift[/]: {drift}", table=table, counts=counts, drift=drift)
