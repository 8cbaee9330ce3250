"""The step engine `up` runs on. Steps know how to check the real world and how to act; this module
owns progress, timing, cancellation and error reporting, so steps know nothing of the display."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.cancel import CancelToken
from orchestrator.errors import OperationFailed, RdsStreamsError
from orchestrator.ui import UI


class Step(Protocol):
    name: str

    def is_done(self, ctx: Any) -> bool: ...

    def run(self, ctx: Any) -> None: ...


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: str          # ran | already done
    seconds: float


def run_steps(steps: list[Step], ctx: Any, ui: UI, cancel: CancelToken) -> list[StepResult]:
    results = []
    for step in steps:
        cancel.raise_if_cancelled(f"cancelled before {step.name}",
                                  hint="run the same command again to finish: every step checks what is done")
        started = time.monotonic()
        try:
            if step.is_done(ctx):
                outcome = "already done"
            else:
                ui.emit("step", name=step.name, status="running")
                ui.say("[bold]→[/] {step}", step=step.name)
                step.run(ctx)
                outcome = "ran"
        except RdsStreamsError as err:
            ui.emit("step", name=step.name, status="failed", message=str(err))
            raise type(err)(f"{step.name}: {err}", hint=err.hint) from err
        except Exception as err:
            converted = _converted(err, step.name)
            if converted is None:
                raise
            ui.emit("step", name=step.name, status="failed", message=str(converted))
            raise converted from err
        seconds = time.monotonic() - started
        results.append(StepResult(step.name, outcome, seconds))
        ui.emit("step", name=step.name, status=outcome, seconds=round(seconds, 3))
        ui.say("[green]✓[/] {step} [dim]({outcome}, {seconds:.1f}s)[/]", step=step.name, outcome=outcome, seconds=seconds)
    return results


def _converted(err: Exception, step: str) -> OperationFailed | None:
    """AWS and database errors become messages the user can act on; anything else is a bug and propagates."""
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.aws import describe_aws_error

    if isinstance(err, ClientError | BotoCoreError):
        return describe_aws_error(err, step)
    return None
