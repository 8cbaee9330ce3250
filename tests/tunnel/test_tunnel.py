"""The SSH tunnel against a real sshd on loopback, in front of the real MariaDB."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import pymysql
import pytest

from orchestrator.database.connect import connect
from orchestrator.database.credentials import Credentials
from orchestrator.database.hostkeys import TrustedHostKeys, generate_ed25519_key
from orchestrator.database.tunnel import Tunnel, TunnelSpec, open_tunnel, run_with_reconnect
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.processes import free_port, port_open
from orchestrator.sandbox.sshd import SshServer
from tests.tunnel.conftest import NO_TLS


def select_one(tunnel: Tunnel, credentials: Credentials) -> int:
    with connect(tunnel.local_host, tunnel.local_port, credentials, tls=NO_TLS) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_a_query_runs_through_the_tunnel(tunnel: Tunnel, admin: Credentials) -> None:
    assert tunnel.local_port != 0
    assert select_one(tunnel, admin) == 1
    assert tunnel.reconnects == 0


def test_the_host_key_can_be_trusted_by_fingerprint(tunnel_spec: TunnelSpec, sshd: SshServer, admin: Credentials) -> None:
    trusted = TrustedHostKeys.from_fingerprints([sshd.host_key.fingerprint], source="console output")
    with open_tunnel(dataclasses.replace(tunnel_spec, host_keys=trusted)) as tunnel:
        assert select_one(tunnel, admin) == 1


def test_a_wrong_host_key_is_refused_and_nothing_connects(tunnel_spec: TunnelSpec, sshd: SshServer) -> None:
    impostor_key = generate_ed25519_key()[0]
    local_port = free_port()
    accepted_before = sshd.log_file.read_text().count("Accepted publickey")
    spec = dataclasses.replace(tunnel_spec, local_port=local_port,
                               host_keys=TrustedHostKeys.from_keys([impostor_key], source="the stack's key"))
    with pytest.raises(OperationFailed) as refused:
        open_tunnel(spec)
    message = str(refused.value)
    assert sshd.host_key.fingerprint in message and impostor_key.fingerprint in message
    assert "not the trusted one" in message and "intercepting" in (refused.value.hint or "")
    assert not port_open(local_port)
    # The key was checked before authentication: we never offered our key to the impostor.
    assert sshd.log_file.read_text().count("Accepted publickey") == accepted_before


def test_a_key_the_bastion_does_not_trust_is_reported(tunnel_spec: TunnelSpec) -> None:
    with pytest.raises(OperationFailed, match="refused the SSH key"):
        open_tunnel(dataclasses.replace(tunnel_spec, private_key=generate_ed25519_key()[0]))


def test_an_empty_trust_list_is_refused_before_connecting() -> None:
    with pytest.raises(OperationFailed, match="refusing to connect unverified"):
        TrustedHostKeys.from_fingerprints([], source="console output of i-0abc")


def test_several_connections_share_one_tunnel_concurrently(tunnel: Tunnel, admin: Credentials) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def query() -> None:
        try:
            conn = connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS)
            with conn, conn.cursor() as cursor:
                cursor.execute("SELECT CONNECTION_ID(), SLEEP(0.3)")
                results.append(cursor.fetchone()[0])
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)

    threads = [threading.Thread(target=query) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 8
    assert time.monotonic() - started < 8 * 0.3  # they ran side by side, not one after another


def test_a_dropped_session_is_reopened_and_the_interrupted_step_retried(
        tunnel: Tunnel, sshd: SshServer, admin: Credentials) -> None:
    attempts: list[int] = []

    def step() -> int:
        attempts.append(1)
        with connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            if len(attempts) == 1:
                assert sshd.drop_sessions() >= 1  # the bastion goes away in the middle of the step
            cursor.execute("SELECT 2")
            return cursor.fetchone()[0]

    assert run_with_reconnect(tunnel, step, what="a test step") == 2
    assert len(attempts) == 2
    assert tunnel.reconnects == 1


def test_a_failing_statement_is_not_retried(tunnel: Tunnel, admin: Credentials) -> None:
    attempts: list[int] = []

    def step() -> None:
        attempts.append(1)
        with connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_schema.no_such_table")

    with pytest.raises(pymysql.err.ProgrammingError):
        run_with_reconnect(tunnel, step)
    assert len(attempts) == 1


def test_ensure_open_reconnects_after_the_bastion_restarts(tunnel: Tunnel, sshd: SshServer, admin: Credentials) -> None:
    sshd.stop()
    sshd.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and tunnel._client.get_transport().is_active():  # noqa: SLF001
        time.sleep(0.02)
    tunnel.ensure_open()
    assert tunnel.reconnects == 1
    assert select_one(tunnel, admin) == 1


def test_the_next_connection_reopens_a_dropped_tunnel_by_itself(
        tunnel: Tunnel, sshd: SshServer, admin: Credentials) -> None:
    sshd.drop_sessions()
    assert select_one(tunnel, admin) == 1
    assert tunnel.reconnects == 1


def test_closing_the_tunnel_frees_its_port_and_ends_its_threads(tunnel_spec: TunnelSpec, admin: Credentials) -> None:
    before = threading.active_count()
    tunnel = open_tunnel(tunnel_spec)
    port = tunnel.local_port
    assert select_one(tunnel, admin) == 1
    tunnel.close()
    assert not port_open(port)
    with pytest.raises(OperationFailed, match="closed"):
        tunnel.ensure_open()
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


def test_a_busy_local_port_is_reported(tunnel: Tunnel, tunnel_spec: TunnelSpec) -> None:
    with pytest.raises(OperationFailed, match="cannot listen"):
        open_tunnel(dataclasses.replace(tunnel_spec, local_port=tunnel.local_port))


def test_the_tunnel_never_prints_its_key(tunnel_spec: TunnelSpec, admin: Credentials,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with open_tunnel(tunnel_spec) as tunnel:
        select_one(tunnel, admin)
    key = tunnel_spec.private_key
    secret_bits = key.asbytes().hex()[-32:]
    assert "private_key" not in repr(tunnel_spec)
    assert admin.password not in caplog.text
    assert secret_bits not in caplog.text
