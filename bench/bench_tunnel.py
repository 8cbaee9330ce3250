"""How fast is the SSH tunnel? Prints SSH connect+auth time and `SELECT 1` latency through it.

Starts its own private MariaDB and sshd under a temporary directory (both stopped at the end).
FACTS.md expects about 70 ms to connect and authenticate, and about 0.5 ms per `SELECT 1`.
Run: .venv/bin/python bench/bench_tunnel.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402

from orchestrator.database.connect import TlsMode, TlsPolicy, connect  # noqa: E402
from orchestrator.database.credentials import Credentials  # noqa: E402
from orchestrator.database.hostkeys import TrustedHostKeys, generate_ed25519_key  # noqa: E402
from orchestrator.database.tunnel import TunnelSpec, open_tunnel  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402
from orchestrator.sandbox.sshd import SshServer  # noqa: E402

TUNNEL_OPENS = 20
CONNECTS = 50
QUERIES = 3000
ROOT = Credentials("root", "")


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(values) * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms   (n={len(values)})"


def select_one_latency(host: str, port: int) -> list[float]:
    timings = []
    with connect(host, port, ROOT, tls=TlsPolicy(TlsMode.DISABLED)) as conn, conn.cursor() as cursor:
        for _ in range(QUERIES):
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            timings.append(time.perf_counter() - started)
    return timings


def connect_times(host: str, port: int, **options: object) -> list[float]:
    timings = []
    for _ in range(CONNECTS):
        started = time.perf_counter()
        pymysql.connect(host=host, port=port, user="root", **options).close()
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tunnel-") as scratch:
        base = Path(scratch)
        database = MariaDBServer(base / "mariadb", free_port())
        key, public_line = generate_ed25519_key()
        bastion = SshServer(base / "sshd", free_port(), [public_line])
        database.start()
        bastion.start()
        try:
            spec = TunnelSpec("127.0.0.1", bastion.port, bastion.login_user, key,
                              TrustedHostKeys.from_keys([bastion.host_public_key], source="bench sshd"),
                              "127.0.0.1", database.port)
            opens = []
            for _ in range(TUNNEL_OPENS):
                with open_tunnel(spec) as tunnel:
                    opens.append(tunnel.connect_seconds)
            with open_tunnel(spec) as tunnel:
                through = select_one_latency(tunnel.local_host, tunnel.local_port)
                explicit = connect_times(tunnel.local_host, tunnel.local_port, ssl_disabled=True)
                default = connect_times(tunnel.local_host, tunnel.local_port)
            direct = select_one_latency("127.0.0.1", database.port)
        finally:
            bastion.stop()
            database.stop()
    print("SSH tunnel on loopback (paramiko, ed25519, host key verified)")
    print(f"  SSH connect + host key check + auth   {ms(opens)}")
    print(f"  SELECT 1 through the tunnel           {ms(through)}")
    print(f"  SELECT 1 direct (no tunnel)           {ms(direct)}")
    print(f"  MySQL connect via tunnel, TLS off     {ms(explicit)}")
    print(f"  MySQL connect via tunnel, PyMySQL default (TLS preferred) {ms(default)}")


if __name__ == "__main__":
    main()
