"""Failure paths of the deploy engine: foreign stacks, failed creates, root causes, risky changes, Ctrl-C.

moto cannot make a resource fail or leave a stack mid-operation, so those paths use botocore's Stubber
(say so below); everything else runs against the moto server.
"""

from __future__ import annotations

import io
import os
import signal
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from rich.console import Console

from orchestrator.cancel import CancelToken, first_interrupt_cancels
from orchestrator.deploy.watch import Watched, wait_for
from orchestrator.errors import Cancelled, OperationFailed
from orchestrator.ui import UI, OutputFormat

# Against moto on target "aws" there is no bastion to reach, so up stops after the stacks.
ALL = ("--only", "network", "--only", "consumer", "--only", "database")
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/{}/0000"


def test_a_stack_without_our_tag_is_refused_by_up_and_down(aws, aws_config, cli):
    aws("cloudformation").create_stack(StackName="rds-streams-network", TemplateBody=(
        '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'))
    config = str(aws_config())
    for command in ("up", "down"):
        code, out = cli(command, "--config", config, "--yes", "--only", "network")
        assert code == 1, command
    stacks = aws("cloudformation").describe_stacks(StackName="rds-streams-network")["Stacks"]
    assert stacks[0]["StackStatus"] == "CREATE_COMPLETE", "the foreign stack is untouched"


def _force_status(stack_name: str, status: str) -> str:
    """Put a stack into a state moto cannot reach by itself (a failed create); returns its id."""
    from moto.cloudformation.models import cloudformation_backends

    stack = next(s for s in cloudformation_backends["123456789012"]["eu-west-1"].stacks.values()
                 if s.name == stack_name)
    stack.status = status
    return stack.stack_id


def test_a_stack_left_by_a_failed_create_is_deleted_and_created_again(aws, aws_config, cli):
    config = str(aws_config())
    assert cli("up", "--config", config, "--yes", "--only", "consumer")[0] == 0
    failed_id = _force_status("rds-streams-consumer", "ROLLBACK_COMPLETE")
    code, out = cli("up", "--config", config, "--yes", "--only", "consumer")
    assert code == 0
    stack = aws("cloudformation").describe_stacks(StackName="rds-streams-consumer")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["StackId"] != failed_id


def test_a_failed_create_without_our_tag_is_not_deleted(aws, aws_config, cli):
    aws("cloudformation").create_stack(StackName="rds-streams-consumer", TemplateBody=(
        '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'))
    failed_id = _force_status("rds-streams-consumer", "ROLLBACK_COMPLETE")
    code, _ = cli("up", "--config", str(aws_config()), "--yes", "--only", "consumer")
    assert code == 1
    assert aws("cloudformation").describe_stacks(StackName=failed_id)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"


def test_removing_a_database_resource_needs_a_yes_and_no_terminal_means_no(aws, aws_config, cli):
    assert cli("up", "--config", str(aws_config({"database": {"instances": 2}})), "--yes", *ALL)[0] == 0
    fewer = str(aws_config({"database": {"instances": 1}}))
    code, _ = cli("up", "--config", fewer, *ALL)
    assert code == 2, "refused without a terminal to ask"
    assert len(aws("rds").describe_db_instances()["DBInstances"]) == 2
    assert aws("cloudformation").list_change_sets(StackName="rds-streams-database")["Summaries"][-1][
        "ExecutionStatus"] != "AVAILABLE", "the refused change set is removed"
    assert cli("up", "--config", fewer, "--yes", *ALL)[0] == 0
    assert len(aws("rds").describe_db_instances()["DBInstances"]) == 1


def test_output_that_is_not_a_terminal_gets_plain_event_lines(aws, aws_config, capsys):
    from orchestrator.cli import main

    assert main(["up", "--config", str(aws_config()), "--yes", "--only", "network"]) == 0
    out = capsys.readouterr().out
    assert "rds-streams-network CREATE_COMPLETE" in out
    assert "\x1b[" not in out, "no escape codes or live display in a pipe"


def test_json_output_is_one_object_per_line(aws, aws_config, capsys):
    import json

    from orchestrator.cli import main

    assert main(["up", "--config", str(aws_config()), "--yes", "--only", "network", "--output", "json"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines]
    assert {"stack_event", "step"} <= {o["type"] for o in objects}


# --- Stubber: CloudFormation mid-operation and failing resources cannot be produced by moto -------------

def _stack(name: str, status: str) -> dict:
    return {"Stacks": [{"StackName": name, "StackId": STACK_ID.format(name), "StackStatus": status,
                        "CreationTime": datetime.now(UTC)}]}


def _event(name: str, logical: str, kind: str, status: str, at: datetime, reason: str = "") -> dict:
    event = {"StackId": STACK_ID.format(name), "EventId": f"{name}-{logical}-{status}", "StackName": name,
             "LogicalResourceId": logical, "ResourceType": kind, "Timestamp": at, "ResourceStatus": status}
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def _quiet_ui() -> UI:
    return UI(console=Console(file=io.StringIO()), output=OutputFormat.TEXT)


def test_a_failure_reports_the_first_failed_resource_across_all_stacks():
    cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stubber = Stubber(cfn)
    stubber.add_response("describe_stacks", _stack("app-network", "ROLLBACK_COMPLETE"), {"StackName": ANY})
    stubber.add_response("describe_stack_events", {"StackEvents": [
        _event("app-network", "app-network", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", t0 + timedelta(9)),
        _event("app-network", "NatGateway", "AWS::EC2::NatGateway", "CREATE_FAILED", t0 + timedelta(seconds=8),
               "Resource creation cancelled"),
        _event("app-network", "app-network", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", t0),
    ]}, {"StackName": ANY})
    stubber.add_response("describe_stacks", _stack("app-consumer", "ROLLBACK_COMPLETE"), {"StackName": ANY})
    stubber.add_response("describe_stack_events", {"StackEvents": [
        _event("app-consumer", "ConsumerRole", "AWS::IAM::Role", "CREATE_FAILED", t0 + timedelta(seconds=5),
               "API: iam:CreateRole User is not authorized to perform: iam:CreateRole"),
        _event("app-consumer", "app-consumer", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", t0),
    ]}, {"StackName": ANY})
    with stubber, pytest.raises(OperationFailed) as caught:
        wait_for(cfn, [Watched("app-network", "create", 15), Watched("app-consumer", "create", 3)],
                 _quiet_ui(), CancelToken(), timeout=60)
    message = str(caught.value)
    assert message.startswith("app-consumer: ConsumerRole (AWS::IAM::Role) CREATE_FAILED")
    assert "not authorized to perform: iam:CreateRole" in message
    assert "ROLLBACK_COMPLETE" not in message


def test_first_ctrl_c_stops_waiting_and_says_what_cloudformation_is_still_doing():
    cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(cfn)
    stubber.add_response("describe_stacks", _stack("app-database", "CREATE_IN_PROGRESS"), {"StackName": ANY})
    stubber.add_response("describe_stack_events", {"StackEvents": [
        _event("app-database", "app-database", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS",
               datetime.now(UTC))]}, {"StackName": ANY})
    stubber.add_response("describe_stacks", _stack("app-database", "CREATE_IN_PROGRESS"), {"StackName": ANY})
    cancel = CancelToken()
    cancel.cancel()  # as the first Ctrl-C does
    with stubber, pytest.raises(Cancelled) as caught:
        wait_for(cfn, [Watched("app-database", "create", 10)], _quiet_ui(), cancel, timeout=3600)
    assert "still working on app-database: CREATE_IN_PROGRESS" in str(caught.value)
    assert "run the same command again" in caught.value.hint
    assert Cancelled.exit_code == 130


def test_the_first_interrupt_cancels_and_the_second_interrupts_at_once():
    token = CancelToken()
    with first_interrupt_cancels(token):
        os.kill(os.getpid(), signal.SIGINT)
        assert token.wait(2.0), "the first Ctrl-C wakes the wait"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            token.wait(2.0)
