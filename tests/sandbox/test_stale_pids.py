"""PIDs wrap fast (pid_max is 32768 on small machines): a stale pid file may name a stranger's process
now, which the sandbox must neither report as its own nor stop."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import pid_alive, read_pid
from tests.sandbox.conftest import local_config, wait_for


def test_down_leaves_alone_a_strangers_process_that_reuses_a_recorded_pid(tmp_path):
    stranger = subprocess.Popen(["sleep", "60"])
    # Until it has exec'd, the child's command line is ours (or empty, which read_pid trusts).
    wait_for(lambda: Path(f"/proc/{stranger.pid}/cmdline").read_bytes().startswith(b"sleep\0") or None, 5,
             "the stranger to be running sleep")
    try:
        root = tmp_path / ".rds-streams"
        for folder in (root, root / "mariadb", root / "sshd"):
            folder.mkdir(parents=True)
        (root / "state.json").write_text(json.dumps({"region": "eu-west-1", "consumer_stack": "x", "moto_port": 1,
                                                     "mariadb_port": 2, "sshd_port": 3}))
        for pid_file in ("moto.pid", "runner.pid", "mariadb/mysqld.pid", "sshd/sshd.pid"):
            (root / pid_file).write_text(f"{stranger.pid}\n")
        (root / "processes").write_text(f"moto {stranger.pid} 1\n")  # recorded at another start time
        sandbox = Sandbox(load_config(local_config(tmp_path)))

        assert read_pid(root / "moto.pid") is None
        assert set(sandbox.processes().values()) == {None}
        assert sandbox.stop() == []
        assert pid_alive(stranger.pid) and not root.exists()
    finally:
        stranger.kill()
        stranger.wait()
