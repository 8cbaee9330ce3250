"""The command line: each command parses its options and calls one function.

`main()` and `_session()` are the one place that turns errors into exit codes (0 ok, 1 failed, 2 bad
usage or config, 130 cancelled) and, with --output json, into an `error` object and the final `result`
object every command ends with. Heavy imports (boto3, troposphere, paramiko, rich) happen inside the
commands, so `rds-streams --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator import __version__
from orchestrator.ui import OutputFormat

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.errors import RdsStreamsError
    from orchestrator.ui import UI

app = typer.Typer(
    name="rds-streams",
    help="DynamoDB Streams-shaped change streams for Aurora MySQL tables, deployed in one command.",
    no_args_is_help=True,
    rich_markup_mode=None,          # plain help: no boxes, flags without a value placeholder, fast start
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

ConfigPath = Annotated[Path, typer.Option("--config", metavar="PATH", help="Path to config.toml.", show_default=True)]
Output = Annotated[OutputFormat, typer.Option("--output", help="text for people, json for machines "
                                              "(one object per line; see README).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Only = Annotated[list[str] | None, typer.Option("--only", metavar="STACK", help="Limit to this stack (network, "
                                                "consumer, database); repeatable. Skips the database steps.")]
Profile = Annotated[str | None, typer.Option("--profile", metavar="NAME", help="AWS profile (overrides AWS_PROFILE).")]
Region = Annotated[str | None, typer.Option("--region", metavar="REGION",
                                            help="Region (overrides project.region and AWS_REGION).")]


def _version(value: bool) -> None:
    if value:
        print(f"rds-streams {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """DynamoDB Streams-shaped change streams for Aurora MySQL tables, deployed in one command.

    Start with `rds-streams init`, then `rds-streams up`.
    """


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
def _session(output: OutputFormat, assume_yes: bool = False, profile: str | None = None,
             region: str | None = None) -> Iterator[Session]:
    from rich.console import Console

    from orchestrator.ui import UI

    session = Session(UI(console=Console(), output=output, assume_yes=assume_yes), profile, region)
    ui = session.ui
    try:
        yield session
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
    if ui.output is OutputFormat.TEXT and "next" in session.fields:
        ui.say("[bold]next[/]")
        for command in session.fields["next"]:
            ui.say("  {command}", command=command)
    ui.result(ok=True, exit_code=0, summary=session.summary, **session.fields)


def _as_user_error(err: BaseException) -> RdsStreamsError | None:
    from orchestrator.errors import Cancelled, RdsStreamsError

    if isinstance(err, RdsStreamsError):
        return err
    if isinstance(err, KeyboardInterrupt | typer.Abort):
        return Cancelled("cancelled")
    return _aws_error(err) if isinstance(err, Exception) else None


def _next(config: Path, *commands: str) -> list[str]:
    suffix = "" if config == Path("config.toml") else f" --config {config}"
    return [f"rds-streams {c}{suffix}" for c in commands]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(metavar="[DIR]", help="Folder to write into.")] = Path("."),
    target: Annotated[str | None, typer.Option("--target", metavar="local|aws",
                                               help="local: sandbox on this machine; aws: your account.")] = None,
    region: Annotated[str | None, typer.Option("--region", metavar="REGION", help="AWS region.")] = None,
    allowed_cidr: Annotated[str | None, typer.Option("--allowed-cidr", metavar="CIDR",
                                                     help="Who may SSH to the bastion (aws).")] = None,
    table: Annotated[list[str] | None, typer.Option("--table", metavar="NAME",
                                                    help="A table to stream; repeatable (default routes).")] = None,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Project name: stack prefix.")] = "rds-streams",
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Write a commented config.toml and a first migration that run as they are on the sandbox."""
    from orchestrator.init_project import InitAnswers, init_project

    with _session(output) as s:
        answers = InitAnswers(target=target, region=region, allowed_cidr=allowed_cidr, tables=table or [], name=name)
        written = init_project(directory, answers, s.ui, force=force)
        config = written.config if directory != Path(".") else Path("config.toml")
        s.done(f"wrote {written.config} and {written.migration}", next=_next(config, "up", "verify", "logs"))


@app.command()
def synth(
    config: ConfigPath = Path("config.toml"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Directory for the JSON templates.")] = Path("out"),
    output: Output = OutputFormat.TEXT,
) -> None:
    """Write each stack's CloudFormation template as JSON."""
    from orchestrator.synth import synth as run

    with _session(output) as s:
        written = run(s.load(config), out, s.ui)
        s.done(f"wrote {len(written)} templates to {out}")


@app.command()
def up(config: ConfigPath = Path("config.toml"), only: Only = None, yes: Yes = False,
       reapply_schema: Annotated[bool, typer.Option("--reapply-schema", help="Run a changed schema file again, "
                                                    "whole (it may drop data); otherwise a change is only reported.")
                                 ] = False,
       profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT) -> None:
    """Deploy or update everything; idempotent, resumes after any failure."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import up as run

    with _session(output, yes, profile, region) as s:
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            steps = run(cfg, s.ui, cancel, only, reapply_schema=reapply_schema)
        ran = sum(step.outcome == "ran" for step in steps)
        s.done(f"{len(steps)} steps: {ran} ran, {len(steps) - ran} already done",
               next=_next(config, "verify", "logs --follow", "tunnel", "down"))


@app.command()
def plan(config: ConfigPath = Path("config.toml"), only: Only = None, profile: Profile = None, region: Region = None,
         output: Output = OutputFormat.TEXT) -> None:
    """Show what `up` would change (change sets and database objects); applies nothing."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import plan as run

    with _session(output, False, profile, region) as s:
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            changed = run(cfg, s.ui, cancel, only)
        s.done("up would change something" if changed else "nothing to change", changes=changed)


@app.command()
def down(config: ConfigPath = Path("config.toml"), only: Only = None, yes: Yes = False, profile: Profile = None,
         region: Region = None, output: Output = OutputFormat.TEXT) -> None:
    """Tear everything down in reverse order, then report and remove leftovers; idempotent."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import down as run

    with _session(output, yes, profile, region) as s:
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            run(cfg, s.ui, cancel, only)
        s.done("torn down" if not only else f"deleted {', '.join(only)} where present")


@app.command()
def verify(
    config: ConfigPath = Path("config.toml"),
    tables: Annotated[bool | None, typer.Option("--tables/--no-tables", help="Also round-trip the user's tables "
                                                "(default: on in the sandbox, off on AWS, where it emits real events).")
                      ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", help="How long to wait for each "
                                                  "record in the consumer's log (default 30 in the sandbox, 120 on AWS).")
                       ] = None,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """Prove the stream end to end; exit 0 only if every check passes."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.verify.run import summary
    from orchestrator.verify.run import verify as run

    with _session(output, False, profile, region) as s:
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            results = run(cfg, s.ui, cancel, tables, timeout)
        s.done(summary(results))
        s.ui.say("{summary}", summary=summary(results))


@app.command()
def tunnel(
    config: ConfigPath = Path("config.toml"),
    user: Annotated[str, typer.Option("--user", metavar="app|master", help="Connect as the app user, or as the "
                                      "master user (for DDL).")] = "app",
    show_password: Annotated[bool, typer.Option("--show-password", help="Print the password too.")] = False,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """Hold the SSH tunnel open on bastion.local_port and print how to connect."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.errors import UsageError
    from orchestrator.hold_tunnel import hold_tunnel

    with _session(output, False, profile, region) as s:
        if user not in ("app", "master"):
            raise UsageError(f"--user {user!r}: use app or master")
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            hold_tunnel(cfg, s.ui, cancel, show_password=show_password, user=user)  # type: ignore[arg-type]
        s.done("tunnel closed")


@app.command()
def logs(
    config: ConfigPath = Path("config.toml"),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="How far back: 30s, 10m, 2h, 1d.")] = "1h",
    table: Annotated[list[str] | None, typer.Option("--table", metavar="NAME", help="Only this table's records "
                                                    "(name or schema.name); repeatable.")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", metavar="INSERT|MODIFY|REMOVE",
                                                    help="Only these events; repeatable.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Also Lambda's START/END/REPORT lines, our probes "
                                             "and the canary's records.")] = False,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """The consumer's log: change records as rows (or whole, with --output json)."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.logs_view import LogFilter, show_logs

    with _session(output, False, profile, region) as s:
        only = LogFilter(tables=tuple(table or ()), events=tuple(e.upper() for e in event or ()), everything=everything)
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            tally = show_logs(cfg, s.ui, cancel, follow=follow, since=since, only=only)
        s.done(f"{tally.records} change record(s), {tally.lines} other line(s), {tally.hidden} hidden",
               records=tally.records, lines=tally.lines, hidden=tally.hidden)


@app.command()
def status(config: ConfigPath = Path("config.toml"), profile: Profile = None, region: Region = None,
           output: Output = OutputFormat.TEXT) -> None:
    """Stacks, endpoints, sandbox processes, triggers installed vs expected."""
    from orchestrator.cancel import CancelToken
    from orchestrator.status import show_status

    with _session(output, False, profile, region) as s:
        report = show_status(s.load(config), s.ui, CancelToken())
        deployed = sum(1 for v in report.get("stacks", {}).values() if v)
        s.done(f"{report['target']} target, {deployed} of {len(report.get('stacks', {}))} stacks deployed")


def _report(error: Exception, title: str, hint: str | None) -> None:
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


def _aws_error(err: Exception) -> RdsStreamsError | None:
    """botocore errors raised outside a workflow step, as user-facing errors; None for anything else."""
    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.aws import describe_aws_error

    return describe_aws_error(err, "AWS") if isinstance(err, ClientError | BotoCoreError) else None


def _json_requested(argv: list[str]) -> bool:
    return any(a == "--output=json" or (a == "--output" and argv[i + 1:i + 2] == ["json"]) for i, a in enumerate(argv))


def _usage_error(err: Any, argv: list[str]) -> int:
    """Bad usage, reported the way click reports it; also as the contract's objects with --output json."""
    if _json_requested(argv):
        from orchestrator.ui import json_line

        message = err.format_message() if hasattr(err, "format_message") else str(err)
        hint = "run the command with -h for its options"
        print(json_line({"type": "error", "message": message, "hint": hint, "exit_code": 2}))
        print(json_line({"type": "result", "ok": False, "exit_code": 2, "summary": message}))
    err.show()
    return 2


def main(argv: list[str] | None = None) -> int:
    from orchestrator.errors import RdsStreamsError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, standalone_mode=False, prog_name="rds-streams")
    except RdsStreamsError as err:
        _report(err, err.title, err.hint)
        return err.exit_code
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.exceptions.TyperException as err:  # bad usage, reported the way typer reports it
        return _usage_error(err, args)
    except (KeyboardInterrupt, typer.Abort):
        print("cancelled", file=sys.stderr)
        return 130
    except Exception as err:
        aws_error = _aws_error(err)
        if aws_error is None:
            raise
        _report(aws_error, aws_error.title, aws_error.hint)
        return aws_error.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
