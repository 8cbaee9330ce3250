"""Database connections with explicit TLS, charset, autocommit and timeouts.

PyMySQL left to itself uses "TLS preferred" and builds a fresh CA context on every connect
(30-45 ms, FACTS.md). We say per target what we want and build each context once:
- sandbox: no TLS (MariaDB on loopback, reached through our own tunnel);
- AWS with the RDS CA bundle: verify the chain, and the cluster's name when we know it (through
  a tunnel the host we dial is 127.0.0.1, so the name to check is passed separately);
- AWS without a bundle: TLS required, unverified (the SSH tunnel already authenticates the path).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.database.credentials import Credentials
from orchestrator.errors import OperationFailed

if TYPE_CHECKING:
    import pymysql.connections

_HINTS = {
    1044: "the user lacks privileges on that database; run `rds-streams up` to apply the grants",
    1045: "the password does not match the user's secret; if the secret was rotated, run `rds-streams up`",
    1049: "the database does not exist yet; `rds-streams up` creates it with the schema",
    2003: "nothing answers there: is the tunnel open (`rds-streams tunnel`) and the database running?",
    2013: "the connection dropped: the tunnel or the database went away",
    2026: "the TLS handshake failed: check the CA bundle and the TLS setting for this target",
}


class TlsMode(StrEnum):
    DISABLED = "disabled"
    REQUIRED = "required"  # encrypted, certificate not checked
    VERIFY = "verify"  # certificate chain checked against ca_bundle (and server_name, if given)


@dataclass(frozen=True)
class TlsPolicy:
    mode: TlsMode
    ca_bundle: Path | None = None
    # The name the certificate must carry (the cluster endpoint); None checks the chain only.
    server_name: str | None = None

    @classmethod
    def for_target(cls, target: str, *, ca_bundle: Path | None = None, server_name: str | None = None) -> TlsPolicy:
        if target == "local":
            return cls(TlsMode.DISABLED)
        if ca_bundle is not None:
            return cls(TlsMode.VERIFY, ca_bundle, server_name)
        return cls(TlsMode.REQUIRED)

    def __post_init__(self) -> None:
        if self.mode is TlsMode.VERIFY and self.ca_bundle is None:
            raise OperationFailed("TLS verification needs a CA bundle",
                                  hint="download the RDS bundle: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem")

    def pymysql_options(self) -> dict[str, Any]:
        if self.mode is TlsMode.DISABLED:
            return {"ssl_disabled": True}
        return {"ssl": _ssl_context(self.mode, self.ca_bundle, self.server_name)}


class _NamedContext(ssl.SSLContext):
    """Checks the certificate against a fixed name, whatever host PyMySQL dialled (127.0.0.1 via a tunnel)."""

    expected_name: str | None = None

    def wrap_socket(self, sock: Any, *args: Any, server_hostname: str | None = None, **kwargs: Any) -> Any:
        return super().wrap_socket(sock, *args, server_hostname=self.expected_name or server_hostname, **kwargs)


@functools.lru_cache(maxsize=8)
def _ssl_context(mode: TlsMode, ca_bundle: Path | None, server_name: str | None) -> ssl.SSLContext:
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode is TlsMode.REQUIRED:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle is None or not ca_bundle.is_file():
        raise OperationFailed(f"the CA bundle {ca_bundle} does not exist",
                              hint="download it from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem")
    context.load_verify_locations(cafile=str(ca_bundle))
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = server_name is not None
    context.expected_name = server_name
    return context


def connect(host: str, port: int, credentials: Credentials, *, database: str | None = None, tls: TlsPolicy,
            autocommit: bool = True, connect_timeout: float = 10.0,
            read_timeout: float | None = 300.0) -> pymysql.connections.Connection:
    """Open a connection; failures become OperationFailed naming user@host:port (never the password)."""
    import pymysql

    try:
        return pymysql.connect(
            host=host, port=port, user=credentials.username, password=credentials.password, database=database,
            charset="utf8mb4", autocommit=autocommit, connect_timeout=connect_timeout,
            read_timeout=read_timeout, write_timeout=read_timeout, **tls.pymysql_options(),
        )
    except pymysql.err.MySQLError as err:
        code = err.args[0] if err.args and isinstance(err.args[0], int) else None
        reason = err.args[1] if len(err.args) > 1 else str(err)
        where = f"{credentials.username}@{host}:{port}" + (f"/{database}" if database else "")
        raise OperationFailed(f"cannot connect to the database as {where}: {reason}",
                              hint=_HINTS.get(code or 0, "check the endpoint, the tunnel and the credentials")) from err


def can_log_in(host: str, port: int, credentials: Credentials, *, tls: TlsPolicy) -> bool:
    """Whether the password is accepted: how `grants` learns that a secret was rotated."""
    import pymysql

    try:
        connect(host, port, credentials, tls=tls).close()
    except OperationFailed as err:
        cause = err.__cause__
        if isinstance(cause, pymysql.err.OperationalError) and cause.args and cause.args[0] == 1045:
            return False
        raise
    return True
