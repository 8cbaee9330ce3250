"""`up`, `plan` and `down`: the whole lifecycle, each a function of config, UI and cancellation."""

from __future__ import annotations

from typing import Any

from orchestrator.aws import clients_for
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.ui import UI
from orchestrator.up_steps import (
    ApplyMigrations,
    BackfillTables,
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
        steps += [OpenTunnel(), ApplyMigrations(), EnsureGrants(), InstallOutbox(), InstallTriggers()]
        if config.stream.delivery == "direct":
            steps.append(DrainOutbox())
        steps.append(SmokeTest())
        if any(table.backfill for table in config.stream.tables):
            steps.append(BackfillTables())
    try:
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

        plans = plan_stacks(ctx.aws.client("cloudformation"), config, only, ui, cancel,
                            image_lookup=ssm_lookup(ctx.aws.client("ssm")))
        changed = any(p.changed for p in plans)
        if not only:
            changed = plan_database(ctx) or changed
        return changed
    finally:
        ctx.close()


def down(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> None:
    from orchestrator.deploy.down import destroy_stacks

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
