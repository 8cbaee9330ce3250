"""`rds-streams status`: target, stacks, endpoints, sandbox processes, triggers installed vs expected."""

from __future__ import annotations

from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.graph import STACK_ORDER
from orchestrator.deploy.stacks import describe_stack
from orchestrator.errors import ConfigError, OperationFailed
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
    from orchestrator.up_steps import cascade_report, streamed_drift

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
    except ConfigError as err:  # a cascade that cannot be emitted: `up` refuses it too
        result["triggers"] = f"refused: {err}"
        return result
    result["cascades"] = cascade_report(ctx)
    if lag is not None:
        result["outbox"] = {"delivery": ctx.config.stream.delivery, "waiting": lag.waiting,
                            "oldest_seconds": lag.oldest_seconds}
        result.setdefault("dead_letters", {})["outbox"] = lag.dead_letters
    result["triggers"] = {f"{x.schema}.{x.table}": {"expected": x.expected, "installed": x.expected - len(x.missing),
                                                     "missing": list(x.missing), "changed": list(x.changed),
                                                     "extra": list(x.extra), "in_sync": x.in_sync} for x in drift}
    return result


def _show(report: dict[str, Any], ui: UI) -> None:
    ui.emit("status", **report)
    ui.say(f"[bold]target[/] {report['target']} ({report['region']})")
    for name, pid in report.get("sandbox", {}).items():
        ui.say(f"  sandbox {name}: {'running, pid ' + str(pid) if pid else '[red]not running[/]'}")
    for stack, status in report.get("stacks", {}).items():
        ui.say(f"  stack {stack}: {status or '[dim]not deployed[/]'}")
    for name, value in report.get("endpoints", {}).items():
        ui.say(f"  {name}: {value}")
    if "outbox" in report:
        outbox = report["outbox"]
        age = f", oldest {outbox['oldest_seconds']:.1f} s" if outbox["oldest_seconds"] is not None else ""
        ui.say(f"  stream lag ({outbox['delivery']} delivery): {outbox['waiting']} outbox record(s) waiting{age}")
    for name, depth in report.get("dead_letters", {}).items():
        ui.say(f"  dead letters ({name.replace('_', ' ')}): {depth}")
    triggers = report.get("triggers")
    if isinstance(triggers, str):
        ui.say(f"  triggers: {triggers}")
    for table, t in (triggers or {}).items() if isinstance(triggers, dict) else ():
        state = "[green]in sync[/]" if t["in_sync"] else "[red]drift[/]: " + "; ".join(
            f"{k} {', '.join(t[k])}" for k in ("missing", "changed", "extra") if t[k])
        ui.say(f"  triggers {table}: {t['installed']}/{t['expected']} installed, {state}")
    if "cascades" in report:
        ui.say(f"  cascade paths covered: {len(report['cascades']) or 'none (no cascading key reaches a streamed table)'}")
        for path in report["cascades"]:
            ui.say(f"    {path}")
