"""The command line as people and scripts meet it, without any service running: help, usage errors,
init, config messages, and data printed literally."""

from __future__ import annotations

import io
import json
import re
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli import app, main
from orchestrator.config import load_config
from orchestrator.ui import UI, OutputFormat, Styled
from tests.factories import write_config

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
MARKUP_LOOKING = [":secret:", "[/]", "[bold]", "[[x]]", "[red]x[/red]", ":smile:", "\\"]
BOX = re.compile("[─│┌┐└┘├┤┬┴┼╭╮╰╯━┃┏┓┗┛═║]")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_dash_h_and_shows_flags_without_a_value_placeholder(command, capsys):
    assert main([command, "-h"]) == 0
    text = capsys.readouterr().out
    assert "-h, --help" in text
    assert "<bool>" not in text and "BOOLEAN" not in text
    assert not BOX.search(text), "help is plain text"
    if command in ("up", "down"):
        assert re.search(r"^\s+-y, --yes\s+Do not ask", text, re.MULTILINE)


def test_yes_is_a_flag_so_a_value_after_it_is_refused_as_bad_usage(capsys):
    assert main(["down", "--yes", "true"]) == 2


def test_shell_completion_is_offered(capsys):
    assert main(["-h"]) == 0
    text = capsys.readouterr().out
    assert "--install-completion" in text and "--show-completion" in text


def test_a_usage_error_in_json_mode_is_an_error_object_then_a_result(capsys):
    assert main(["up", "--no-such-flag", "--output", "json"]) == 2
    objects = json_lines(capsys.readouterr().out)
    assert [o["type"] for o in objects] == ["error", "result"]
    assert objects[0]["exit_code"] == 2 and "--no-such-flag" in objects[0]["message"]
    assert objects[1] == {"type": "result", "ok": False, "exit_code": 2, "summary": objects[0]["message"]}


def test_a_bad_config_in_json_mode_is_an_error_object_on_stdout_not_stderr(tmp_path, capsys):
    path = write_config(tmp_path, {"database": {"shema": "x.sql"}})
    assert main(["plan", "--config", str(path), "--output", "json"]) == 2
    captured = capsys.readouterr()
    objects = json_lines(captured.out)
    assert [o["type"] for o in objects] == ["error", "result"]
    assert "did you mean 'schema'?" in objects[0]["message"]
    assert objects[1]["ok"] is False and objects[1]["exit_code"] == 2
    assert captured.err == ""


def test_an_unknown_config_key_suggests_the_close_one(tmp_path):
    path = write_config(tmp_path, {"bastion": {"allowed_cdir": "10.1.2.3/32"}, "projet": {"name": "x"}})
    with pytest.raises(Exception) as err:
        load_config(path)
    assert "[bastion] allowed_cdir: unknown key; did you mean 'allowed_cidr'?" in str(err.value)
    assert "[projet]: unknown key; did you mean 'project'?" in str(err.value)


def test_init_off_a_terminal_writes_a_config_and_migration_that_load_as_they_are(tmp_path, capsys):
    target = tmp_path / "new"
    assert main(["init", str(target), "--output", "json"]) == 0
    objects = json_lines(capsys.readouterr().out)
    assert objects[-1]["type"] == "result" and objects[-1]["ok"] is True
    assert any(c.startswith("rds-streams up") for c in objects[-1]["next"])
    config = load_config(target / "config.toml")
    assert config.project.target == "local" and [t.name for t in config.stream.tables] == ["routes"]
    assert config.bastion.allowed_cidr == "127.0.0.1/32"
    migration = (config.migrations_path / "V1__routes.sql").read_text()
    assert "CREATE TABLE IF NOT EXISTS `routes`" in migration
    assert config.database.migrations == "sql/migrations"
    assert "#" in (target / "config.toml").read_text(), "the config is commented"


def test_init_takes_every_answer_as_a_flag(tmp_path):
    assert main(["init", str(tmp_path), "--target", "aws", "--region", "us-east-2", "--allowed-cidr",
                 "198.51.100.4/32", "--table", "routes", "--table", "orders"]) == 0
    raw = tomllib.loads((tmp_path / "config.toml").read_text())
    assert raw["project"] == {"name": "rds-streams", "target": "aws", "region": "us-east-2"}
    assert raw["bastion"]["allowed_cidr"] == "198.51.100.4/32"
    assert [t["name"] for t in raw["stream"]["tables"]] == ["routes", "orders"]


def test_init_refuses_aws_without_an_allowed_cidr_off_a_terminal_and_writes_nothing(tmp_path):
    assert main(["init", str(tmp_path), "--target", "aws"]) == 2
    assert not (tmp_path / "config.toml").exists()
    assert main(["init", str(tmp_path), "--target", "aws", "--allowed-cidr", "0.0.0.0/0"]) == 2
    assert not list(tmp_path.iterdir())


def test_init_never_overwrites_without_force(tmp_path):
    assert main(["init", str(tmp_path)]) == 0
    (tmp_path / "config.toml").write_text("# mine\n")
    assert main(["init", str(tmp_path)]) == 2
    assert (tmp_path / "config.toml").read_text() == "# mine\n"
    assert main(["init", str(tmp_path), "--force"]) == 0


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_data_that_looks_like_markup_is_printed_literally(terminal):
    out = io.StringIO()
    ui = UI(console=Console(file=out, force_terminal=terminal, width=60, color_system="standard" if terminal else None))
    for data in MARKUP_LOOKING:
        ui.say("[green]deleted[/] {name} [dim]({why})[/]", name=data, why=data)
        ui.text(data)
    ui.table(("check", "result"), [(data, Styled(data, "red")) for data in MARKUP_LOOKING], title="[x]")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    for data in MARKUP_LOOKING:
        assert f"deleted {data} ({data})" in plain
        assert data in plain.splitlines()
    assert "㊙" not in plain and "😄" not in plain
    assert "[x]" in plain
    if not terminal:
        assert not BOX.search(plain) and "\x1b" not in plain


def test_piped_lines_are_never_wrapped():
    out = io.StringIO()
    ui = UI(console=Console(file=out, width=40))
    long = "x" * 200
    ui.say("{v}", v=long)
    ui.table(("a", "b"), [(long, long)])
    assert long in out.getvalue().splitlines()[0]
    assert out.getvalue().splitlines()[-1] == f"{long}  {long}"


def test_json_lines_carry_iso_utc_times_and_numbers_as_numbers():
    from datetime import UTC, datetime
    from decimal import Decimal

    out = io.StringIO()
    UI(console=Console(file=out), output=OutputFormat.JSON).emit(
        "x", at=datetime(2026, 12, 2, 17, 0, tzinfo=UTC), n=Decimal("12.50"), k=Decimal("3"), absent=None)
    assert json.loads(out.getvalue()) == {"type": "x", "at": "2026-12-02T17:00:00.000Z", "n": 12.5, "k": 3,
                                         "absent": None}


def test_every_package_of_the_checkout_is_in_the_wheel():
    from setuptools import find_packages

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(find_packages(str(ROOT), include=["orchestrator*", "blueprints*"])) <= set(declared)
    assert "orchestrator.sql" in declared


def test_region_option_overrides_the_config_and_is_validated_like_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # restored afterwards: --region sets it for the process
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    path = write_config(tmp_path, {"project": {"target": "local"}})
    # a sandbox that is not up: status exits 1 ("run `rds-streams up` first"), and still reports its region
    assert main(["status", "--config", str(path), "--region", "us-west-2", "--output", "json"]) == 1
    status = next(o for o in json_lines(capsys.readouterr().out) if o["type"] == "status")
    assert status["region"] == "us-west-2"
    assert main(["status", "--config", str(path), "--region", "mars-1", "--output", "json"]) == 2
    assert "[project] region" in json_lines(capsys.readouterr().out)[0]["message"]


def test_profile_option_is_the_profile_boto3_uses_on_aws(tmp_path, capsys, monkeypatch):
    # Real AWS is never reached: boto3 refuses the unknown profile before any call.
    monkeypatch.setenv("AWS_PROFILE", "default")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    path = write_config(tmp_path, {"project": {"target": "aws"}})
    assert main(["status", "--config", str(path), "--profile", "rds-streams-no-such-profile", "--output", "json"]) == 1
    error = json_lines(capsys.readouterr().out)[0]
    assert error["type"] == "error" and "rds-streams-no-such-profile" in error["message"]


def test_our_templates_hold_only_style_tags_and_never_data():
    """Data reaches `say`/`confirm`/`ask` only as fields; a template is our literal text (an f-string there
    would let a value such as `[/]` or `:secret:` be read as markup)."""
    import ast

    styles = {"[/]", "[bold]", "[dim]", "[green]", "[red]", "[yellow]"}
    problems = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("say", "confirm", "ask") and node.args
                    and ast.unparse(node.func.value).split(".")[-1] == "ui"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            parts = [n for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant | ast.JoinedStr | ast.Name
                                                                         | ast.Call | ast.Attribute)]
            if any(not isinstance(n, ast.Constant) for n in parts):
                problems.append(f"{where}: the template is not a literal")
            for constant in (n for n in parts if isinstance(n, ast.Constant) and isinstance(n.value, str)):
                tags = set(re.findall(r"\[[^\]]*\]", constant.value)) - styles
                if tags:
                    problems.append(f"{where}: {sorted(tags)} would be read as markup")
    assert problems == []


def test_logs_warns_about_a_table_that_is_not_streamed_and_suggests_one(tmp_path):
    from orchestrator.logs_view import LogFilter, _warn_unknown_tables

    out = io.StringIO()
    _warn_unknown_tables(load_config(write_config(tmp_path)), LogFilter(tables=("rutes", "flights.routes")),
                         UI(console=Console(file=out)))
    assert out.getvalue() == "! --table rutes: not in [[stream.tables]]; did you mean 'routes'?\n"


def test_init_at_a_terminal_asks_target_region_cidr_and_tables(tmp_path):
    import os
    import pty
    import subprocess
    import sys
    import time

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "init", str(tmp_path)], stdin=follower,
                               stdout=follower, stderr=follower, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    os.close(follower)
    import select

    seen, answers = "", iter(["aws", "us-east-2", "198.51.100.7/32", "routes, orders"])
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if not select.select([leader], [], [], 0.2)[0]:
            continue
        try:
            seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", os.read(leader, 4096).decode(errors="replace"))
        except OSError:
            break
        if seen.endswith(": "):  # a question waits for its answer
            os.write(leader, (next(answers, "") + "\n").encode())
            seen += "\n"
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    os.close(leader)
    text = seen
    assert process.returncode == 0, text
    for question in ("Target", "AWS region", "Who may SSH", "Tables to stream"):
        assert question in text
    raw = tomllib.loads((tmp_path / "config.toml").read_text())
    assert (raw["project"]["target"], raw["project"]["region"]) == ("aws", "us-east-2")
    assert raw["bastion"]["allowed_cidr"] == "198.51.100.7/32"
    assert [t["name"] for t in raw["stream"]["tables"]] == ["routes", "orders"]
