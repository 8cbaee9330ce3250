"""The attachment stack (an attached cluster): what it holds, cfn-lint clean, least privilege."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from blueprints import render_all
from orchestrator.config import load_config
from tests.factories import write_config

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
MODES = {
    "create": {},
    "none": {"mode": "none"},
    "existing": {"mode": "existing", "host": "bastion.example.com", "user": "ec2-user", "key_path": "config.toml",
                 "host_key": HOST_KEY},
}


def rendered(tmp_path: Path, mode: str) -> dict[str, dict]:
    path = write_config(tmp_path, {"database": {"cluster": "team-db"}, "bastion": MODES[mode]})
    return {stack: json.loads(t.to_json()) for stack, t in render_all(load_config(path)).items()}


@pytest.mark.parametrize("mode", MODES)
def test_an_attached_cluster_gets_a_consumer_and_an_attachment_stack_that_pass_cfn_lint(tmp_path, mode):
    templates = rendered(tmp_path, mode)
    assert list(templates) == ["assets", "consumer", "attachment"], "no network or database stack of ours"
    for stack, template in templates.items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
        assert [str(m) for m in matches] == [], f"{mode}/{stack}"
    resources = templates["attachment"]["Resources"]
    bastion = {"Bastion", "BastionKeyPair", "BastionSecurityGroup", "ClusterIngressFromBastion"}
    assert (bastion <= set(resources)) if mode == "create" else not (bastion & set(resources))
    assert not any(r["Type"].startswith("AWS::RDS::") for r in resources.values()), "the cluster is not ours"


def test_the_role_invokes_only_the_consumer_and_the_endpoint_admits_only_the_cluster(tmp_path):
    template = rendered(tmp_path, "create")["attachment"]
    resources = template["Resources"]
    policy = resources["AuroraLambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert policy == [{"Action": ["lambda:InvokeFunction"], "Effect": "Allow",
                       "Resource": [{"Ref": "ConsumerFunctionArn"}]}]
    endpoint_group = resources["LambdaEndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert endpoint_group == [{"Description": "Aurora calling Lambda", "FromPort": 443, "IpProtocol": "tcp",
                               "SourceSecurityGroupId": {"Ref": "ClusterSecurityGroupId"}, "ToPort": 443}]
    assert resources["LambdaEndpoint"]["Condition"] == "AddLambdaEndpoint"
    ingress = resources["ClusterIngressFromBastion"]["Properties"]
    assert ingress["GroupId"] == {"Ref": "ClusterSecurityGroupId"}
    assert ingress["SourceSecurityGroupId"] == {"Ref": "BastionSecurityGroup"}
    assert "0.0.0.0/0" not in json.dumps(template)
