"""The command line: each command parses its options and calls one function.

`main()` (with `cli_session.session()`, which each command runs in) is the one place that turns errors
into exit codes (0 ok, 1 failed, 2 bad usage or config, 130 cancelled) and, with --output json, into an
`error` object and the final `result` object every command ends with. Heavy imports (boto3,
troposphere, paramiko, rich) happen inside the commands, so `rds-streams --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator import __version__
from orchestrator.cli_session import aws_error, report, session, usage_error
from orchestrator.ui import OutputFormat

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

    with session(output) as s:
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

    with session(output) as s:
        written = run(s.load(config), out, s.ui)
        s.done(f"wrote {len(written)} templates to {out}")


@app.command()
def up(config: ConfigPath = Path("config.toml"), only: Only = None, yes: Yes = False,
       accept_edited: Annotated[bool, typer.Option(
           "--accept-edited-migrations",
           help="Record applied migrations that were edited since as they are now, without running them again "
                "(for edits that change nothing that ran: comments, formatting).")] = False,
       refresh_bastion: Annotated[bool, typer.Option("--refresh-bastion", help="Replace the bastion with the "
                                                     "current Amazon Linux 2023 image; otherwise it keeps the image "
                                                     "it was launched with.")] = False,
       profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT) -> None:
    """Deploy or update everything; idempotent, resumes after any failure."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import up as run
    from orchestrator.lock import command_lock

    with session(output, yes, profile, region) as s:
        cfg = s.load(config)
        with command_lock(cfg, "up"), first_interrupt_cancels(CancelToken()) as cancel:
            steps = run(cfg, s.ui, cancel, only, accept_edited_migrations=accept_edited,
                        refresh_bastion=refresh_bastion)
        ran = sum(step.outcome == "ran" for step in steps)
        s.done(f"{len(steps)} steps: {ran} ran, {len(steps) - ran} already done",
               next=_next(config, "verify", "logs --follow", "tunnel", "down"))


@app.command()
def plan(config: ConfigPath = Path("config.toml"), only: Only = None, profile: Profile = None, region: Region = None,
         output: Output = OutputFormat.TEXT) -> None:
    """Show what `up` would change (change sets and database objects); applies nothing."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lifecycle import plan as run

    with session(output, False, profile, region) as s:
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
    from orchestrator.lock import command_lock

    with session(output, yes, profile, region) as s:
        cfg = s.load(config)
        with command_lock(cfg, "down"), first_interrupt_cancels(CancelToken()) as cancel:
            run(cfg, s.ui, cancel, only)
        s.done("torn down" if not only else f"deleted {', '.join(only)} where present")


@app.command()
def verify(
    config: ConfigPath = Path("config.toml"),
    tables: Annotated[bool, typer.Option("--tables/--no-tables", help="Also round-trip the user's tables (writes "
                                         "and removes marker rows there; their AUTO_INCREMENT counters advance).")
                      ] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", help="How long to wait for each "
                                                  "record in the consumer's log (default 30 in the sandbox, 120 on AWS).")
                       ] = None,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """Prove the stream end to end; exit 0 only if every check passes."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.lock import command_lock
    from orchestrator.verify.run import summary
    from orchestrator.verify.run import verify as run

    with session(output, False, profile, region) as s:
        cfg = s.load(config)
        with command_lock(cfg, "verify"), first_interrupt_cancels(CancelToken()) as cancel:
            results = run(cfg, s.ui, cancel, tables, timeout)
        s.done(summary(results))
        s.ui.say("{summary}", summary=summary(results))


@app.command()
def backfill(
    config: ConfigPath = Path("config.toml"),
    table: Annotated[list[str] | None, typer.Option("--table", metavar="NAME", help="Only this streamed table; "
                                                    "repeatable (default: every streamed table).")] = None,
    where: Annotated[str | None, typer.Option("--where", metavar="SQL", help="Only rows matching this condition "
                                              "(SQL over the table's columns).")] = None,
    chunk: Annotated[int, typer.Option("--chunk", metavar="N", min=1, max=100000,
                                       help="Rows per chunk: writers to a chunk's rows wait for it.")] = 1000,
    rate: Annotated[float | None, typer.Option("--rate", metavar="R", min=1.0,
                                               help="At most R rows per second (default: as fast as it goes).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Only resume unfinished backfills (an unfinished one "
                                         "is resumed by default too).")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Start over, even where one could resume.")] = False,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """Emit the existing rows of streamed tables as snapshot records, consistent with live changes; resumable."""
    from orchestrator.backfill_run import backfill_command
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.database.backfill import BackfillOptions
    from orchestrator.errors import UsageError
    from orchestrator.lock import command_lock

    with session(output, False, profile, region) as s:
        if resume and restart:
            raise UsageError("--resume and --restart contradict each other", hint="pass one of them")
        options = BackfillOptions(chunk_rows=chunk, rate=rate, row_filter=where, restart=restart, resume_only=resume)
        cfg = s.load(config)
        with command_lock(cfg, "backfill"), first_interrupt_cancels(CancelToken()) as cancel:
            states = backfill_command(cfg, s.ui, cancel, table or [], options)
        rows = sum(state.rows_done for state in states)
        s.done(f"{len(states)} table(s) backfilled, {rows} rows in all", rows=rows,
               tables={f"{st.schema}.{st.table}": {"rows": st.rows_done, "chunks": st.chunks_done, "run_id": st.run_id}
                       for st in states}, next=_next(config, "status", "logs"))


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

    with session(output, False, profile, region) as s:
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

    with session(output, False, profile, region) as s:
        only = LogFilter(tables=tuple(table or ()), events=tuple(e.upper() for e in event or ()), everything=everything)
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            tally = show_logs(cfg, s.ui, cancel, follow=follow, since=since, only=only)
        s.done(f"{tally.records} change record(s), {tally.lines} other line(s), {tally.hidden} hidden",
               records=tally.records, lines=tally.lines, hidden=tally.hidden)


@app.command()
def tail(
    config: ConfigPath = Path("config.toml"),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing records as they arrive.")] = False,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="How far back: 30s, 10m, 2h, 1d.")] = "1h",
    everything: Annotated[bool, typer.Option("--all", help="Also the canary's records.")] = False,
    profile: Profile = None, region: Region = None, output: Output = OutputFormat.TEXT,
) -> None:
    """What reached the managed sink (Kinesis or SQS), read without taking it from its consumers."""
    from orchestrator.cancel import CancelToken, first_interrupt_cancels
    from orchestrator.sink_view import tail_sink

    with session(output, False, profile, region) as s:
        cfg = s.load(config)
        with first_interrupt_cancels(CancelToken()) as cancel:
            tally = tail_sink(cfg, s.ui, cancel, follow=follow, since=since, everything=everything)
        s.done(f"{tally.records} record(s) in the {cfg.consumer.sink} sink, {tally.hidden} hidden",
               records=tally.records, hidden=tally.hidden, sink=cfg.consumer.sink)


@app.command()
def status(config: ConfigPath = Path("config.toml"), profile: Profile = None, region: Region = None,
           output: Output = OutputFormat.TEXT) -> None:
    """Stacks, endpoints, sandbox processes, triggers installed vs expected."""
    from orchestrator.cancel import CancelToken
    from orchestrator.status import show_status

    with session(output, False, profile, region) as s:
        report = show_status(s.load(config), s.ui, CancelToken())
        deployed = sum(1 for v in report.get("stacks", {}).values() if v)
        s.done(f"{report['target']} target, {deployed} of {len(report.get('stacks', {}))} stacks deployed")


def main(argv: list[str] | None = None) -> int:
    from orchestrator.errors import RdsStreamsError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, standalone_mode=False, prog_name="rds-streams")
    except RdsStreamsError as err:
        report(err, err.title, err.hint)
        return err.exit_code
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.exceptions.TyperException as err:  # bad usage, reported the way typer reports it
        return usage_error(err, args)
    except (KeyboardInterrupt, typer.Abort):
        print("cancelled", file=sys.stderr)
        return 130
    except Exception as err:
        converted = aws_error(err)
        if converted is None:
            raise
        report(converted, converted.title, converted.hint)
        return converted.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
