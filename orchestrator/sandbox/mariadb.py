"""A private MariaDB server standing in for Aurora's data plane (see FACTS.md, MariaDB 10.11)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import OperationFailed
from orchestrator.resources import sql_text
from orchestrator.sandbox.processes import find_binary, port_open, read_pid, stop_pid, wait_until

ROOT_SOCKET_ONLY_SQL = "sandbox/root_socket_only.sql"


@dataclass
class MariaDBServer:
    """One mariadbd under `base_dir`, listening on 127.0.0.1:`port` and a socket.

    root authenticates with a password-less login over both (--auth-root-authentication-method=normal),
    unless `root_socket_only`: then root exists only at `localhost`, which with --skip-name-resolve is the
    socket alone, and the socket's folder is private. The sandbox sets it, so every TCP account has a
    password (the master user from its secret, the app user); throwaway test servers leave it off.
    `on_spawn(name, pid)` hears of every process started, before it is waited on.
    """

    base_dir: Path
    port: int
    root_socket_only: bool = False
    on_spawn: Callable[[str, int], None] | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket(self) -> Path:
        return self.base_dir / "mysqld.sock"

    @property
    def tmpdir(self) -> Path:
        """Private: in a shared /tmp another server's temp-table files can collide with ours (same name
        from the same pid in another PID namespace), and a user's write then fails."""
        return self.base_dir / "tmp"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mysqld.pid"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "mysqld.err"

    def running_pid(self) -> int | None:
        return read_pid(self.pid_file)

    def start(self, *, timeout: float = 30.0) -> None:
        if self.running_pid() and port_open(self.port):
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)
        if not (self.datadir / "mysql").is_dir():
            self._install()
        root = ["--user=root"] if os.geteuid() == 0 else []
        command = [
            find_binary("mariadbd", "mariadb-server"), "--no-defaults", *root,
            f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}", f"--socket={self.socket}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--pid-file={self.pid_file}", f"--log-error={self.log_file}",
            # --no-defaults gives latin1; Aurora MySQL 3 defaults to utf8mb4.
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            "--event-scheduler=ON", "--skip-name-resolve", "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=2", "--max-allowed-packet=64M",
        ]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self._spawned("mariadb", process.pid)
        wait_until(lambda: self.socket.exists() and port_open(self.port), timeout=timeout,
                   what=f"MariaDB on port {self.port}", alive=lambda: process.poll() is None, log=self.log_file)

    def _spawned(self, name: str, pid: int) -> None:
        if self.on_spawn is not None:
            self.on_spawn(name, pid)

    def _install(self) -> None:
        """Into a side folder renamed when complete: an install cut short is started over, never used."""
        installing = self.datadir.with_name(self.datadir.name + ".installing")
        shutil.rmtree(installing, ignore_errors=True)
        root = ["--user=root"] if os.geteuid() == 0 else []
        self._run("mariadb-install-db", [find_binary("mariadb-install-db", "mariadb-server"), "--no-defaults",
                                         f"--datadir={installing}", "--auth-root-authentication-method=normal",
                                         f"--tmpdir={self.tmpdir}", "--skip-test-db", *root])
        if self.root_socket_only:
            # In bootstrap mode the server takes SQL on stdin and opens no port: nothing can log in meanwhile.
            self._run("mariadb-bootstrap", [find_binary("mariadbd", "mariadb-server"), "--no-defaults", *root,
                                            f"--datadir={installing}", f"--tmpdir={self.tmpdir}", "--bootstrap",
                                            "--skip-networking"],
                      stdin=sql_text(ROOT_SOCKET_ONLY_SQL))
        installing.rename(self.datadir)

    def _run(self, name: str, command: list[str], stdin: str = "") -> None:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        self._spawned(name, process.pid)
        _out, err = process.communicate(stdin)
        if process.returncode != 0:
            raise OperationFailed(f"{name} failed in {self.base_dir}:\n{err[-2000:]}")

    def stop(self) -> None:
        pid = self.running_pid()
        if pid:
            stop_pid(pid, timeout=30.0)
