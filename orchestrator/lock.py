"""One mutating command (`up`, `down`, `verify`, `backfill`) at a time per config folder.

An advisory `flock` on `.rds-streams.lock` next to the config file: the kernel drops it when its
holder exits however it exits (`kill -9` too), so a lock left by a killed command is simply taken
over. The file names its holder (pid, command, since when) for the one who finds it taken. It lives
beside `.rds-streams/`, not in it, because `down` removes that folder while holding the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import OperationFailed

LOCK_FILE = ".rds-streams.lock"


def lock_path(config: Config) -> Path:
    return config.source.parent.resolve() / LOCK_FILE


@contextmanager
def command_lock(config: Config, command: str) -> Iterator[None]:
    """Hold the folder's lock for `command`, or fail at once (exit 1) naming who holds it."""
    path = lock_path(config)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OperationFailed(
                f"another rds-streams command is running on {config.source.parent.resolve()}: {_holder(path)}",
                hint="wait for it to finish (or stop it), then run this again") from None
        holder = {"pid": os.getpid(), "command": command,
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says; read again for a moment while a new holder is writing it
    (the file may still be empty, or name the killed process it took the lock over from)."""
    from orchestrator.sandbox.processes import pid_alive

    deadline = time.monotonic() + 2.0
    while True:
        try:
            holder = json.loads(path.read_text())
            if pid_alive(int(holder["pid"])):
                return f"`rds-streams {holder['command']}` (pid {holder['pid']}, since {holder['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if time.monotonic() > deadline:
            return "a command that is just starting or stopping"
        time.sleep(0.02)
