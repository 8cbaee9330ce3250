"""`rds-streams init [DIR]`: a commented config.toml and a first migration (the article's `routes`
table) that run as they are on the local sandbox. At a terminal it asks the few questions that matter;
each has a flag, and off a terminal the flags and defaults are the answers."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.ui import UI

# The first file of the config's `database.migrations` folder (V<n>__<name>.sql, each applied once).
FIRST_MIGRATION = "sql/migrations/V1__routes.sql"
LOCAL_CIDR = "127.0.0.1/32"   # the sandbox's bastion listens on loopback


@dataclass
class InitAnswers:
    target: str | None = None
    region: str | None = None
    allowed_cidr: str | None = None
    tables: list[str] = field(default_factory=list)
    name: str = "rds-streams"


@dataclass(frozen=True)
class InitResult:
    config: Path
    migration: Path
    target: str


def init_project(directory: Path, answers: InitAnswers, ui: UI, *, force: bool = False) -> InitResult:
    config_path, migration_path = directory / "config.toml", directory / FIRST_MIGRATION
    existing = [p for p in (config_path, migration_path) if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(map(str, existing))} already exist(s); nothing was written",
                         hint="pass --force to overwrite, or choose another folder: rds-streams init DIR")
    target = answers.target or ui.ask("Target: local (sandbox on this machine, free) or aws (your account, billed)",
                                      "local")
    if target not in ("local", "aws"):
        raise UsageError(f"target {target!r}: choose local or aws")
    region = answers.region or ui.ask("AWS region", "eu-west-1")
    cidr = answers.allowed_cidr or _ask_cidr(ui, target)
    tables = answers.tables or ui.ask("Tables to stream (comma-separated)", "routes").split(",")
    tables = [t.strip() for t in tables if t.strip()]
    text = _CONFIG.format(name=answers.name, target=target, region=region, cidr=cidr, migration=FIRST_MIGRATION,
                          tables="\n".join(_TABLE.format(name=t) for t in tables))
    _check(text, config_path)
    from orchestrator.resources import sql_text

    migration_path.parent.mkdir(parents=True, exist_ok=True)
    migration_path.write_text(_MIGRATION_HEADER + sql_text("migrations/V1__routes.sql"), encoding="utf-8")
    config_path.write_text(text, encoding="utf-8")
    ui.emit("written", path=config_path)
    ui.emit("written", path=migration_path)
    ui.say("[green]wrote[/] {path}", path=config_path)
    ui.say("[green]wrote[/] {path}", path=migration_path)
    others = [t for t in tables if t.lower() != "routes"]
    if others:
        ui.say("[yellow]![/] create {tables} in {migration} (it creates only `routes`) before `up`",
               tables=", ".join(others), migration=migration_path)
    return InitResult(config_path, migration_path, target)


def _ask_cidr(ui: UI, target: str) -> str:
    if target == "local":
        return LOCAL_CIDR
    if not ui.interactive:
        raise UsageError("target aws needs --allowed-cidr: the addresses that may SSH to the bastion",
                         hint="e.g. --allowed-cidr 203.0.113.7/32 (your public IP; 0.0.0.0/0 is refused)")
    return ui.ask("Who may SSH to the bastion (your public IP as a CIDR, e.g. 203.0.113.7/32)", "")


def _check(text: str, config_path: Path) -> None:
    """Refuse answers that `up` would refuse, before anything is written (exit 2)."""
    from pydantic import ValidationError

    from orchestrator.config import Config, describe_validation_error

    try:
        Config.model_validate(tomllib.loads(text))
    except ValidationError as err:
        raise UsageError(f"nothing was written: {describe_validation_error(err, config_path)}",
                         hint="change the answer (or the flag) it names") from None


_MIGRATION_HEADER = """\
-- The first migration: the article's flights.routes table. `up` applies it once (its checksum is
-- recorded in rds_streams.migrations); never edit it after it ran: add V2__<what>.sql and so on.
"""

_TABLE = """[[stream.tables]]
name = "{name}"  # columns and keys are read from information_schema
# sample = {{ col = "..." }}  # values `verify --tables` may use where constraints defeat generated ones
"""

_CONFIG = """\
# rds-streams configuration, written by `rds-streams init`. The keys are documented in the README
# ("Config reference"). With target = "local" everything runs offline on this machine; with "aws" it
# deploys to your account: the NAT gateway and Aurora bill by the hour until `rds-streams down`.

[project]
name = "{name}"  # stack-name prefix and ownership tag
target = "{target}"  # "local": offline sandbox on this machine; "aws": your AWS account
region = "{region}"

[network]
cidr = "10.0.0.0/16"
egress = "nat"              # "nat" (NAT gateway) | "endpoint" (Lambda VPC interface endpoint)

[database]
engine_version = "8.0.mysql_aurora.3.10.3"   # Aurora MySQL 3; 5.7.mysql_aurora.2.* selects the v2 dialect
instance_class = "db.t4g.medium"
instances = 1
name = "flights"            # the schema your tables live in
migrations = "sql/migrations"   # V<n>__<name>.sql files, applied in order, each once
deletion = "delete"         # what `down` does with the cluster: "delete" | "snapshot"

[bastion]
instance_type = "t4g.nano"
allowed_cidr = "{cidr}"  # who may SSH in; 0.0.0.0/0 is refused
local_port = 33306          # `rds-streams tunnel` listens here

[consumer]
function_name = "{name}-consumer"
log_retention_days = 7
# source = "consumer/"      # your own handler: a folder (with an optional requirements.txt) ...
# handler = "app.handler"   # ... and its entry point; default: the shipped logging consumer
# sink = "log"              # "log" (logs each record) | "kinesis" | "sqs" (FIFO) | "eventbridge": fed by our forwarder

[stream]
delivery = "direct"         # "direct": lambda_async per row (as in the article) | "outbox": transactional, batched
view_type = "NEW_AND_OLD_IMAGES"   # KEYS_ONLY | NEW_IMAGE | OLD_IMAGE | NEW_AND_OLD_IMAGES
# relay_partitions = 4             # outbox: parallel relays over the key space, per-key order kept

{tables}"""
