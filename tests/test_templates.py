"""Templates from the shipped config and variants: cfn-lint clean, and the security properties hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from blueprints import render_all
from blueprints.consumer import handler_source
from orchestrator.config import load_config
from tests.factories import SHIPPED_CONFIG, write_config

VARIANTS = {
    "shipped": None,
    "v2-engine": {"database": {"engine_version": "5.7.mysql_aurora.2.12.5"}},
    "endpoint-egress": {"network": {"egress": "endpoint"}},
    "three-instances": {"database": {"instances": 3}},
    "snapshot-deletion": {"database": {"deletion": "snapshot"}},
    "several-tables": {"stream": {"tables": [{"name": "routes"}, {"name": "airports"}, {"name": "fares"}]}},
    "outbox-x86-bastion": {"stream": {"delivery": "outbox"}, "bastion": {"instance_type": "t3.micro"}},
}


def rendered(tmp_path: Path, overrides: dict | None) -> dict[str, dict]:
    path = SHIPPED_CONFIG if overrides is None else write_config(tmp_path, overrides)
    return {stack: json.loads(t.to_json()) for stack, t in render_all(load_config(path)).items()}


def resources_of(template: dict, kind: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template_passes_cfn_lint_without_errors_or_warnings(tmp_path, variant):
    for stack, template in rendered(tmp_path, VARIANTS[variant]).items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
        assert [str(m) for m in matches] == [], f"{variant}/{stack}"


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict]:
    return {stack: json.loads(t.to_json()) for stack, t in render_all(load_config(SHIPPED_CONFIG)).items()}


def test_aurora_role_may_invoke_only_the_consumer_arn(shipped):
    database = shipped["database"]
    (role,) = resources_of(database, "AWS::IAM::Role")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": ["sts:AssumeRole"], "Effect": "Allow",
                      "Principal": {"Service": ["rds.amazonaws.com"]}}]
    (policy,) = role["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Action": ["lambda:InvokeFunction"], "Effect": "Allow", "Resource": [{"Ref": "ConsumerFunctionArn"}]}
    ]


def test_no_iam_statement_anywhere_has_a_star_resource(shipped):
    text = json.dumps(shipped)
    assert '"Resource": "*"' not in text and '"Resource": ["*"]' not in text


def test_no_security_group_admits_the_whole_internet(tmp_path):
    for variant in ("shipped", "endpoint-egress"):
        for template in rendered(tmp_path, VARIANTS[variant]).values():
            for group in resources_of(template, "AWS::EC2::SecurityGroup"):
                for rule in group["Properties"].get("SecurityGroupIngress", []):
                    assert rule.get("CidrIp") != "0.0.0.0/0", rule


def test_mysql_is_reachable_only_from_the_bastion_and_ssh_only_from_allowed_cidr(shipped):
    groups = shipped["database"]["Resources"]
    (mysql,) = groups["DatabaseSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert mysql["FromPort"] == mysql["ToPort"] == 3306
    assert mysql["SourceSecurityGroupId"] == {"Fn::GetAtt": ["BastionSecurityGroup", "GroupId"]}
    (ssh,) = groups["BastionSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert (ssh["FromPort"], ssh["CidrIp"]) == (22, "203.0.113.7/32")


def test_cluster_is_encrypted_private_and_manages_its_master_password(shipped):
    (cluster,) = resources_of(shipped["database"], "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["StorageEncrypted"] is True
    assert props["ManageMasterUserPassword"] is True and "MasterUserPassword" not in props
    assert props["AssociatedRoles"] == [{"RoleArn": {"Fn::GetAtt": ["AuroraLambdaRole", "Arn"]}}]
    assert cluster["DeletionPolicy"] == "Delete"
    for instance in resources_of(shipped["database"], "AWS::RDS::DBInstance"):
        assert instance["Properties"]["PubliclyAccessible"] is False


def test_snapshot_deletion_keeps_a_final_snapshot(tmp_path):
    (cluster,) = resources_of(rendered(tmp_path, VARIANTS["snapshot-deletion"])["database"], "AWS::RDS::DBCluster")
    assert cluster["DeletionPolicy"] == cluster["UpdateReplacePolicy"] == "Snapshot"


@pytest.mark.parametrize("variant", ["shipped", "snapshot-deletion"])
def test_a_replaced_cluster_is_snapshotted_under_either_deletion_setting(tmp_path, variant):
    (cluster,) = resources_of(rendered(tmp_path, VARIANTS[variant])["database"], "AWS::RDS::DBCluster")
    assert cluster["UpdateReplacePolicy"] == "Snapshot"
    assert cluster["DeletionPolicy"] == ("Snapshot" if variant == "snapshot-deletion" else "Delete")


def test_the_bastion_image_is_a_plain_value_cloudformation_never_resolves_again(shipped):
    parameter = shipped["database"]["Parameters"]["BastionImageId"]
    # An AWS::SSM::Parameter::Value<...> type would be re-resolved on every change set, replacing the
    # bastion at each Amazon Linux release; a plain image id only changes when up passes a new one.
    assert parameter["Type"] == "AWS::EC2::Image::Id" and "Default" not in parameter
    (bastion,) = resources_of(shipped["database"], "AWS::EC2::Instance")
    assert bastion["Properties"]["ImageId"] == {"Ref": "BastionImageId"}


def test_a_v2_cluster_says_it_bills_extended_support(shipped, tmp_path):
    (v2,) = resources_of(rendered(tmp_path, VARIANTS["v2-engine"])["database"], "AWS::RDS::DBCluster")
    assert v2["Properties"]["EngineLifecycleSupport"] == "open-source-rds-extended-support"
    (v3,) = resources_of(shipped["database"], "AWS::RDS::DBCluster")
    assert "EngineLifecycleSupport" not in v3["Properties"]


def test_parameter_group_names_the_lambda_role_and_follows_the_dialect(shipped, tmp_path):
    (v3,) = resources_of(shipped["database"], "AWS::RDS::DBClusterParameterGroup")
    assert v3["Properties"]["Family"] == "aurora-mysql8.0"
    assert v3["Properties"]["Parameters"] == {
        "aws_default_lambda_role": {"Fn::GetAtt": ["AuroraLambdaRole", "Arn"]},
        "activate_all_roles_on_login": "1",
    }
    (v2,) = resources_of(rendered(tmp_path, VARIANTS["v2-engine"])["database"], "AWS::RDS::DBClusterParameterGroup")
    assert v2["Properties"]["Family"] == "aurora-mysql5.7"
    assert "activate_all_roles_on_login" not in v2["Properties"]["Parameters"]


def test_outbox_delivery_turns_the_event_scheduler_on(tmp_path):
    database = rendered(tmp_path, VARIANTS["outbox-x86-bastion"])["database"]
    (group,) = resources_of(database, "AWS::RDS::DBClusterParameterGroup")
    assert group["Properties"]["Parameters"]["event_scheduler"] == "ON"


def test_three_instances_config_gives_three_private_instances(tmp_path):
    database = rendered(tmp_path, VARIANTS["three-instances"])["database"]
    assert len(resources_of(database, "AWS::RDS::DBInstance")) == 3


def test_consumer_log_group_is_declared_with_retention(shipped):
    consumer = shipped["consumer"]
    (group,) = resources_of(consumer, "AWS::Logs::LogGroup")
    assert group["Properties"] == {"LogGroupName": "/aws/lambda/rds-streams-consumer", "RetentionInDays": 7,
                                   "Tags": group["Properties"]["Tags"]}
    (function,) = resources_of(consumer, "AWS::Lambda::Function")
    assert function["Properties"]["Runtime"] == "python3.12"
    assert function["Properties"]["Code"]["ZipFile"] == handler_source()


def test_bastion_uses_imdsv2_and_the_image_for_its_architecture(shipped, tmp_path):
    database = shipped["database"]
    (bastion,) = resources_of(database, "AWS::EC2::Instance")
    assert bastion["Properties"]["MetadataOptions"]["HttpTokens"] == "required"
    assert "al2023-ami-kernel-default-arm64" in database["Parameters"]["BastionImageId"]["Description"]
    x86 = rendered(tmp_path, VARIANTS["outbox-x86-bastion"])["database"]
    assert "al2023-ami-kernel-default-x86_64" in x86["Parameters"]["BastionImageId"]["Description"]
    (pair,) = resources_of(database, "AWS::EC2::KeyPair")
    assert pair["Properties"]["KeyType"] == "ed25519"


def test_egress_is_a_nat_gateway_or_a_lambda_endpoint(shipped, tmp_path):
    assert len(resources_of(shipped["network"], "AWS::EC2::NatGateway")) == 1
    assert resources_of(shipped["network"], "AWS::EC2::VPCEndpoint") == []
    endpoint = rendered(tmp_path, VARIANTS["endpoint-egress"])["network"]
    assert resources_of(endpoint, "AWS::EC2::NatGateway") == []
    (vpce,) = resources_of(endpoint, "AWS::EC2::VPCEndpoint")
    assert vpce["Properties"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.lambda"}


def test_every_resource_that_takes_tags_carries_the_ownership_tag(shipped):
    untaggable = {"AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::Route", "AWS::EC2::VPCGatewayAttachment",
                  "AWS::Lambda::EventInvokeConfig", "AWS::S3::BucketPolicy"}
    tagged = 0
    for template in shipped.values():
        for logical_id, resource in template["Resources"].items():
            tags = resource["Properties"].get("Tags")
            if resource["Type"] in untaggable:
                continue
            assert tags is not None, f"{logical_id} ({resource['Type']}) has no tags"
            as_dict = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
            assert as_dict["rds-streams:project"] == "rds-streams"
            tagged += 1
    assert tagged >= 20


def test_values_cross_stacks_as_parameters_never_exports(shipped):
    text = json.dumps(shipped)
    assert "Fn::ImportValue" not in text and '"Export"' not in text
    assert set(shipped["database"]["Parameters"]) >= {"VpcId", "PrivateSubnetIds", "ConsumerFunctionArn"}


def test_direct_delivery_keeps_events_lambda_gives_up_on_in_a_dead_letter_queue(shipped, tmp_path):
    consumer = shipped["consumer"]
    (config,) = resources_of(consumer, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    (role,) = resources_of(consumer, "AWS::IAM::Role")
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Action": ["sqs:SendMessage"], "Effect": "Allow",
            "Resource": [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}]} in statements
    outbox = rendered(tmp_path, VARIANTS["outbox-x86-bastion"])["consumer"]
    assert resources_of(outbox, "AWS::SQS::Queue") == [] == resources_of(outbox, "AWS::Lambda::EventInvokeConfig")
