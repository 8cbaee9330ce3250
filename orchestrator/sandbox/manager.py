"""Start, reuse and stop the sandbox's processes under .rds-streams/: moto (with our models), MariaDB
(Aurora's data plane), sshd (the bastion) and the Lambda runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port, port_open, read_pid, stop_pid, wait_until
from orchestrator.sandbox.sshd import SshServer
from orchestrator.sandbox.state import SandboxState
from orchestrator.ui import UI

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ".rds-streams"


def sandbox_root(config: Config) -> Path:
    return config.source.parent / STATE_DIR


class Sandbox:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = sandbox_root(config)

    # --- state ---------------------------------------------------------------------------------------
    def state(self) -> SandboxState | None:
        return SandboxState.load(self.root) if SandboxState.exists(self.root) else None

    def _state_or_new(self) -> SandboxState:
        state = self.state()
        if state is None:
            state = SandboxState(root=self.root, region=self.config.project.region,
                                 consumer_stack=self.config.stack_name("consumer"),
                                 moto_port=free_port(), mariadb_port=free_port(), sshd_port=free_port())
        return state

    def mariadb(self, state: SandboxState) -> MariaDBServer:
        return MariaDBServer(state.mariadb_dir, state.mariadb_port)

    def sshd(self, state: SandboxState, authorized_keys: list[str] | None = None) -> SshServer:
        return SshServer(state.sshd_dir, state.sshd_port, authorized_keys or [])

    # --- start ---------------------------------------------------------------------------------------
    def start(self, ui: UI) -> SandboxState:
        """Start what is not running, reuse what is; a port taken by something else gets a new one."""
        state = self._state_or_new()
        self.root.mkdir(parents=True, exist_ok=True)
        moto_pid = self.root / "moto.pid"
        if not (read_pid(moto_pid) and port_open(state.moto_port)):
            state.moto_port = _usable_port(state.moto_port)
            self._spawn("moto", [sys.executable, "-m", "orchestrator.sandbox.moto_server", "-H", "127.0.0.1",
                                 "-p", str(state.moto_port)], ready=lambda: port_open(state.moto_port))
            ui.say("  sandbox: moto (AWS control plane) on 127.0.0.1:{port}", port=state.moto_port)
        mariadb = self.mariadb(state)
        if not (mariadb.running_pid() and port_open(state.mariadb_port)):
            state.mariadb_port = _usable_port(state.mariadb_port)
            self.mariadb(state).start()
            ui.say("  sandbox: MariaDB (Aurora's data plane) on 127.0.0.1:{port}", port=state.mariadb_port)
        sshd = self.sshd(state)
        if not (sshd.running_pid() and port_open(state.sshd_port)):
            keys = sshd.authorized_keys_path.read_text().splitlines() if sshd.authorized_keys_path.exists() else []
            state.sshd_port = _usable_port(state.sshd_port)
            self.sshd(state, keys).start()
            ui.say("  sandbox: sshd (the bastion) on 127.0.0.1:{port}", port=state.sshd_port)
        state.save()
        return state

    def restart_runner(self, state: SandboxState) -> None:
        """The runner reads the deployed code when it starts, so it restarts after every deploy."""
        self.stop_runner()
        self._spawn("runner", [sys.executable, "-m", "orchestrator.sandbox.runner", str(self.root)],
                    ready=lambda: True)

    def runner_pid(self) -> int | None:
        return read_pid(self.root / "runner.pid")

    def stop_runner(self) -> None:
        pid = self.runner_pid()
        if pid:
            stop_pid(pid)

    def _spawn(self, name: str, command: list[str], ready: Callable[[], bool]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
                                   start_new_session=True)
        log.close()
        (self.root / f"{name}.pid").write_text(f"{process.pid}\n")
        wait_until(ready, timeout=60, what=f"the sandbox's {name}", alive=lambda: process.poll() is None,
                   log=self.root / f"{name}.log")

    # --- stop ----------------------------------------------------------------------------------------
    def processes(self) -> dict[str, int | None]:
        state = self.state()
        if state is None:
            return {}
        return {"moto": read_pid(self.root / "moto.pid"), "mariadb": self.mariadb(state).running_pid(),
                "sshd": self.sshd(state).running_pid(), "runner": self.runner_pid()}

    def stop(self) -> list[str]:
        """Stop every process the sandbox started (by pid), remove .rds-streams/; returns what was stopped."""
        state = self.state()
        stopped = []
        if state is not None:
            if self.runner_pid():
                self.stop_runner()
                stopped.append("runner")
            for name, server in (("sshd", self.sshd(state)), ("mariadb", self.mariadb(state))):
                if server.running_pid():
                    server.stop()
                    stopped.append(name)
            moto = read_pid(self.root / "moto.pid")
            if moto:
                stop_pid(moto)
                stopped.append("moto")
            busy = [p for p in (state.moto_port, state.mariadb_port, state.sshd_port) if port_open(p)]
            if busy:
                raise OperationFailed(f"sandbox ports still listening after stop: {busy}",
                                      hint=f"see the logs under {self.root}")
        if self.root.exists():
            shutil.rmtree(self.root)
        return stopped


def _usable_port(port: int) -> int:
    """`port` if nothing listens there (ours died), else a fresh one (a stranger took it)."""
    return free_port() if port_open(port) else port
