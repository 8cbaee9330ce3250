"""up / plan / down of the full template set against moto, through the CLI as a user runs it."""

from __future__ import annotations

import json

ALL = ("--only", "assets", "--only", "network", "--only", "consumer", "--only", "database")


def events_of(kind, objects):
    return [o for o in objects if o["type"] == kind]


def live_stacks(aws):
    return {s["StackName"]: s["StackStatus"] for s in aws("cloudformation").list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"}


def test_up_plan_change_and_down_leave_nothing_behind(aws, aws_config, cli):
    config = str(aws_config())

    code, out = cli("up", "--config", config, "--yes", *ALL)
    assert code == 0
    assert live_stacks(aws) == {f"rds-streams-{k}": "CREATE_COMPLETE" for k in ("assets", "network", "consumer", "database")}
    database = aws("cloudformation").describe_stacks(StackName="rds-streams-database")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in database["Outputs"]}
    assert outputs["ClusterEndpoint"].endswith(".rds.amazonaws.com") and outputs["ClusterPort"] == "3306"
    assert aws("secretsmanager").describe_secret(SecretId=outputs["MasterSecretArn"])["Name"].startswith("rds!cluster")
    private_key = aws("ssm").get_parameter(Name=f"/ec2/keypair/{outputs['KeyPairId']}", WithDecryption=True)
    assert private_key["Parameter"]["Value"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert {"Key": "rds-streams:project", "Value": "rds-streams"} in database["Tags"]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in database["Parameters"]}
    assert params["ConsumerFunctionArn"].endswith(":function:rds-streams-consumer")

    code, out = cli("up", "--config", config, "--yes", *ALL)
    assert code == 0
    assert events_of("stack_event", out) == [], "a second up changes nothing"
    assert len(events_of("stack_unchanged", out)) == 4

    config = str(aws_config({"consumer": {"log_retention_days": 14}}))
    code, out = cli("plan", "--config", config, *ALL)
    assert code == 0
    plans = {p["stack"]: p for p in events_of("stack_plan", out)}
    assert plans["rds-streams-consumer"]["action"] == "update"
    assert [(c["action"], c["logical_id"]) for c in plans["rds-streams-consumer"]["changes"]] == [
        ("Modify", "ConsumerLogGroup")]
    assert plans["rds-streams-network"]["action"] == plans["rds-streams-database"]["action"] == "unchanged"
    assert aws("cloudformation").list_change_sets(StackName="rds-streams-consumer")["Summaries"][-1][
        "ExecutionStatus"] != "AVAILABLE", "plan leaves no change set to execute"

    code, out = cli("up", "--config", config, "--yes", *ALL)
    assert code == 0
    assert {e["stack"] for e in events_of("stack_event", out)} == {"rds-streams-consumer"}
    template = aws("cloudformation").get_template(StackName="rds-streams-consumer")["TemplateBody"]
    body = template if isinstance(template, dict) else json.loads(template)
    assert body["Resources"]["ConsumerLogGroup"]["Properties"]["RetentionInDays"] == 14
    code, out = cli("plan", "--config", config, *ALL)
    assert all(p["action"] == "unchanged" for p in events_of("stack_plan", out))

    code, out = cli("down", "--config", config, "--yes", *ALL)
    assert code == 0
    assert live_stacks(aws) == {}
    ec2 = aws("ec2")
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"] == []
    assert aws("secretsmanager").list_secrets()["SecretList"] == []
    assert aws("logs").describe_log_groups()["logGroups"] == []
    assert aws("rds").describe_db_clusters()["DBClusters"] == []
    assert aws("ssm").describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "BeginsWith", "Values": ["/ec2/keypair/"]}])["Parameters"] == []

    code, out = cli("down", "--config", config, "--yes", *ALL)
    assert code == 0, "down is idempotent"
    assert events_of("down", out)[0]["deleted"] == []


def test_up_only_database_also_deploys_what_it_depends_on(aws, aws_config, cli):
    code, _ = cli("up", "--config", str(aws_config()), "--yes", "--only", "database")
    assert code == 0
    assert set(live_stacks(aws)) == {"rds-streams-network", "rds-streams-consumer", "rds-streams-database"}


def test_endpoint_egress_variant_deploys_and_deletes_cleanly(aws, aws_config, cli):
    config = str(aws_config({"network": {"egress": "endpoint"}}))
    assert cli("up", "--config", config, "--yes", "--only", "network")[0] == 0
    endpoints = aws("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == ["com.amazonaws.eu-west-1.lambda"]
    assert cli("down", "--config", config, "--yes", "--only", "network")[0] == 0
    assert [v for v in aws("ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert [e for e in aws("ec2").describe_vpc_endpoints()["VpcEndpoints"] if e["State"] != "deleted"] == []


def test_snapshot_deletion_keeps_and_reports_a_final_snapshot(aws, aws_config, cli):
    config = str(aws_config({"database": {"deletion": "snapshot"}}))
    assert cli("up", "--config", config, "--yes", *ALL)[0] == 0
    code, out = cli("down", "--config", config, "--yes")
    assert code == 0
    (report,) = events_of("down", out)
    assert any(item.startswith("final snapshot ") for item in report["kept"])
    assert len(aws("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]) == 1


def test_plan_before_anything_exists_lists_every_resource_as_add_and_creates_nothing(aws, aws_config, cli):
    code, out = cli("plan", "--config", str(aws_config()))
    assert code == 0
    plans = {p["stack"]: p for p in events_of("stack_plan", out)}
    assert {p["action"] for p in plans.values()} == {"create"}
    assert ("Add", "Cluster") in [(c["action"], c["logical_id"]) for c in plans["rds-streams-database"]["changes"]]
    assert live_stacks(aws) == {}
