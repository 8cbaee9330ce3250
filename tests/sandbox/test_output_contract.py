"""What every command prints, on the real sandbox with a writer running throughout: data that looks like
markup (`:secret:`, `[/]`, `[bold]`, `[[x]]`) printed literally on a terminal and through a pipe (no
boxes there), and --output json lines in their documented shapes (README, "Machine-readable output"),
each `record` being exactly what the consumer logged."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator.cancel import CancelToken
from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.database.probe import filter_events
from orchestrator.hold_tunnel import hold_tunnel
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import free_port
from orchestrator.ui import UI

MARKUP = (":secret:", "[/]", "[bold]", "[[x]]")
BOX = re.compile("[─│┌┐└┘├┤┬┴┼╭╮╰╯━┃┏┓┗┛═║]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# A table whose column names look like markup: plan lists them when its triggers change.
ODD_TABLE = """
CREATE TABLE IF NOT EXISTS `odd` (
    `id` int NOT NULL PRIMARY KEY,
    `[/]` varchar(20),
    `[[x]]` varchar(20),
    `:secret:` varchar(20)
);
"""

NUMBER = (int, float)
OPT_STR = (str, type(None))
# The documented shape of each object type: required keys and their JSON types.
SHAPES: dict[str, dict[str, Any]] = {
    "result": {"ok": bool, "exit_code": int, "summary": str},
    "error": {"message": str, "hint": OPT_STR, "exit_code": int},
    "written": {"path": str},
    "template": {"stack": str, "stack_name": str, "path": str, "resources": int},
    "step": {"name": str, "status": str},
    "stack_event": {"stack": str, "logical_id": str, "resource_type": str, "status": str, "reason": str,
                    "timestamp": "time"},
    "stack_unchanged": {"stack": str},
    "stack_plan": {"stack": str, "action": str, "changes": list},
    "risky_changes": {"changes": list},
    "schema_changed": {"details": str},
    "database_plan": {"reachable": bool},
    "down": {"deleted": list, "removed": list, "kept": list},
    "sandbox_stopped": {"processes": list, "removed": str},
    "status": {"target": str, "region": str, "stacks": dict},
    "check": {"name": str, "outcome": str, "ok": bool, "detail": str, "latency_ms": (dict, type(None))},
    "record": {"time": "time", "request_id": str, "log_stream": str, "event": str, "table": str, "record": dict},
    "log": {"time": "time", "request_id": OPT_STR, "log_stream": str, "message": str},
    "tunnel": {"host": str, "port": int, "database": str, "user": str, "role": str, "secret_arn": str,
               "password_command": str},
    "note": {"message": str},
    "cluster_changes": {"cluster": str, "changes": list, "reboot": OPT_STR},
    "detached": {"cluster": str, "removed": list},
}


def assert_shape(obj: dict[str, Any]) -> None:
    assert obj.get("type") in SHAPES, f"undocumented object type: {obj}"
    for key, kind in SHAPES[obj["type"]].items():
        assert key in obj, f"{obj['type']} lacks {key}: {obj}"
        if kind == "time":
            assert isinstance(obj[key], str) and ISO_UTC.match(obj[key]), f"{key} is not ISO 8601 UTC: {obj[key]}"
        else:
            assert isinstance(obj[key], kind), f"{obj['type']}.{key} is {type(obj[key]).__name__}: {obj}"
    if obj["type"] == "check":
        assert obj["outcome"] in ("pass", "fail", "note")
        assert obj["ok"] == (obj["outcome"] != "fail")
        assert all(isinstance(v, NUMBER) and not isinstance(v, bool) for v in (obj["latency_ms"] or {}).values())
    if obj["type"] == "record":
        assert obj["event"] in ("INSERT", "MODIFY", "REMOVE") and obj["record"]["eventName"] == obj["event"]


class Writer(threading.Thread):
    """A user's application writing rows with markup-looking values the whole time; none may fail."""

    def __init__(self, config_path: Path) -> None:
        super().__init__(daemon=True)
        self.config_path, self.stop, self.errors, self.written = config_path, threading.Event(), [], 0

    def run(self) -> None:
        config = load_config(self.config_path)
        while not self.stop.is_set():
            try:
                state = Sandbox(config).state()
                conn = state.root_connection() if state else None
            except Exception:  # noqa: BLE001 - the sandbox is not up yet (or its state file is being written)
                conn = None
            if conn is None:
                self.stop.wait(0.2)
                continue
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SHOW TRIGGERS FROM `flights` LIKE 'routes'")
                    if not cursor.fetchall():
                        self.stop.wait(0.2)
                        continue
                    cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, "
                                   "`carrierCode`, `connectingAirport`) VALUES ('WRT', %s, ':secret:', '[[x]]', "
                                   "'[bold]', '[/]')", (f"w{self.written}",))
                self.written += 1
            except Exception as err:  # noqa: BLE001 - any failed write is the finding
                if not self.stop.is_set() and "Unknown database" not in str(err):
                    self.errors.append(repr(err))
            finally:
                conn.close()
            self.stop.wait(0.1)


@pytest.fixture
def project(tmp_path: Path) -> Any:
    """`init` in an empty folder, plus the odd table; stopped whatever happens."""
    assert main(["init", str(tmp_path), "--table", "routes", "--table", "odd"]) == 0
    config_path = tmp_path / "config.toml"
    text = config_path.read_text().replace("local_port = 33306", f"local_port = {free_port()}")
    config_path.write_text(text)
    migration = load_config(config_path).migrations_path / "V1__routes.sql"
    migration.write_text(migration.read_text() + ODD_TABLE)
    yield config_path
    Sandbox(load_config(config_path)).stop()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def tunnel_text(config_path: Path, terminal: bool) -> str:
    cancel, ready, out = CancelToken(), [], io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=160)
    holder = threading.Thread(target=hold_tunnel, args=(load_config(config_path), UI(console=console), cancel),
                              kwargs={"show_password": False, "ready": ready})
    holder.start()
    for _ in range(200):
        if ready or not holder.is_alive():
            break
        time.sleep(0.05)
    cancel.cancel()
    holder.join(timeout=10)
    return out.getvalue()


def assert_password_command_works(tunnel_output: str, config_path: Path) -> None:
    """The command `tunnel` prints for the password gives the app user's password, run as printed."""
    command = next(line for line in tunnel_output.splitlines() if line.startswith("  password  "))[12:]
    args = shlex.split(command.split(" | ")[0])
    env = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    secret_arn = args[args.index("--secret-id") + 1]
    expected = json.loads(Sandbox(load_config(config_path)).state().aws().client("secretsmanager")
                          .get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    if shutil.which("aws"):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        done = subprocess.run(["bash", "-c", command], env=clean, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
    else:  # no aws CLI here: what it would be given is enough for boto3 to read the same password
        import boto3

        client = boto3.client("secretsmanager", region_name=args[args.index("--region") + 1],
                              endpoint_url=args[args.index("--endpoint-url") + 1],
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        assert json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])["password"] == expected
    assert expected not in tunnel_output, "the password itself is not printed without --show-password"


def test_every_command_prints_markup_looking_data_literally_on_a_terminal_and_piped(project, capsys, monkeypatch):
    config = str(project)
    writer = Writer(project)
    writer.start()
    try:
        code, up_text = run(capsys, "up", "--config", config, "--yes")
        assert code == 0, up_text
        assert not BOX.search(up_text), "piped: no boxes"
        for _ in range(100):
            if writer.written >= 3:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the writer's rows reach the consumer's log
        outputs: dict[str, str] = {}
        for terminal in (False, True):
            mode = "terminal" if terminal else "piped"
            if terminal:
                monkeypatch.setenv("TTY_COMPATIBLE", "1")
                monkeypatch.setenv("COLUMNS", "400")
            for command in (["logs", "--since", "10m", "--table", "routes"], ["verify"], ["status"]):
                code, text = run(capsys, *command, "--config", config)
                assert code == 0, text
                outputs[f"{mode} {command[0]}"] = ANSI.sub("", text)
            outputs[f"{mode} tunnel"] = ANSI.sub("", tunnel_text(project, terminal))
        assert_password_command_works(outputs["piped tunnel"], project)
        # A column added behind our back: plan shows the triggers to replace, with the table's columns.
        conn = Sandbox(load_config(project)).state().root_connection()
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE `flights`.`odd` ADD COLUMN `[bold]` int")
        conn.close()
        for terminal in (False, True):
            monkeypatch.setenv("TTY_COMPATIBLE", "1" if terminal else "0")
            code, text = run(capsys, "plan", "--config", config)
            assert code == 0, text
            outputs[f"{'terminal' if terminal else 'piped'} plan"] = ANSI.sub("", text)
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
        code, outputs["piped down"] = run(capsys, "down", "--config", config, "--yes")
        assert code == 0, outputs["piped down"]
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert writer.errors == [], "a user's write failed"
    for name, text in outputs.items():
        assert "㊙" not in text, f"{name}: :secret: became an emoji"
        if name.startswith("piped"):
            assert not BOX.search(text), f"{name}: a box off a terminal:\n{text}"
    for mode in ("piped", "terminal"):
        for value in MARKUP:
            assert value in outputs[f"{mode} logs"], f"{mode} logs lost {value}:\n{outputs[f'{mode} logs']}"
        assert re.search(r"--secret-id arn:aws:secretsmanager:[^ ]+:secret:", outputs[f"{mode} tunnel"])
        plan = outputs[f"{mode} plan"]
        assert "columns id, [/], [[x]], :secret:, [bold]" in plan, plan


def test_every_json_line_has_its_documented_shape_and_records_are_the_ones_logged(project, capsys):
    config = str(project)
    writer = Writer(project)
    writer.start()
    lines: dict[str, list[dict[str, Any]]] = {}
    try:
        for command in (["synth", "--out", str(project.parent / "out")], ["plan"], ["up", "--yes"], ["plan"],
                        ["status"], ["verify"], ["logs", "--since", "10m", "--all"], ["logs", "--since", "10m"],
                        ["logs", "--since", "10m", "--event", "INSERT", "--table", "flights.routes"]):
            time.sleep(0.5 if command[0] == "logs" else 0)
            code, text = run(capsys, *command, "--config", config, "--output", "json")
            assert code == 0, text
            lines[" ".join(command)] = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        logs = Sandbox(load_config(project)).state().aws().client("logs")
        logged = {}
        for event in filter_events(logs, "/aws/lambda/rds-streams-consumer", None, 0):
            try:
                record = json.loads(event["message"])
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "eventID" in record:
                logged[record["eventID"]] = (record, event)
        code, text = run(capsys, "down", "--config", config, "--yes", "--output", "json")
        assert code == 0
        lines["down"] = [json.loads(line) for line in text.splitlines()]
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert writer.errors == [], "a user's write failed"
    code, text = run(capsys, "verify", "--config", str(project.parent / "missing.toml"), "--output", "json")
    lines["a missing config"] = [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    for command, objects in lines.items():
        assert objects, f"{command}: printed nothing"
        for obj in objects:
            assert_shape(obj)
        assert objects[-1]["type"] == "result", f"{command}: does not end with a result"
        assert [o["type"] for o in objects].count("result") == 1
    assert [o["type"] for o in lines["a missing config"]] == ["error", "result"] and code == 2
    assert lines["a missing config"][-1]["ok"] is False and lines["a missing config"][-1]["exit_code"] == 2
    assert {o["outcome"] for o in lines["verify"] if o["type"] == "check"} == {"pass", "note"}
    assert lines["up --yes"][-1]["next"][0].startswith("rds-streams verify"), "up ends with what to run next"

    everything = [o for o in lines["logs --since 10m --all"] if o["type"] == "record"]
    starts: dict[str, set[str]] = {}
    for o in lines["logs --since 10m --all"]:
        if o["type"] == "log" and o["message"].startswith("START "):
            starts.setdefault(o["log_stream"], set()).add(o["message"].split(" Version")[0])
    default = [o for o in lines["logs --since 10m"] if o["type"] == "record"]
    narrowed = [o for o in lines["logs --since 10m --event INSERT --table flights.routes"] if o["type"] == "record"]
    assert any(o["table"] == "rds_streams.canary" for o in everything), "--all shows the canary's records"
    assert default and not any(o["table"].startswith("rds_streams.") for o in default)
    assert not any(o["type"] == "log" and o["message"].startswith("START ") for o in lines["logs --since 10m"])
    assert any(o["type"] == "log" and o["message"].startswith("START ") for o in lines["logs --since 10m --all"])
    assert narrowed and {(o["event"], o["table"]) for o in narrowed} == {("INSERT", "flights.routes")}
    writes = [o for o in default if o["record"]["dynamodb"]["Keys"].get("airportFrom") == {"S": "WRT"}]
    assert len(writes) >= 3, "the writer's rows are among the records"
    for obj in everything:
        record, event = logged[obj["record"]["eventID"]]
        assert obj["record"] == record, "the record under `record` is exactly the one the consumer logged"
        assert obj["log_stream"] == event["logStreamName"]
        assert obj["time"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(event["timestamp"] / 1000)))
        assert f"START RequestId: {obj['request_id']}" in starts[obj["log_stream"]], "request id of its invocation"
    for obj in writes:
        assert obj["record"]["dynamodb"]["NewImage"]["operator"] == {"S": ":secret:"}
