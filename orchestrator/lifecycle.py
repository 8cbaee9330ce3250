"""`up`, `plan` and `down`: the whole lifecycle, each a function of config, UI and cancellation."""

from __future__ import annotations

from typing import Any

from orchestrator.aws import clients_for
from orchestrator.backfill_run import BackfillTables
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.ui import UI
from orchestrator.up_steps import (
    ApplyMigrations,
    BindSandbox,
    DeployStacks,
    DrainOutbox,
    EnsureGrants,
    InstallOutbox,
    InstallTriggers,
    OpenTunnel,
    SmokeTest,
    UpContext,
)
from orchestrator.workflow import StepResult, run_steps


def context_for(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None = None, *,
                start: bool = False) -> UpContext:
    """AWS clients for the target: the account (boto3 honours AWS_ENDPOINT_URL/AWS_PROFILE), or the
    sandbox's moto server: started or reused when `start` (up, plan), else it must be running
    (read-only commands start nothing, and say to run `up` first)."""
    if config.project.target == "aws":
        return UpContext(config=config, aws=clients_for(config), ui=ui, cancel=cancel, only=only)
    from orchestrator.sandbox.manager import Sandbox

    sandbox = Sandbox(config)
    state = sandbox.start(ui) if start else sandbox.require_up()
    return UpContext(config=config, aws=state.aws(), ui=ui, cancel=cancel, only=only, sandbox=sandbox, sandbox_state=state)


def up(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None, *,
       accept_edited_migrations: bool = False, refresh_bastion: bool = False) -> list[StepResult]:
    ctx = context_for(config, ui, cancel, only, start=True)
    ctx.accept_edited_migrations = accept_edited_migrations
    ctx.refresh_bastion = refresh_bastion
    steps: list[Any] = [DeployStacks()]
    if not only:  # --only limits up to stacks and skips the database steps
        if ctx.sandbox is not None:
            steps.append(BindSandbox())
        steps.append(OpenTunnel())
        if config.attached:
            from orchestrator.attach.steps import AttachCluster, RecordDefiner

            steps += [AttachCluster(), RecordDefiner()]
        if config.applies_migrations:
            steps.append(ApplyMigrations())
        steps += [EnsureGrants(), InstallOutbox(), InstallTriggers()]
        if config.stream.delivery == "direct":
            steps.append(DrainOutbox())
        steps.append(SmokeTest())
        if any(table.backfill for table in config.stream.tables):
            steps.append(BackfillTables())
    try:
        if config.attached and not only:
            from orchestrator.attach.steps import confirm_cluster_changes

            confirm_cluster_changes(ctx)  # refusals (exit 2) and the one question, before anything is touched
        return run_steps(steps, ctx, ui, cancel)
    finally:
        ctx.close()


def plan(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> bool:
    """True when `up` would change something."""
    from orchestrator.database_plan import plan_database
    from orchestrator.deploy.plan import plan_stacks

    ctx = context_for(config, ui, cancel, only, start=True)
    try:
        from orchestrator.deploy.pinned import ssm_lookup

        external = None
        if config.attached:
            from orchestrator.attach.stack_inputs import attachment_inputs, route_of

            external = {"attachment": attachment_inputs(ctx)}  # reads the cluster: refusals come first
            route = route_of(ctx.aws, config, ctx.attached_cluster())
            ui.emit("note", message=route.reason)
            ui.say("[dim]lambda route: {reason}[/]", reason=route.reason)
        plans = plan_stacks(ctx.aws.client("cloudformation"), config, only, ui, cancel,
                            image_lookup=ssm_lookup(ctx.aws.client("ssm")), external=external)
        changed = any(p.changed for p in plans)
        if config.attached and not only:
            from orchestrator.attach.steps import planned_changes, reboot_note, show_changes

            changes = planned_changes(ctx)
            show_changes(ui, ctx.attached_cluster(), changes, reboot_note(ctx, changes))
            changed = changed or bool(changes)
        if not only:
            changed = plan_database(ctx) or changed
        return changed
    finally:
        ctx.close()


def down(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> None:
    from orchestrator.deploy.down import destroy_stacks

    if config.attached:
        _down_attached(config, ui, cancel, only)
        return
    if config.project.target == "aws":
        destroy_stacks(clients_for(config), config, only, ui, cancel)
        return
    from orchestrator.sandbox.manager import Sandbox
    from orchestrator.sandbox.processes import port_open

    sandbox = Sandbox(config)
    state = sandbox.state()
    if state is not None and sandbox.is_up() and port_open(state.moto_port):
        destroy_stacks(state.aws(), config, only, ui, cancel)
    if only:
        return
    stopped = sandbox.stop()
    ui.emit("sandbox_stopped", processes=stopped, removed=str(sandbox.root))
    ui.say("[green]stopped[/] {what}; removed {root}", what=", ".join(stopped) if stopped else "no sandbox process",
           root=sandbox.root)


def _down_attached(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> None:
    """Remove what `up` added to a cluster we do not own, then our stacks; never the cluster itself. In the
    sandbox, the services keep running: they play the existing cluster (its data must outlive `down`)."""
    from orchestrator.attach.teardown import detach
    from orchestrator.deploy.down import destroy_stacks
    from orchestrator.errors import UsageError

    if only:
        # The attachment stack's role is what the triggers' Lambda calls run as: deleting it alone would
        # fail the team's writes. Everything goes together, in order.
        raise UsageError(f"down --only {', '.join(only)}: on an attached cluster, down removes the stream as a "
                         "whole (triggers first, then the cluster changes, then the stacks)",
                         hint="run `rds-streams down` without --only")
    if config.project.target == "local":
        from orchestrator.sandbox.manager import Sandbox

        if not Sandbox(config).is_up():
            ui.say("nothing to remove: the local sandbox (which plays the attached cluster) is not running")
            return
    ctx = context_for(config, ui, cancel, only)
    try:
        cluster = ctx.attached_cluster()
        ui.confirm("Remove the stream from {cluster}: our triggers, user, grants, bookkeeping schema, the role "
                   "association and the parameters we set (back to their recorded values), and our stacks? The "
                   "cluster, its data and its users' objects are kept.",
                   why=f"down removes what rds-streams added to the cluster {cluster.identifier} (never the cluster)",
                   cluster=cluster.identifier)
        removed = detach(ctx)
        for item in removed:
            ui.say("[green]✓[/] {item}", item=item)
        ui.emit("detached", cluster=cluster.identifier, removed=removed)
    finally:
        ctx.close()
    destroy_stacks(ctx.aws, config, only, ui, cancel, confirmed=True)
    if ctx.sandbox is not None:
        ctx.sandbox.stop_runner()
        ui.say("the sandbox keeps running: it plays the existing cluster {cluster} (stop it with "
               "`python -m orchestrator.sandbox.existing_cluster remove`)", cluster=cluster.identifier)
