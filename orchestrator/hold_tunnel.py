"""`rds-streams tunnel`: hold the SSH tunnel open on bastion.local_port and say how to connect
(the article's "How to access it"), as the app user or the master user (for DDL), never printing a
password unless asked."""

from __future__ import annotations

import os
import shlex
from typing import Literal

from orchestrator.aws import AwsClients
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deployment import DatabaseSession
from orchestrator.ui import UI

DbUser = Literal["app", "master"]


def password_command(aws: AwsClients, region: str, secret_arn: str) -> str:
    """A shell command that prints the user's password, as printed: on AWS with the user's own credentials
    and profile, in the sandbox with its endpoint and credentials."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in aws.cli_environment().items())
    args = ["aws", "secretsmanager", "get-secret-value", "--region", region, "--secret-id", secret_arn,
            "--query", "SecretString", "--output", "text"]
    if aws.endpoint_url:
        args[3:3] = ["--endpoint-url", aws.endpoint_url]
    elif os.environ.get("AWS_PROFILE"):
        args[3:3] = ["--profile", os.environ["AWS_PROFILE"]]
    picker = "python3 -c 'import json, sys; print(json.load(sys.stdin)[\"password\"])'"
    # The user's own AWS_* keys would win over the sandbox's credentials file: the command drops them.
    unset = "env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN " if aws.credentials_file else ""
    return (unset + env + " " if env else "") + shlex.join(args) + " | " + picker


def hold_tunnel(config: Config, ui: UI, cancel: CancelToken, *, show_password: bool, user: DbUser = "app",
                ready: list[int] | None = None) -> None:
    from orchestrator.lifecycle import context_for

    ctx = context_for(config, ui, cancel)
    session = DatabaseSession(config, ctx.deployment, ctx.aws, ui, local_port=config.bastion.local_port)
    try:
        tunnel = session.tunnel()
        credentials = session.credentials(user)
        d = ctx.deployment
        secret = d.master_secret_arn if user == "master" else d.app_secret_arn
        command = password_command(ctx.aws, os.environ.get("AWS_REGION") or config.project.region, secret)
        connect = shlex.join(["mysql", "-h", tunnel.local_host, "-P", str(tunnel.local_port), "-u",
                              credentials.username, "-p", config.database.name])
        ui.emit("tunnel", host=tunnel.local_host, port=tunnel.local_port, database=config.database.name,
                user=credentials.username, role=user, secret_arn=secret, password_command=command,
                **({"password": credentials.password} if show_password else {}))
        ui.say("[bold]Tunnel open[/]: {local} → {remote} through {bastion}",
               local=f"{tunnel.local_host}:{tunnel.local_port}", remote=f"{d.db_host}:{d.db_port}",
               bastion=f"{d.bastion_user}@{d.bastion_host}:{d.bastion_port}" if d.reach == "bastion"
               else 'nothing: [bastion] mode = "none" reaches the endpoint directly')
        ui.say("  database  {name}", name=config.database.name)
        ui.say("  user      {name} ({role})", name=credentials.username,
               role="the master user, for DDL" if user == "master" else "the app user; --user master for DDL")
        if show_password:
            ui.say("  password  {password}", password=credentials.password)
        else:
            ui.command_line("  password  {command}", command=command)
        ui.say("  connect   {command}", command=connect)
        ui.say("Press Ctrl-C to close the tunnel.")
        if ready is not None:
            ready.append(tunnel.local_port)
        while not cancel.wait(1.0):
            tunnel.ensure_open()  # a dropped connection is reopened, so clients can reconnect
    finally:
        session.close()
        ctx.close()
    ui.say("tunnel closed")
