"""The command line: each command parses its options and calls one function.

`main()` is the one place that turns errors into exit codes (0 ok, 1 failed, 2 bad usage or config,
130 cancelled). Heavy imports (boto3, troposphere, paramiko) happen inside the commands, so
`rds-streams --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigPath = Annotated[Path, typer.Option("--config", help="Path to config.toml.", show_default=True)]
Output = Annotated[OutputFormat, typer.Option("--output", help="text for people, json for machines.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Only = Annotated[list[str] | None, typer.Option("--only", help="Limit to this stack (network, consumer, database); "
                                                "repeatable. Skips the database steps.")]


def _version(value: bool) -> None:
    if value:
        print(f"rds-streams {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """DynamoDB Streams-shaped change streams for Aurora MySQL tables, deployed in one command."""


def _setup(config_path: Path, output: OutputFormat, assume_yes: bool = False) -> tuple[Config, UI]:
    from rich.console import Console

    from orchestrator.config import load_config
    from orchestrator.ui import UI

    return load_config(config_path), UI(console=Console(), output=output, assume_yes=assume_yes)


@app.command()
def synth(
    config: ConfigPath = Path("config.toml"),
    out: Annotated[Path, typer.Option("--out", help="Directory for the JSON templates.")] = Path("out"),
    output: Output = OutputFormat.TEXT,
) -> None:
    """Write each stack's CloudFormation template as JSON."""
    from orchestrator.synth import synth as run

    cfg, ui = _setup(config, output)
    run(cfg, out, ui)


@app.command()
def up(config: ConfigPath = Path("config.toml"), only: Only = None, yes: Yes = False,
       accept_edited: Annotated[bool, typer.Option(
           "--accept-edited-migrations",
           help="Record applied migrations that were edited since as they are now, without running them again "
                "(for edits that change nothing that ran: comments, formatting).")] = False,
       refresh_bastion: Annotated[bool, typer.Option("--refresh-bastion", help="Replace the bastion with the "
                                                     "current Amazon Linux 2023 image; otherwise it keeps the image "
                                                     "it was launched with.")] = False,
       output: Output = OutputFormat.TEXT) -> None:
    """Deploy or update everything; idempotent, resumes after any failure."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import up as run
    from orchestrator.lock import command_lock

    cfg, ui = _setup(config, output, yes)
    with command_lock(cfg, "up"), first_interrupt_cancels(CancelToken()) as cancel:
        run(cfg, ui, cancel, only, accept_edited_migrations=accept_edited, refresh_bastion=refresh_bastion)


@app.command()
def plan(config: ConfigPath = Path("config.toml"), only: Only = None, output: Output = OutputFormat.TEXT) -> None:
    """Show what `up` would change (change sets and database objects); applies nothing."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import plan as run

    cfg, ui = _setup(config, output)
    with first_interrupt_cancels(CancelToken()) as cancel:
        run(cfg, ui, cancel, only)


@app.command()
def down(config: ConfigPath = Path("config.toml"), only: Only = None, yes: Yes = False,
         output: Output = OutputFormat.TEXT) -> None:
    """Tear everything down in reverse order, then report and remove leftovers; idempotent."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import down as run
    from orchestrator.lock import command_lock

    cfg, ui = _setup(config, output, yes)
    with command_lock(cfg, "down"), first_interrupt_cancels(CancelToken()) as cancel:
        run(cfg, ui, cancel, only)


@app.command()
def verify(
    config: ConfigPath = Path("config.toml"),
    tables: Annotated[bool, typer.Option("--tables/--no-tables", help="Also round-trip the user's tables (writes "
                                         "and removes marker rows there; their AUTO_INCREMENT counters advance).")
                      ] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait for each record in the "
                                                  "consumer's log (default 30 in the sandbox, 120 on AWS).")] = None,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Prove the stream end to end; exit 0 only if every check passes."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lock import command_lock
    from orchestrator.verify.run import verify as run

    cfg, ui = _setup(config, output)
    with command_lock(cfg, "verify"), first_interrupt_cancels(CancelToken()) as cancel:
        run(cfg, ui, cancel, tables, timeout)


@app.command()
def tunnel(
    config: ConfigPath = Path("config.toml"),
    show_password: Annotated[bool, typer.Option("--show-password", help="Print the app user's password too.")] = False,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Hold the SSH tunnel open on bastion.local_port and print how to connect."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.hold_tunnel import hold_tunnel

    cfg, ui = _setup(config, output)
    with first_interrupt_cancels(CancelToken()) as cancel:
        hold_tunnel(cfg, ui, cancel, show_password=show_password)


@app.command()
def logs(
    config: ConfigPath = Path("config.toml"),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    since: Annotated[str, typer.Option("--since", help="How far back: 30s, 10m, 2h, 1d.")] = "1h",
    output: Output = OutputFormat.TEXT,
) -> None:
    """The consumer's log, change events pretty-printed."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.logs_view import show_logs

    cfg, ui = _setup(config, output)
    with first_interrupt_cancels(CancelToken()) as cancel:
        show_logs(cfg, ui, cancel, follow=follow, since=since)


@app.command()
def status(config: ConfigPath = Path("config.toml"), output: Output = OutputFormat.TEXT) -> None:
    """Stacks, endpoints, sandbox processes, triggers installed vs expected."""
    from orchestrator.cancel import CancelToken
    from orchestrator.status import show_status

    cfg, ui = _setup(config, output)
    show_status(cfg, ui, CancelToken())


def _report(error: Exception, title: str, hint: str | None) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(stderr=True)
    message = str(error) + (f"\n{hint}" if hint else "")
    if console.is_terminal:
        body = Text(message, overflow="fold")
        console.print(Panel(body, title=title, title_align="left", border_style="red"))
    else:  # plain lines for logs and pipes
        console.print(Text(f"rds-streams: {title}: {message}"), soft_wrap=True)


def _aws_error(err: Exception) -> RdsStreamsError | None:
    """botocore errors raised outside a workflow step, as user-facing errors; None for anything else."""
    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.aws import describe_aws_error

    return describe_aws_error(err, "AWS") if isinstance(err, ClientError | BotoCoreError) else None


def main(argv: list[str] | None = None) -> int:
    from orchestrator.errors import RdsStreamsError

    try:
        result = app(args=argv, standalone_mode=False)
    except RdsStreamsError as err:
        _report(err, err.title, err.hint)
        return err.exit_code
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.exceptions.TyperException as err:  # bad usage, reported the way typer reports it
        err.show()
        return 2
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
