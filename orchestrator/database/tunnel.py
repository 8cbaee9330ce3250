"""A local port forward through the bastion to the database, reopened when the SSH session drops.

`open_tunnel(spec)` listens on 127.0.0.1:`local_port` and forwards each accepted connection over
its own `direct-tcpip` channel of one SSH transport, one thread per connection. When the transport
has dropped, the next accepted connection (or `ensure_open()`) reconnects first; `run_with_reconnect`
retries a database step once when the connection was lost under it. Nothing here logs key material
or passwords: the only secret we hold is the private key, and it goes to paramiko alone.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from orchestrator.database.hostkeys import TrustedHostKeys
from orchestrator.errors import OperationFailed

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger(__name__)
T = TypeVar("T")

# CR_SERVER_GONE_ERROR and CR_SERVER_LOST: the connection broke under a running step.
CONNECTION_LOST_CODES = frozenset({2006, 2013})
_CHUNK = 65536


@dataclass(frozen=True)
class TunnelSpec:
    bastion_host: str
    bastion_port: int
    username: str
    private_key: paramiko.PKey = field(repr=False)
    host_keys: TrustedHostKeys
    remote_host: str
    remote_port: int
    local_port: int = 0  # 0: any free port, read it back from Tunnel.local_port
    local_host: str = "127.0.0.1"
    keepalive_seconds: int = 15
    connect_timeout: float = 15.0

    @property
    def bastion(self) -> str:
        return f"{self.bastion_host}:{self.bastion_port}"


class Tunnel:
    """A running forward; use as a context manager or call close()."""

    def __init__(self, spec: TunnelSpec) -> None:
        self.spec = spec
        self.reconnects = 0
        self.connect_seconds = 0.0  # connect + host key check + auth, last time it happened
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._acceptor = threading.Thread(target=self._accept_loop, name="tunnel-accept", daemon=True)

    @property
    def local_host(self) -> str:
        return self.spec.local_host

    @property
    def local_port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> Tunnel:
        with self._lock:
            self._client = self._connect()
        try:
            self._listener.bind((self.spec.local_host, self.spec.local_port))
        except OSError as err:
            self.close()
            raise OperationFailed(f"cannot listen on {self.spec.local_host}:{self.spec.local_port} for the tunnel: "
                                  f"{err.strerror}", hint="another program holds the port; stop it or change "
                                  "[bastion] local_port") from None
        self._listener.listen(64)
        self._acceptor.start()
        return self

    def ensure_open(self) -> None:
        """Reconnect the SSH transport if it has dropped; a no-op while it is up."""
        if self._closed.is_set():
            raise OperationFailed("the tunnel was closed; open a new one")
        with self._lock:
            if self._client is None or not _active(self._client):
                self._reconnect_locked()

    def close(self) -> None:
        self._closed.set()
        try:
            # Wakes the blocked accept() on Linux, so the acceptor thread ends now.
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            if self._client is not None:
                self._client.close()  # closes every channel, which ends every pump thread
        for thread in [self._acceptor, *list(self._threads)]:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=2.0)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> paramiko.SSHClient:
        import paramiko

        spec = self.spec
        client = paramiko.SSHClient()
        # No known_hosts of the user's: only the keys in spec.host_keys count.
        client.set_missing_host_key_policy(spec.host_keys.policy(f"the bastion {spec.bastion}"))
        started = time.perf_counter()
        try:
            client.connect(spec.bastion_host, spec.bastion_port, username=spec.username, pkey=spec.private_key,
                           timeout=spec.connect_timeout, banner_timeout=spec.connect_timeout,
                           auth_timeout=spec.connect_timeout, allow_agent=False, look_for_keys=False,
                           transport_factory=self._transport_factory)
        except OperationFailed:
            client.close()
            raise
        except paramiko.AuthenticationException:
            client.close()
            raise OperationFailed(f"the bastion {spec.bastion} refused the SSH key for user {spec.username!r}",
                                  hint="check that the key pair is the one the bastion was launched with") from None
        except (paramiko.SSHException, OSError, EOFError) as err:
            client.close()
            raise OperationFailed(f"cannot open an SSH session to the bastion {spec.bastion}: {err}",
                                  hint="check that it is running and that [bastion] allowed_cidr includes "
                                       "your address") from None
        self.connect_seconds = time.perf_counter() - started
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(spec.keepalive_seconds)
        return client

    def _transport_factory(self, sock: socket.socket, **kwargs: object) -> paramiko.Transport:
        import paramiko

        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small queries are latency-bound
        transport = paramiko.Transport(sock, **kwargs)  # type: ignore[arg-type]
        if self.spec.host_keys.key_types:
            transport.get_security_options().key_types = self.spec.host_keys.key_types
        return transport

    def _reconnect_locked(self) -> None:
        if self._client is not None:
            self._client.close()
        log.info("SSH session to %s dropped; reconnecting", self.spec.bastion)
        self._client = self._connect()
        self.reconnects += 1

    def _open_channel(self, origin: tuple[str, int]) -> paramiko.Channel:
        import paramiko

        destination = (self.spec.remote_host, self.spec.remote_port)
        for attempt in (1, 2):
            self.ensure_open()
            with self._lock:
                client = self._client
            transport = client.get_transport() if client is not None else None
            try:
                if transport is None:
                    raise paramiko.SSHException("the SSH session is gone")
                channel = transport.open_channel("direct-tcpip", destination, origin, timeout=self.spec.connect_timeout)
                # sshd does not set TCP_NODELAY on a forwarding-only session, so Nagle holds the database's
                # greeting behind the unacknowledged channel confirmation until our delayed ACK (~40 ms per
                # connect). Any packet from us carries that ACK at once; IGNORE is the one that means nothing.
                transport.send_ignore(1)
                return channel
            except paramiko.ChannelException as err:
                # The bastion reached us but not the database: reconnecting would not help.
                raise OperationFailed(f"the bastion could not reach {destination[0]}:{destination[1]}: {err}") from None
            except (paramiko.SSHException, EOFError, OSError):
                # The transport died between the liveness check and the open; retry once on a new one.
                if attempt == 2:
                    raise
                with self._lock:
                    if self._client is client:
                        self._reconnect_locked()
        raise AssertionError("unreachable")

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, origin = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn, origin), name="tunnel-forward", daemon=True)
            self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket, origin: tuple[str, int]) -> None:
        try:
            try:
                channel = self._open_channel(origin)
            except Exception as err:  # noqa: BLE001 - the client sees a closed socket; we say why in the log
                log.warning("tunnel: could not forward a connection: %s", err)
                conn.close()
                return
            _pump(conn, channel, self._closed)
        finally:
            self._threads.discard(threading.current_thread())


def _pump(conn: socket.socket, channel: paramiko.Channel, closed: threading.Event) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while not closed.is_set():
            readable, _, _ = select.select([conn, channel], [], [], 1.0)
            if conn in readable:
                data = conn.recv(_CHUNK)
                if not data:
                    break
                channel.sendall(data)
            if channel in readable:
                data = channel.recv(_CHUNK)
                if not data:
                    break
                conn.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        try:
            channel.close()
        except (OSError, EOFError):
            pass  # the transport is already gone, and the channel with it
        conn.close()


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def open_tunnel(spec: TunnelSpec) -> Tunnel:
    """Connect to the bastion (verifying its host key) and start forwarding."""
    return Tunnel(spec).start()


def is_connection_lost(err: BaseException) -> bool:
    """Whether `err` (or what it wraps) is the database connection breaking, not a failing statement."""
    import pymysql

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, pymysql.err.OperationalError) and current.args and current.args[0] in CONNECTION_LOST_CODES:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_with_reconnect(tunnel: Tunnel, step: Callable[[], T], *, what: str = "the database step") -> T:
    """Run `step` (which opens its own connection); if the connection was lost, reopen and retry once.

    Only idempotent steps belong here: schema, grants and trigger installs check before they act.
    """
    try:
        return step()
    except Exception as err:
        if not is_connection_lost(err):
            raise
        log.info("connection lost during %s; reopening the tunnel and retrying once", what)
    tunnel.ensure_open()
    return step()
