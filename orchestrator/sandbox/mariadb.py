"""A private MariaDB server standing in for Aurora's data plane (see FACTS.md, MariaDB 10.11)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OperationFailed
from orchestrator.sandbox.processes import find_binary, port_open, read_pid, stop_pid, wait_until


@dataclass
class MariaDBServer:
    """One mariadbd under `base_dir`, listening on 127.0.0.1:`port` and a socket.

    root authenticates with a password-less login over both (--auth-root-authentication-method=normal);
    the sandbox creates the Aurora-like master user from its secret on top.
    """

    base_dir: Path
    port: int

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
        wait_until(lambda: self.socket.exists() and port_open(self.port), timeout=timeout,
                   what=f"MariaDB on port {self.port}", alive=lambda: process.poll() is None, log=self.log_file)

    def _install(self) -> None:
        root = ["--user=root"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [find_binary("mariadb-install-db", "mariadb-server"), "--no-defaults", f"--datadir={self.datadir}",
             f"--tmpdir={self.tmpdir}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *root],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise OperationFailed(f"mariadb-install-db failed in {self.datadir}:\n{result.stderr[-2000:]}")

    def stop(self) -> None:
        pid = self.running_pid()
        if pid:
            stop_pid(pid, timeout=30.0)
