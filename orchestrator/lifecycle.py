"""`up`, `plan` and `down`: the whole lifecycle, each a function of config, UI and cancellation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.aws import AwsClients, clients_for
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.ui import UI
from orchestrator.workflow import StepResult, run_steps


@dataclass
class UpContext:
    config: Config
    aws: AwsClients
    ui: UI
    cancel: CancelToken
    only: list[str] | None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    changed_stacks: list[str] = field(default_factory=list)


class DeployStacks:
    name = "stacks"

    def is_done(self, ctx: UpContext) -> bool:
        return False  # the change sets are the check: an unchanged stack costs one describe

    def run(self, ctx: UpContext) -> None:
        from orchestrator.deploy.up import deploy_stacks

        result = deploy_stacks(ctx.aws.client("cloudformation"), ctx.config, ctx.only, ctx.ui, ctx.cancel)
        ctx.outputs.update(result.outputs)
        ctx.changed_stacks += result.changed


def aws_for(config: Config) -> AwsClients:
    if config.project.target == "local":
        raise OperationFailed("the local sandbox (target = \"local\") is not available in this version",
                              hint="set [project] target = \"aws\"; with AWS_ENDPOINT_URL it can point at moto")
    return clients_for(config)


def up(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> list[StepResult]:
    ctx = UpContext(config=config, aws=aws_for(config), ui=ui, cancel=cancel, only=only)
    steps: list[Any] = [DeployStacks()]
    return run_steps(steps, ctx, ui, cancel)


def plan(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> bool:
    """True when `up` would change something."""
    from orchestrator.deploy.plan import plan_stacks

    plans = plan_stacks(aws_for(config).client("cloudformation"), config, only, ui, cancel)
    return any(p.changed for p in plans)


def down(config: Config, ui: UI, cancel: CancelToken, only: list[str] | None) -> None:
    from orchestrator.deploy.down import destroy_stacks

    destroy_stacks(aws_for(config), config, only, ui, cancel)
