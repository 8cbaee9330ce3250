"""The product's main job on one machine: up, verify, a separate client's writes through the tunnel
arriving in logs, down, and nothing left behind."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time

from rich.console import Console

from orchestrator.cancel import CancelToken
from orchestrator.config import load_config
from orchestrator.hold_tunnel import hold_tunnel
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import find_binary, pid_alive, port_open
from orchestrator.ui import UI, OutputFormat


def checks(objects):
    return {o["name"]: o for o in objects if o["type"] == "check"}


def test_up_verify_tunnel_logs_down(local_sandbox, cli):
    config_path = local_sandbox
    tmp_path = config_path.parent
    config = str(config_path)

    code, out = cli("up", "--config", config, "--yes")
    assert code == 0, out
    assert [o["status"] for o in out if o["type"] == "step"][-1] == "ran"
    code, out = cli("up", "--config", config, "--yes")
    assert code == 0
    outcomes = {o["name"]: o["status"] for o in out if o["type"] == "step" and o["status"] != "running"}
    assert outcomes["migrations"] == outcomes["grants"] == outcomes["triggers"] == "already done"
    assert not [o for o in out if o["type"] == "stack_event"], "a second up deploys nothing"

    code, out = cli("verify", "--config", config, "--tables")
    assert code == 0, out
    assert all(c["ok"] for c in checks(out).values())
    assert {"lambda_async probe", "round trip on the canary", "round trip on flights.routes"} <= set(checks(out))

    # A separate MySQL client writes through `rds-streams tunnel`.
    cfg = load_config(config_path)
    cancel, ready, printed = CancelToken(), [], io.StringIO()
    ui = UI(console=Console(file=printed), output=OutputFormat.JSON)
    holder = threading.Thread(target=hold_tunnel, args=(cfg, ui, cancel), kwargs={"show_password": True,
                                                                                 "ready": ready})
    holder.start()
    try:
        for _ in range(200):
            if ready:
                break
            time.sleep(0.05)
        assert ready == [cfg.bastion.local_port]
        info = next(json.loads(line) for line in printed.getvalue().splitlines() if '"tunnel"' in line)
        sql = ("INSERT INTO routes (airportFrom, airportTo, operator, `group`, carrierCode) "
               "VALUES ('WAW', 'e2e-LHR', 'LOT', 'star', 'LO')")
        subprocess.run([find_binary("mariadb", "mariadb-client"), "-h", "127.0.0.1", "-P", str(ready[0]),
                        "-u", info["user"], f"-p{info['password']}", "--skip-ssl", cfg.database.name, "-e", sql],
                       check=True, capture_output=True, timeout=30)
    finally:
        cancel.cancel()
        holder.join(timeout=10)
    assert not port_open(cfg.bastion.local_port), "the tunnel closes with Ctrl-C"

    for _ in range(100):
        code, out = cli("logs", "--config", config, "--since", "10m")
        inserted = [o for o in out if o["type"] == "record" and o["event"] == "INSERT"
                    and o["record"]["dynamodb"]["Keys"]["airportTo"] == {"S": "e2e-LHR"}]
        if inserted:
            break
        time.sleep(0.1)
    assert inserted and inserted[0]["table"] == "flights.routes"
    assert inserted[0]["record"]["dynamodb"]["Keys"]["airportFrom"] == {"S": "WAW"}

    sandbox = Sandbox(cfg)
    pids = [pid for pid in sandbox.processes().values() if pid]
    state = sandbox.state()
    assert len(pids) == 4
    code, out = cli("down", "--config", config, "--yes")
    assert code == 0
    assert not any(pid_alive(pid) for pid in pids), "every sandbox process is stopped"
    assert not any(port_open(p) for p in (state.moto_port, state.mariadb_port, state.sshd_port))
    assert not (tmp_path / ".rds-streams").exists()
    assert cli("down", "--config", config, "--yes")[0] == 0, "down is idempotent"
