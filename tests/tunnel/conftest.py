"""Fixtures for the database side: a real sshd as the bastion in front of the real MariaDB.

Every name these tests create in the shared MariaDB is unique, so other suites using the same
session server are not disturbed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pymysql
import pytest

from orchestrator.config import Config, load_config
from orchestrator.database.connect import TlsMode, TlsPolicy, connect
from orchestrator.database.credentials import Credentials
from orchestrator.database.hostkeys import TrustedHostKeys, generate_ed25519_key
from orchestrator.database.tunnel import Tunnel, TunnelSpec, open_tunnel
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port
from orchestrator.sandbox.sshd import SshServer
from tests.factories import write_config

NO_TLS = TlsPolicy(TlsMode.DISABLED)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def root_connection(server: MariaDBServer) -> pymysql.connections.Connection:
    """Straight to MariaDB, not through the tunnel: for setting up and inspecting."""
    return pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True, ssl_disabled=True)


@pytest.fixture(scope="session")
def client_key() -> tuple[paramiko.PKey, str]:
    """The key pair the bastion trusts (on AWS: the stack's AWS::EC2::KeyPair)."""
    return generate_ed25519_key()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: tuple[paramiko.PKey, str]) -> Iterator[SshServer]:
    server = SshServer(tmp_path_factory.mktemp("sshd"), free_port(), [client_key[1]])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tunnel_spec(sshd: SshServer, client_key: tuple[paramiko.PKey, str], mariadb_server: MariaDBServer) -> TunnelSpec:
    return TunnelSpec(
        bastion_host="127.0.0.1", bastion_port=sshd.port, username=sshd.login_user, private_key=client_key[0],
        host_keys=TrustedHostKeys.from_keys([sshd.host_public_key], source="the sandbox sshd's host key"),
        remote_host="127.0.0.1", remote_port=mariadb_server.port, keepalive_seconds=5,
    )


@pytest.fixture
def tunnel(tunnel_spec: TunnelSpec) -> Iterator[Tunnel]:
    with open_tunnel(tunnel_spec) as opened:
        yield opened


@pytest.fixture(scope="session")
def admin(mariadb_server: MariaDBServer) -> Iterator[Credentials]:
    """An Aurora-like master user, holding the emulated AWS_LAMBDA_ACCESS role as the emulation grants it."""
    credentials = Credentials(unique("rs_admin"), "admin-" + uuid.uuid4().hex)
    with root_connection(mariadb_server) as root, root.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (credentials.username, credentials.password))
        cursor.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (credentials.username,))
        cursor.execute("CREATE ROLE IF NOT EXISTS AWS_LAMBDA_ACCESS")
        # MariaDB lets only holders of a role's admin option hand it out, even root.
        cursor.execute("GRANT AWS_LAMBDA_ACCESS TO %s@'%%' WITH ADMIN OPTION", (credentials.username,))
    yield credentials
    with root_connection(mariadb_server) as root, root.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (credentials.username,))


@pytest.fixture
def database_name(mariadb_server: MariaDBServer) -> Iterator[str]:
    name = unique("tunnel_flights")
    yield name
    with root_connection(mariadb_server) as root, root.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'rds_streams'")
        if cursor.fetchone()[0]:
            cursor.execute("DELETE FROM rds_streams.schema_applied WHERE database_name = %s", (name,))
            cursor.execute("DELETE FROM rds_streams.migrations WHERE database_name = %s", (name,))


@pytest.fixture
def admin_conn(tunnel: Tunnel, admin: Credentials) -> Iterator[pymysql.connections.Connection]:
    conn = connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS)
    yield conn
    conn.close()


@pytest.fixture
def make_config(tmp_path: Path, database_name: str):  # noqa: ANN201 - a factory
    def make(schema: str, *, target: str = "local", engine_version: str | None = None) -> Config:
        database = {"name": database_name, **({"engine_version": engine_version} if engine_version else {})}
        return load_config(write_config(tmp_path, {"project": {"target": target}, "database": database}, schema=schema))

    return make
