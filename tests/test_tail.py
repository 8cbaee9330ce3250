"""`consumer.sink` in the config and `tail`'s refusals, which need no sandbox: both exit 2 touching nothing."""

from __future__ import annotations

import json

from orchestrator.cli import main
from tests.factories import write_config


def result_and_error(out: str) -> tuple[dict, dict]:
    objects = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return objects[-1], next(o for o in objects if o["type"] == "error")


def test_an_unknown_sink_is_refused_naming_the_key(tmp_path, capsys):
    path = write_config(tmp_path, {"consumer": {"sink": "sns"}})
    assert main(["synth", "--config", str(path), "--output", "json"]) == 2
    _result, error = result_and_error(capsys.readouterr().out)
    assert "[consumer] sink" in error["message"] and "'sns'" in error["message"]


def test_tail_without_a_sink_points_to_logs(tmp_path, capsys):
    path = write_config(tmp_path, {"project": {"target": "local"}})
    assert main(["tail", "--config", str(path), "--output", "json"]) == 2
    result, error = result_and_error(capsys.readouterr().out)
    assert result["ok"] is False and "rds-streams logs" in error["hint"]
    assert not (tmp_path / ".rds-streams").exists(), "tail starts nothing"


def test_tail_on_eventbridge_says_the_bus_keeps_nothing_to_read(tmp_path, capsys):
    path = write_config(tmp_path, {"project": {"target": "local"}, "consumer": {"sink": "eventbridge"}})
    assert main(["tail", "--config", str(path), "--output", "json"]) == 2
    _result, error = result_and_error(capsys.readouterr().out)
    assert "keeps no copy" in error["message"] and "verify" in error["hint"]
