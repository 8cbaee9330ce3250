"""Connections: explicit TLS per target, bounded timeouts, errors that name everything but the password."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.database.connect import TlsMode, TlsPolicy, can_log_in, connect
from orchestrator.database.credentials import Credentials
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port
from tests.tunnel.conftest import NO_TLS


def test_each_target_gets_an_explicit_tls_setting(tmp_path: Path) -> None:
    bundle = tmp_path / "global-bundle.pem"
    assert TlsPolicy.for_target("local").pymysql_options() == {"ssl_disabled": True}
    assert TlsPolicy.for_target("aws").mode is TlsMode.REQUIRED
    assert TlsPolicy.for_target("aws", ca_bundle=bundle).mode is TlsMode.VERIFY
    with pytest.raises(OperationFailed, match="needs a CA bundle"):
        TlsPolicy(TlsMode.VERIFY)


def test_the_tls_context_is_built_once_not_per_connect() -> None:
    first = TlsPolicy(TlsMode.REQUIRED).pymysql_options()["ssl"]
    assert TlsPolicy(TlsMode.REQUIRED).pymysql_options()["ssl"] is first
    assert first.verify_mode is ssl.CERT_NONE


def test_required_tls_refuses_a_server_without_it(mariadb_server: MariaDBServer, admin: Credentials) -> None:
    with pytest.raises(OperationFailed, match="SSL is required") as refused:
        connect("127.0.0.1", mariadb_server.port, admin, tls=TlsPolicy(TlsMode.REQUIRED))
    assert "TLS" in (refused.value.hint or "")


def test_the_sandbox_connects_in_utf8mb4_with_autocommit(mariadb_server: MariaDBServer, admin: Credentials) -> None:
    with connect("127.0.0.1", mariadb_server.port, admin, tls=NO_TLS) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT @@character_set_client, @@autocommit")
        assert cursor.fetchone() == ("utf8mb4", 1)


def test_a_wrong_password_names_user_host_and_port_but_not_the_password(mariadb_server: MariaDBServer,
                                                                         admin: Credentials) -> None:
    wrong = Credentials(admin.username, "not-" + admin.password)
    with pytest.raises(OperationFailed) as refused:
        connect("127.0.0.1", mariadb_server.port, wrong, tls=NO_TLS)
    message = str(refused.value)
    assert f"{admin.username}@127.0.0.1:{mariadb_server.port}" in message
    assert wrong.password not in message + repr(refused.value) + (refused.value.hint or "")
    assert "secret" in (refused.value.hint or "")
    assert not can_log_in("127.0.0.1", mariadb_server.port, wrong, tls=NO_TLS)
    assert can_log_in("127.0.0.1", mariadb_server.port, admin, tls=NO_TLS)


def test_nothing_listening_says_to_open_the_tunnel(admin: Credentials) -> None:
    with pytest.raises(OperationFailed) as refused:
        connect("127.0.0.1", free_port(), admin, tls=NO_TLS, connect_timeout=2)
    assert "tunnel" in (refused.value.hint or "")


def _certificate(subject: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: str, key: ec.EllipticCurvePrivateKey,
                 *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_endpoint(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - (port, CA bundle path)
    """A TLS server on 127.0.0.1 whose certificate names the cluster, as RDS's does: the tunnel case."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Test RDS Root CA", ca_key, "Test RDS Root CA", ca_key, ca=True)
    server_cert = _certificate("db.cluster-abc.eu-west-1.rds.amazonaws.com", ca_key, "Test RDS Root CA", server_key,
                               ca=False)
    (directory / "bundle.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(directory / "server.pem", directory / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], directory / "bundle.pem"
    listener.close()


def handshake(port: int, policy: TlsPolicy) -> None:
    context = policy.pymysql_options()["ssl"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        # As PyMySQL does: the host it dialled is the tunnel's 127.0.0.1.
        context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def test_verification_checks_the_cluster_name_not_the_tunnel_address(tls_endpoint: tuple[int, Path]) -> None:
    port, bundle = tls_endpoint
    handshake(port, TlsPolicy(TlsMode.VERIFY, bundle, "db.cluster-abc.eu-west-1.rds.amazonaws.com"))
    handshake(port, TlsPolicy(TlsMode.VERIFY, bundle))  # the chain only
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(port, TlsPolicy(TlsMode.VERIFY, bundle, "other.cluster-xyz.eu-west-1.rds.amazonaws.com"))


def test_verification_refuses_a_certificate_from_another_ca(tls_endpoint: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = tls_endpoint
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_bundle = tmp_path / "other.pem"
    other_bundle.write_bytes(_certificate("Other CA", other_key, "Other CA", other_key, ca=True)
                             .public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, TlsPolicy(TlsMode.VERIFY, other_bundle))
