"""The whole local sandbox (moto, MariaDB, sshd, runner) under a temp dir, driven through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.sandbox.processes import free_port
from tests.factories import write_config


def local_config(directory: Path, overrides: dict | None = None) -> Path:
    base = {"project": {"target": "local"}, "bastion": {"local_port": free_port()}}
    for key, value in (overrides or {}).items():
        base[key] = {**base.get(key, {}), **value}
    return write_config(directory, base)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, list[dict[str, Any]]]]:
    """Run the CLI in-process with --output json; the exit code and the JSON objects printed."""

    def run(*args: str) -> tuple[int, list[dict[str, Any]]]:
        capsys.readouterr()
        code = main([*args, "--output", "json"])
        out = capsys.readouterr().out
        return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return run
