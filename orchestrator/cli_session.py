"""How one command run begins and ends (used by cli.py): its UI, the --region/--profile overrides, and
errors turned into exit codes and, with --output json, into an `error` object and the final `result`
object every command ends with. Nothing here imports more than the standard library until used."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.ui import OutputFormat

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.errors import RdsStreamsError
    from orchestrator.ui import UI


@dataclass
class Session:
    """One command's UI, and what its final `result` says."""

    ui: UI
    profile: str | None = None
    region: str | None = None
    summary: str = "done"
    fields: dict[str, Any] = field(default_factory=dict)

    def load(self, config_path: Path) -> Config:
        """The config, with --region/--profile applied (they override config and environment alike)."""
        from orchestrator.config import load_config

        config = load_config(config_path)
        if self.region:
            config = _with_region(config, self.region)
            os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = self.region
        if self.profile and config.project.target == "aws":
            os.environ["AWS_PROFILE"] = self.profile
        return config

    def done(self, summary: str, **fields: Any) -> None:
        self.summary, self.fields = summary, fields


def _with_region(config: Config, region: str) -> Config:
    from orchestrator.config import parse_config

    raw = config.model_dump(by_alias=True)
    raw["project"]["region"] = region
    return parse_config(raw, config.source)  # validated like the file's own value


@contextmanager
def session(output: OutputFormat, assume_yes: bool = False, profile: str | None = None,
             region: str | None = None) -> Iterator[Session]:
    from rich.console import Console

    from orchestrator.ui import UI

    run = Session(UI(console=Console(), output=output, assume_yes=assume_yes), profile, region)
    ui = run.ui
    try:
        yield run
    except (Exception, KeyboardInterrupt) as err:
        if not ui.json:
            raise
        error = _as_user_error(err)
        if error is None:  # a bug: say so in the contract's shape, and keep the traceback on stderr
            ui.error(message=f"internal error: {type(err).__name__}: {err}", hint="please report this", exit_code=1)
            ui.result(ok=False, exit_code=1, summary="internal error")
            raise
        ui.error(message=str(error), hint=error.hint, exit_code=error.exit_code)
        ui.result(ok=False, exit_code=error.exit_code, summary=str(error).splitlines()[0])
        raise typer.Exit(error.exit_code) from None
    if ui.output == OutputFormat.TEXT and "next" in run.fields:
        ui.say("[bold]next[/]")
        for command in run.fields["next"]:
            ui.say("  {command}", command=command)
    ui.result(ok=True, exit_code=0, summary=run.summary, **run.fields)


def _as_user_error(err: BaseException) -> RdsStreamsError | None:
    from orchestrator.errors import Cancelled, RdsStreamsError

    if isinstance(err, RdsStreamsError):
        return err
    if isinstance(err, KeyboardInterrupt | typer.Abort):
        return Cancelled("cancelled")
    return aws_error(err) if isinstance(err, Exception) else None


def report(error: Exception, title: str, hint: str | None) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(stderr=True)
    message = str(error) + (f"\n{hint}" if hint else "")
    if console.is_terminal:
        body = Text(message, overflow="fold")
        console.print(Panel(body, title=Text(title), title_align="left", border_style="red"))
    else:  # plain lines for logs and pipes
        console.print(Text(f"rds-streams: {title}: {message}"), soft_wrap=True)


def aws_error(err: Exception) -> RdsStreamsError | None:
    """botocore errors raised outside a workflow step, as user-facing errors; None for anything else."""
    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.aws import describe_aws_error

    return describe_aws_error(err, "AWS") if isinstance(err, ClientError | BotoCoreError) else None


def _json_requested(argv: list[str]) -> bool:
    return any(a == "--output=json" or (a == "--output" and argv[i + 1:i + 2] == ["json"]) for i, a in enumerate(argv))


def usage_error(err: Any, argv: list[str]) -> int:
    """Bad usage, reported the way click reports it; also as the contract's objects with --output json."""
    if _json_requested(argv):
        from orchestrator.ui import json_line

        message = err.format_message() if hasattr(err, "format_message") else str(err)
        hint = "run the command with -h for its options"
        print(json_line({"type": "error", "message": message, "hint": hint, "exit_code": 2}))
        print(json_line({"type": "result", "ok": False, "exit_code": 2, "summary": message}))
    err.show()
    return 2
