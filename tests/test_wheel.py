"""Installed anywhere: the wheel, installed into a fresh venv outside the checkout, runs the whole
sandbox in an empty folder (init, up, verify, logs, down) with nothing from the checkout on its path.

Needs the package registry (pip installs the wheel's dependencies), as `make test` does anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed (with the sandbox extra) into a venv in a temp dir."""
    base = tmp_path_factory.mktemp("wheel")
    dist, venv = base / "dist", base / "venv"
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], base, dict(os.environ))
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("rds_streams-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The checkout's pip installs into the new venv (skipping ensurepip); dependencies from the registry
    # or pip's cache.
    pip = run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
               f"{wheel}[sandbox]"], base, dict(os.environ), timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def test_the_wheel_carries_our_sql_and_the_consumer(installed):
    venv, env = installed
    wheel = next((venv.parent / "dist").glob("rds_streams-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"orchestrator/sql/migrations/V1__routes.sql", "orchestrator/sql/bookkeeping.sql", "orchestrator/sql/canary.sql",
            "orchestrator/sql/outbox.sql", "orchestrator/sql/sandbox/lambda_queue.sql",
            "blueprints/consumer_handler.py"} <= names


def test_installed_wheel_runs_init_up_verify_logs_down_in_an_empty_folder(installed, tmp_path):
    venv, env = installed
    folder = tmp_path / "empty"
    folder.mkdir()
    where = run([str(venv / "bin" / "python"), "-c", "import orchestrator; print(orchestrator.__file__)"], folder, env)
    assert Path(where.stdout.strip()).is_relative_to(venv), "the installed package, not the checkout"
    cli = str(venv / "bin" / "rds-streams")
    try:
        for step in (["init"], ["up", "--yes"], ["verify", "--tables"]):  # --tables: records of routes to read
            done = run([cli, *step], folder, env)
            assert done.returncode == 0, f"{step}: {done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
        logs = run([cli, "logs", "--since", "10m", "--output", "json"], folder, env)
        assert logs.returncode == 0, logs.stderr
        objects = [json.loads(line) for line in logs.stdout.splitlines()]
        assert objects[-1]["type"] == "result" and objects[-1]["ok"] is True
        assert {o["record"]["eventName"] for o in objects if o["type"] == "record"} == {"INSERT", "MODIFY", "REMOVE"}
    finally:
        down = run([cli, "down", "--yes"], folder, env)
    assert down.returncode == 0, down.stderr
    # and the empty lock file the mutating commands take (flock), which holds nothing
    left = sorted(p.name for p in folder.iterdir() if p.name != ".rds-streams.lock")
    assert left == ["config.toml", "sql"], "down leaves only what init wrote"
