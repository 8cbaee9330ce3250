"""The bastion keeps the image it was launched with across Amazon Linux releases, until
`up --refresh-bastion`; replacing it is a risky change that needs a yes. Against moto, through the CLI;
a new Amazon Linux release is simulated by adding a version to AWS's public SSM parameter in moto."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from blueprints.bastion import image_source
from orchestrator.config import load_config
from orchestrator.deploy.pinned import pinned_parameters, ssm_lookup
from orchestrator.deploy.stacks import ChangeSet, ResourceChange, describe_stack
from orchestrator.deploy.up import _confirm_risks
from orchestrator.errors import UsageError
from orchestrator.ui import UI

ALL = ("--only", "network", "--only", "consumer", "--only", "database")


def database_parameters(aws) -> dict[str, str]:
    stack = aws("cloudformation").describe_stacks(StackName="rds-streams-database")["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def bastion(aws) -> dict:
    instance_id = next(o["OutputValue"] for o in aws("cloudformation").describe_stacks(
        StackName="rds-streams-database")["Stacks"][0]["Outputs"] if o["OutputKey"] == "BastionInstanceId")
    return aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def release(parameter: str, image_id: str) -> None:
    """A new Amazon Linux release: AWS updates its public parameter. moto refuses writes under /aws/ as AWS
    does, so the test adds the version to moto's own store (the server runs in this process)."""
    import copy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    versions = ssm_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"]._parameters[parameter]
    newer = copy.copy(versions[-1])
    newer.value, newer.version = image_id, versions[-1].version + 1
    versions.append(newer)


def test_the_bastion_keeps_its_image_across_releases_until_refresh_bastion(aws, aws_config, cli):
    config_path = aws_config()
    config = str(config_path)
    source = image_source(load_config(config_path))
    launched_with = aws("ssm").get_parameter(Name=source)["Parameter"]["Value"]
    assert cli("up", "--config", config, "--yes", *ALL)[0] == 0
    assert [o for o in cli("plan", "--config", config, *ALL)[1] if o["type"] == "note"] == [], "nothing newer yet"
    first = bastion(aws)
    assert database_parameters(aws)["BastionImageId"] == launched_with == first["ImageId"]

    newer = next(i["ImageId"] for i in aws("ec2").describe_images(Owners=["amazon"])["Images"]
                 if i["ImageId"] != launched_with)
    release(source, newer)

    code, out = cli("plan", "--config", config, *ALL)
    assert code == 0
    assert all(p["action"] == "unchanged" for p in out if p["type"] == "stack_plan"), "the image is pinned"
    (note,) = [o["message"] for o in out if o["type"] == "note"]
    assert launched_with in note and newer in note and "up --refresh-bastion" in note
    code, out = cli("up", "--config", config, "--yes", *ALL)
    assert code == 0 and [o for o in out if o["type"] == "stack_event"] == []
    assert bastion(aws)["InstanceId"] == first["InstanceId"]

    # moto's change sets report no Replacement and its stacks lose the instance's outputs when a change set
    # replaces it (HTTP 500), so the refresh itself is checked below, in parts, against AWS's documented answer.
    state = describe_stack(aws("cloudformation"), "rds-streams-database")
    lookup = ssm_lookup(aws("ssm"))
    assert pinned_parameters("database", load_config(config_path), state, lookup=lookup) == [
        {"ParameterKey": "BastionImageId", "ParameterValue": launched_with}]
    assert pinned_parameters("database", load_config(config_path), state, lookup=lookup, refresh=True) == [
        {"ParameterKey": "BastionImageId", "ParameterValue": newer}]


def test_replacing_the_bastion_is_a_risky_change_that_needs_a_yes():
    # What CloudFormation answers for a changed ImageId (the property's "Update requires: Replacement").
    replaced = ResourceChange("Modify", "Bastion", "AWS::EC2::Instance", "True")
    change_set = ChangeSet("rds-streams-database", "cs", "UPDATE", (replaced,))
    assert change_set.risks() == [
        (replaced, "replaces the bastion: its host key and public address change and open tunnels drop")]
    assert ResourceChange("Modify", "Bastion", "AWS::EC2::Instance", "False").risk(updating=True) is None
    assert ResourceChange("Add", "Bastion", "AWS::EC2::Instance").risk(updating=False) is None  # the first deploy
    with pytest.raises(UsageError, match="refusing to go on without a terminal"):
        _confirm_risks([change_set], UI(console=Console(file=io.StringIO())))
