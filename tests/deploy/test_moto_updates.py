"""Stack updates behave as CloudFormation's do in the sandbox's moto: a resource removed and re-added
is created again, and a property change on a type moto cannot update keeps the resource and the
stack's outputs (see FACTS.md, moto). Real moto server; our fixes are installed with our models."""

from __future__ import annotations

import json

from blueprints.bastion import FORWARD_ONLY_USER_DATA


def template(*, queue: bool, retention: int, subnet_tag: str) -> str:
    resources = {
        "Group": {"Type": "AWS::Logs::LogGroup",
                  "Properties": {"LogGroupName": "/aws/lambda/moto-updates", "RetentionInDays": retention}},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.1.0/24", "Tags": [{"Key": "purpose", "Value": subnet_tag}]}},
    }
    outputs = {"LogGroupName": {"Value": {"Ref": "Group"}}, "SubnetId": {"Value": {"Ref": "Subnet"}}}
    if queue:
        resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "moto-updates-dlq"}}
        outputs["QueueUrl"] = {"Value": {"Ref": "Queue"}}
    return json.dumps({"Resources": resources, "Outputs": outputs})


def outputs(cfn, name):
    return {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}


def test_a_re_added_queue_exists_again_and_changed_retention_and_tags_keep_the_outputs(aws):
    cfn, sqs, logs = aws("cloudformation"), aws("sqs"), aws("logs")
    cfn.create_stack(StackName="moto-updates", TemplateBody=template(queue=True, retention=7, subnet_tag="a"))
    first = outputs(cfn, "moto-updates")
    cfn.update_stack(StackName="moto-updates", TemplateBody=template(queue=False, retention=7, subnet_tag="a"))
    assert "QueueUrl" not in outputs(cfn, "moto-updates")
    assert not sqs.list_queues().get("QueueUrls")

    cfn.update_stack(StackName="moto-updates", TemplateBody=template(queue=True, retention=14, subnet_tag="b"))
    after = outputs(cfn, "moto-updates")
    assert set(after) == {"LogGroupName", "SubnetId", "QueueUrl"}
    assert after["SubnetId"] == first["SubnetId"], "a tag change updates the subnet in place"
    assert sqs.get_queue_attributes(QueueUrl=after["QueueUrl"], AttributeNames=["All"])["Attributes"]
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/moto-updates")["logGroups"]
    assert group["retentionInDays"] == 14


def test_the_bastion_key_may_only_forward_to_the_cluster_endpoint_on_3306(tmp_path):
    from blueprints import render_all
    from orchestrator.config import load_config
    from tests.factories import write_config

    database = json.loads(render_all(load_config(write_config(tmp_path, {"project": {"target": "aws"}})))[
        "database"].to_json())
    user_data = database["Resources"]["Bastion"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    script, variables = user_data
    assert script == FORWARD_ONLY_USER_DATA
    assert variables == {"ClusterEndpoint": {"Fn::GetAtt": ["Cluster", "Endpoint.Address"]}}
    key_options = 'restrict,port-forwarding,permitopen="${ClusterEndpoint}:3306",command="/bin/false"'
    assert key_options in script and "/home/ec2-user/.ssh/authorized_keys" in script
    assert "AllowTcpForwarding local" in script and "PermitTTY no" in script
