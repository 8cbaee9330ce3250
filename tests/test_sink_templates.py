"""The consumer stack with a managed sink: cfn-lint clean per sink, the sink declared as asked, and
the forwarder's role allowed to write to that one sink only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from blueprints.consumer import consumer_template
from orchestrator.config import load_config
from orchestrator.resources import forwarder_source
from tests.factories import write_config

SINKS = {"kinesis": ("AWS::Kinesis::Stream", "SinkStream"), "sqs": ("AWS::SQS::Queue", "SinkQueue"),
         "eventbridge": ("AWS::Events::EventBus", "SinkBus")}
WRITE_ACTIONS = {"kinesis": ["kinesis:PutRecords", "kinesis:PutRecord"], "sqs": ["sqs:SendMessage"],
                 "eventbridge": ["events:PutEvents"]}


def consumer_stack(tmp_path: Path, sink: str, delivery: str = "direct") -> dict:
    path = write_config(tmp_path, {"consumer": {"sink": sink}, "stream": {"delivery": delivery}})
    return json.loads(consumer_template(load_config(path)).to_json())


@pytest.mark.parametrize("delivery", ["direct", "outbox"])
@pytest.mark.parametrize("sink", SINKS)
def test_each_sink_variant_passes_cfn_lint_without_errors_or_warnings(tmp_path, sink, delivery):
    matches = lint(json.dumps(consumer_stack(tmp_path, sink, delivery)), config=ManualArgs(regions=["eu-west-1"]))
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize("sink", SINKS)
def test_the_forwarder_may_write_to_its_one_sink_and_nothing_else(tmp_path, sink):
    template = consumer_stack(tmp_path, sink)
    kind, logical_id = SINKS[sink]
    assert [n for n, r in template["Resources"].items() if r["Type"] == kind and n.startswith("Sink")] == [logical_id]
    (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    resources = [json.dumps(s["Resource"]) for s in statements]
    assert all(len(s["Resource"]) == 1 for s in statements), "every statement names one resource"
    assert not any(r in ('"*"', '["*"]') for r in resources), "no star resource"
    sink_statements = [s for s in statements if s["Resource"] == [{"Fn::GetAtt": [logical_id, "Arn"]}]]
    assert [s["Action"] for s in sink_statements] == [WRITE_ACTIONS[sink]]
    # the rest: its own log group and its own dead-letter queue, nothing of another service
    others = [a for s in statements if s not in sink_statements for a in s["Action"]]
    assert sorted(others) == ["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"]


def test_the_sink_is_as_the_issue_asks(tmp_path):
    kinesis = consumer_stack(tmp_path / "k", "kinesis")["Resources"]["SinkStream"]["Properties"]
    assert kinesis["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    queue = consumer_stack(tmp_path / "q", "sqs")["Resources"]["SinkQueue"]["Properties"]
    assert queue["FifoQueue"] is True and queue["ContentBasedDeduplication"] is False
    assert queue["QueueName"].endswith(".fifo")


def test_the_forwarder_is_inlined_with_its_sink_and_the_logger_stays_the_default(tmp_path):
    template = consumer_stack(tmp_path / "e", "eventbridge")
    function = template["Resources"]["ConsumerFunction"]["Properties"]
    assert function["Code"]["ZipFile"] == forwarder_source()
    assert function["Environment"]["Variables"] == {"RDS_STREAMS_SINK": "eventbridge",
                                                    "RDS_STREAMS_SINK_TARGET": "rds-streams-changes"}
    logger = consumer_stack(tmp_path / "l", "log")
    assert "Environment" not in logger["Resources"]["ConsumerFunction"]["Properties"]
    assert not any(name.startswith("Sink") for name in logger["Resources"])
    assert not any(name.startswith("Sink") for name in logger.get("Outputs", {}))
