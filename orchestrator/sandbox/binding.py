"""Bind what the stacks describe to the sandbox's local services, as AWS would have made them real:
the cluster's master user exists in MariaDB with its secret's password, Aurora's Lambda functions are
emulated there, the bastion trusts the key pair, and the runner serves the deployed function."""

from __future__ import annotations

from typing import Any

from orchestrator.database.credentials import Credentials
from orchestrator.database.sqltext import quote_identifier
from orchestrator.sandbox.aurora_emulation import LAMBDA_ROLE, install_emulation, set_latency
from orchestrator.sandbox.state import SandboxState
from orchestrator.verify.canary import CANARY_SCHEMA


def ensure_master_user(root: Any, master: Credentials) -> None:
    """Aurora's master user: everything, with grant option, and the Lambda role to hand out (as
    Aurora's rds_superuser_role can)."""
    with root.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (master.username, master.password))
        cursor.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (master.username, master.password))
        cursor.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (master.username,))
        cursor.execute(f"GRANT {quote_identifier(LAMBDA_ROLE)} TO %s@'%%' WITH ADMIN OPTION", (master.username,))


def bind_database(state: SandboxState, master: Credentials, database: str, lambda_ms: int = 0) -> None:
    """`lambda_ms`: the latency model's round trip per Lambda call (config `sandbox.lambda_ms`)."""
    root = state.root_connection()
    try:
        with root.cursor() as cursor:
            for schema in (database, CANARY_SCHEMA):
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(schema)} CHARACTER SET utf8mb4")
        install_emulation(root, [database, CANARY_SCHEMA])
        set_latency(root, lambda_ms)
        ensure_master_user(root, master)
    finally:
        root.close()


def trust_key_pair(state: SandboxState, private_key: Any) -> None:
    """The bastion accepts the key pair AWS generated, as cloud-init installs it on EC2, for one
    thing only: a forward to MariaDB (the bastion's user data sets the same on AWS)."""
    from orchestrator.sandbox.sshd import SshServer, restricted_key_line

    line = restricted_key_line(f"{private_key.get_name()} {private_key.get_base64()}",
                               f"127.0.0.1:{state.mariadb_port}")
    server = SshServer(state.sshd_dir, state.sshd_port)
    current = server.authorized_keys_path.read_text() if server.authorized_keys_path.exists() else ""
    if current.splitlines() != [line]:
        server.authorized_keys_path.write_text(line + "\n")
