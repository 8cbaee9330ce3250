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
    """The pid in `pid_file` if that process still runs and is the one that wrote it: every process
    of ours names its pid file's folder in its arguments. PIDs wrap quickly (pid_max can be 32768), so
    a stale file's number may belong to a stranger now, who must not be reported, nor stopped."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    folders = {str(pid_file.parent), str(pid_file.parent.resolve())}
    arguments = _command_line(pid)[1:]
    if not arguments:
        return pid  # unreadable (another user's process under hidepid): trust the file as before
    return pid if any(_names_path(a, folder) for a in arguments for folder in folders) else None


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


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, names it even after pid reuse."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _command_line(pid: int) -> list[str]:
    try:
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:
        return []
    # sshd rewrites its title into one string ("sshd: /usr/sbin/sshd -D -f ... [listener] ...").
    return argv[0].split() if len(argv) == 1 else argv


OUR_PROGRAMS = ("python", "mariadbd", "mysqld", "sshd")


def processes_naming(root: Path) -> list[int]:
    """Live processes of this user started for the sandbox under `root`: each names a path under it
    (moto's --sandbox, MariaDB's --datadir, sshd's -f, the runner's state folder). Finds what a killed
    `up` started but had not recorded yet."""
    marker = str(root.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != os.geteuid():
                continue
        except OSError:
            continue
        argv = [a for a in _command_line(pid) if a]
        programs = [Path(a).name for a in argv[:2]]
        ours = any(p.startswith(OUR_PROGRAMS) or p == "mariadb-install-db" for p in programs)
        if ours and any(_names_path(a, marker) for a in argv[1:]) and pid_alive(pid):
            found.append(pid)
    return found


def _names_path(argument: str, path: str) -> bool:
    """`argument` is `path` or a path under it, alone or after an option's `=`."""
    at = argument.find(path)
    if at < 0 or (at > 0 and argument[at - 1] != "="):
        return False
    rest = argument[at + len(path):]
    return rest == "" or rest.startswith("/")


class ProcessLedger:
    """Every process the sandbox starts, appended (name, pid, start time) as soon as it exists, before
    anything waits on it: `down` and the next `up` stop what a killed `up` left running."""

    def __init__(self, root: Path) -> None:
        self.path = root / "processes"

    def record(self, name: str, pid: int) -> None:
        with self.path.open("a") as ledger:
            ledger.write(f"{name} {pid} {start_time(pid) or '-'}\n")
            ledger.flush()
            os.fsync(ledger.fileno())

    def alive(self) -> dict[int, str]:
        """pid -> name of the recorded processes still running (the same process, not a reused pid)."""
        found: dict[int, str] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return found
        for line in lines:
            parts = line.split()
            if len(parts) != 3 or not parts[1].isdigit():
                continue  # a line cut short by a kill
            pid = int(parts[1])
            if pid_alive(pid) and start_time(pid) in (parts[2], None):
                found[pid] = parts[0]
        return found


def stop_all(pids: list[int], *, timeout: float = 30.0) -> None:
    """SIGTERM to all at once, then SIGKILL whatever still runs after `timeout`."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        for pid in remaining:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        remaining = [pid for pid in remaining if pid_alive(pid)]
        if remaining:
            time.sleep(0.05)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5.0
    while any(pid_alive(pid) for pid in remaining) and time.monotonic() < deadline:
        time.sleep(0.05)
