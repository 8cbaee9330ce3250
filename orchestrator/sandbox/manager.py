"""Start, reuse and stop the sandbox's processes under .rds-streams/: moto (with our models), MariaDB
(Aurora's data plane), sshd (the bastion) and the Lambda runner.

The folder is private to its user (0700): it holds moto's credentials, MariaDB's root socket and the
bastion's host key. Every process started is recorded in the ledger before anything waits on it, so
`down` and the next `up` stop whatever a killed `up` left running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.moto_server import CREDENTIALS_FILE
from orchestrator.sandbox.processes import (
    ProcessLedger,
    free_port,
    parent_pid,
    pid_alive,
    port_open,
    processes_naming,
    read_pid,
    stop_all,
    stop_pid,
    wait_until,
)
from orchestrator.sandbox.sshd import SshServer
from orchestrator.sandbox.state import SandboxState
from orchestrator.ui import UI

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ".rds-streams"
NOT_UP_HINT = "run `rds-streams up` first"


def sandbox_root(config: Config) -> Path:
    return config.source.parent.resolve() / STATE_DIR


class Sandbox:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = sandbox_root(config)
        self.ledger = ProcessLedger(self.root)

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
        return MariaDBServer(state.mariadb_dir, state.mariadb_port, root_socket_only=True, on_spawn=self.ledger.record)

    def sshd(self, state: SandboxState, authorized_keys: list[str] | None = None) -> SshServer:
        return SshServer(state.sshd_dir, state.sshd_port, authorized_keys or [], on_spawn=self.ledger.record)

    def is_up(self) -> bool:
        """moto answers: the stacks (and so everything else) can be read. Starts nothing."""
        state = self.state()
        return bool(state and read_pid(self.root / "moto.pid") and port_open(state.moto_port)
                    and (self.root / CREDENTIALS_FILE).is_file())

    def require_up(self) -> SandboxState:
        """For read-only commands: the running sandbox's state, or an error saying to run `up`."""
        state = self.state()
        if state is None or not self.is_up():
            raise OperationFailed(f"the local sandbox is not running (nothing up under {self.root})",
                                  hint=NOT_UP_HINT)
        return state

    # --- start ---------------------------------------------------------------------------------------
    def start(self, ui: UI) -> SandboxState:
        """Start what is not running, reuse what is; a port taken by something else gets a new one."""
        existed = SandboxState.exists(self.root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # holds credentials, the root socket and host key: its user's alone
        state = self._state_or_new()
        state.save()  # ports known before anything starts, so a killed `up` leaves nothing unnamed
        self._stop_strays(state)
        moto_pid = self.root / "moto.pid"
        if not (read_pid(moto_pid) and port_open(state.moto_port) and (self.root / CREDENTIALS_FILE).is_file()):
            if existed and (self.root / CREDENTIALS_FILE).exists():
                note = "moto had stopped and lost its state (stacks, logs); the stacks are created again"
                ui.emit("sandbox_note", message=note)
                ui.say("  sandbox: {note}", note=note)
            self.stop_runner()  # it holds the old credentials
            if read_pid(moto_pid):
                stop_pid(read_pid(moto_pid) or 0)
            (self.root / CREDENTIALS_FILE).unlink(missing_ok=True)
            state.moto_port = _usable_port(state.moto_port)
            state.save()
            self._spawn("moto", [sys.executable, "-m", "orchestrator.sandbox.moto_server", "--sandbox", str(self.root),
                                 "-H", "127.0.0.1", "-p", str(state.moto_port)],
                        ready=lambda: port_open(state.moto_port) and (self.root / CREDENTIALS_FILE).is_file())
            ui.say("  sandbox: moto (AWS control plane) on 127.0.0.1:{port}", port=state.moto_port)
        mariadb = self.mariadb(state)
        if not (mariadb.running_pid() and port_open(state.mariadb_port)):
            state.mariadb_port = _usable_port(state.mariadb_port)
            state.save()
            self.mariadb(state).start()
            ui.say("  sandbox: MariaDB (Aurora's data plane) on 127.0.0.1:{port}", port=state.mariadb_port)
        sshd = self.sshd(state)
        if not (sshd.running_pid() and port_open(state.sshd_port)):
            keys = sshd.authorized_keys_path.read_text().splitlines() if sshd.authorized_keys_path.exists() else []
            state.sshd_port = _usable_port(state.sshd_port)
            state.save()
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
        self.ledger.record(name, process.pid)
        (self.root / f"{name}.pid").write_text(f"{process.pid}\n")
        wait_until(ready, timeout=60, what=f"the sandbox's {name}", alive=lambda: process.poll() is None,
                   log=self.root / f"{name}.log")

    def _current(self, state: SandboxState) -> set[int]:
        return {pid for pid in self.processes(state).values() if pid}

    def _stop_strays(self, state: SandboxState) -> None:
        """Processes a killed `up` started that are not the ones in use (a second moto, say)."""
        current = self._current(state)
        # A running service's children (the runner's Lambda workers) are not strays.
        strays = [pid for pid in {*self.ledger.alive(), *processes_naming(self.root)}
                  if pid not in current and parent_pid(pid) not in current]
        stop_all(strays)

    # --- stop ----------------------------------------------------------------------------------------
    def processes(self, state: SandboxState | None = None) -> dict[str, int | None]:
        """Each service's pid if it runs, else None. Reads pid files only: starts nothing."""
        state = state or self.state()
        if state is None:
            return {}
        return {"moto": read_pid(self.root / "moto.pid"), "mariadb": self.mariadb(state).running_pid(),
                "sshd": self.sshd(state).running_pid(), "runner": self.runner_pid()}

    def stop(self) -> list[str]:
        """Stop every process the sandbox started, remove .rds-streams/; returns what was stopped.

        By the ledger and by a look for processes naming the folder, so a killed `up`'s strays go too;
        whatever of ours survives SIGTERM gets SIGKILL, so a process of ours never makes this fail."""
        if not self.root.exists():
            return []
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
        strays = {**self.ledger.alive(), **{pid: "process" for pid in processes_naming(self.root)}}
        if strays:
            stop_all(list(strays))
            stopped += [f"stray {name} (pid {pid})" for pid, name in strays.items()]
        left = [pid for pid in strays if pid_alive(pid)]
        if left:
            raise OperationFailed(f"sandbox processes {left} survived SIGKILL", hint=f"see the logs under {self.root}")
        shutil.rmtree(self.root)
        return stopped


def _usable_port(port: int) -> int:
    """`port` if nothing listens there (ours died), else a fresh one (a stranger took it)."""
    return free_port() if port_open(port) else port
