"""`rds-streams tunnel`: hold the SSH tunnel open on bastion.local_port and say how to connect
(the article's "How to access it"), never printing a password unless asked."""

from __future__ import annotations

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deployment import DatabaseSession
from orchestrator.ui import UI


def hold_tunnel(config: Config, ui: UI, cancel: CancelToken, *, show_password: bool,
                ready: list[int] | None = None) -> None:
    from orchestrator.lifecycle import context_for

    ctx = context_for(config, ui, cancel)
    session = DatabaseSession(config, ctx.deployment, ctx.aws, ui, local_port=config.bastion.local_port)
    try:
        tunnel = session.tunnel()
        app = session.credentials("app")
        d = ctx.deployment
        endpoint = f" --endpoint-url {ctx.aws.endpoint_url}" if ctx.aws.endpoint_url else ""
        password_hint = (f"aws secretsmanager get-secret-value{endpoint} --secret-id {d.app_secret_arn} "
                         "--query SecretString --output text")
        ui.emit("tunnel", host=tunnel.local_host, port=tunnel.local_port, database=config.database.name,
                user=app.username, password_secret=d.app_secret_arn, master_secret=d.master_secret_arn,
                **({"password": app.password} if show_password else {}))
        ui.say(f"[bold]Tunnel open[/]: {tunnel.local_host}:{tunnel.local_port} → {d.db_host}:{d.db_port} "
               f"through {d.bastion_user}@{d.bastion_host}:{d.bastion_port}")
        ui.say(f"  database  {config.database.name}")
        ui.say(f"  user      {app.username}")
        ui.say(f"  password  {app.password if show_password else 'in Secrets Manager: ' + password_hint}")
        ui.say(f"  connect   mysql -h {tunnel.local_host} -P {tunnel.local_port} -u {app.username} -p "
               f"{config.database.name}")
        ui.say(f"  master    secret {d.master_secret_arn} (for administration)")
        ui.say("Press Ctrl-C to close the tunnel.")
        if ready is not None:
            ready.append(tunnel.local_port)
        while not cancel.wait(1.0):
            tunnel.ensure_open()  # a dropped connection is reopened, so clients can reconnect
    finally:
        session.close()
        ctx.close()
    ui.say("tunnel closed")
