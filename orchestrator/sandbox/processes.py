"""Small helpers for the sandbox's long-running processes: binaries, free ports, readiness, stopping."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import OperationFailed

SYSTEM_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def find_binary(name: str, package: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in SYSTEM_DIRS if (Path(d) / name).is_file()), None
    )
    if not found:
        raise OperationFailed(
            f"{name} is not installed; the local sandbox needs it",
            hint=f"install it with: sudo apt-get install -y {package}  (or run `make demo`, which does)",
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], bool] = lambda: True,
               log: Path | None = None) -> None:
    """Poll `ready` with a short backoff until it holds; fail with the log's tail if it never does."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise OperationFailed(f"{what} did not become ready within {timeout:.0f} s{tail}")


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent (in containers PID 1 may be slow to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: a sandbox process never outlives `down`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            waited = 0
        if waited == pid or not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
