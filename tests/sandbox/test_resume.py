"""up is idempotent and resumes: after a crash at any step, and when sandbox processes died or their
ports were taken by something else."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from orchestrator import up_steps
from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import pid_alive
from tests.sandbox.conftest import local_config, wait_for

STEPS = [up_steps.DeployStacks, up_steps.BindSandbox, up_steps.OpenTunnel, up_steps.ApplyMigrations,
         up_steps.EnsureGrants, up_steps.InstallOutbox, up_steps.InstallTriggers, up_steps.SmokeTest]


@pytest.fixture(scope="module")
def sandbox_config(tmp_path_factory):
    from orchestrator.cli import main

    config_path = local_config(tmp_path_factory.mktemp("resume"))
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def verified(cli, config_path) -> bool:
    code, out = cli("verify", "--config", str(config_path), "--timeout", "10")
    return code == 0 and all(o["ok"] for o in out if o["type"] == "check")


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_up_after_a_crash_at_any_step_finishes_the_job(sandbox_config, cli, monkeypatch, step):
    with monkeypatch.context() as patch:
        def crash(self, ctx):
            raise KeyboardInterrupt  # the process dies here, as with Ctrl-C or a kill

        patch.setattr(step, "run", crash)
        patch.setattr(step, "is_done", lambda self, ctx: False)
        code, _ = cli("up", "--config", str(sandbox_config), "--yes")
        assert code == 130
    code, out = cli("up", "--config", str(sandbox_config), "--yes")
    assert code == 0, out
    assert verified(cli, sandbox_config)


def test_dead_services_are_restarted_and_taken_ports_replaced(sandbox_config, cli):
    assert cli("up", "--config", str(sandbox_config), "--yes")[0] == 0
    sandbox = Sandbox(load_config(sandbox_config))
    before = sandbox.state()
    pids = sandbox.processes()
    for name in ("moto", "mariadb", "sshd", "runner"):
        os.kill(pids[name], signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids.values()), 10, "the killed processes to die")
    squatters = []
    for port in (before.moto_port, before.sshd_port):  # something else takes two of the ports
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        squatters.append(squatter)
    try:
        code, out = cli("up", "--config", str(sandbox_config), "--yes")
        assert code == 0, out
        after = sandbox.state()
        assert after.moto_port != before.moto_port and after.sshd_port != before.sshd_port
        assert not any(pid_alive(pid) for pid in pids.values())
        assert all(sandbox.processes().values())
        assert verified(cli, sandbox_config)
    finally:
        for squatter in squatters:
            squatter.close()


def test_an_edited_migration_fails_up_until_restored_or_accepted(sandbox_config, cli):
    assert cli("up", "--config", str(sandbox_config), "--yes")[0] == 0
    migration = sandbox_config.parent / "sql" / "migrations" / "V1__routes.sql"
    original = migration.read_text()
    migration.write_text("-- reviewed in 2026\n" + original)
    try:
        code, out = cli("up", "--config", str(sandbox_config), "--yes")
        (error,) = [o for o in out if o["type"] == "error"] or [{"message": str(out)}]
        assert code == 1 and "V1__routes.sql was edited after it ran" in error["message"]
        assert cli("up", "--config", str(sandbox_config), "--yes", "--accept-edited-migrations")[0] == 0
        assert cli("up", "--config", str(sandbox_config), "--yes")[0] == 0
    finally:
        migration.write_text(original)
        # leave the module's sandbox with the shipped migration recorded, as the other tests expect
        assert cli("up", "--config", str(sandbox_config), "--yes", "--accept-edited-migrations")[0] == 0


def test_plan_lists_the_database_objects_up_would_change_and_applies_nothing(sandbox_config, cli):
    from tests.sandbox.conftest import local_config

    assert cli("up", "--config", str(sandbox_config), "--yes")[0] == 0
    code, out = cli("plan", "--config", str(sandbox_config))
    (database,) = [o for o in out if o["type"] == "database_plan"]
    assert code == 0 and database["reachable"] and {m["state"] for m in database["migrations"]} == {"applied"}
    assert all(c["action"] == "unchanged" for t in database["triggers"] for c in t["changes"])

    local_config(sandbox_config.parent, {"stream": {"view_type": "KEYS_ONLY"}})
    try:
        code, out = cli("plan", "--config", str(sandbox_config))
        (database,) = [o for o in out if o["type"] == "database_plan"]
        routes = next(t for t in database["triggers"] if t["table"] == "routes")
        assert [c["action"] for c in routes["changes"]] == ["replace"] * 3
        assert "carrierCode" in routes["columns"]
        code, out = cli("verify", "--config", str(sandbox_config), "--timeout", "10")
        assert code == 1, "plan applied nothing: the installed triggers now differ from the config"
    finally:
        local_config(sandbox_config.parent)
