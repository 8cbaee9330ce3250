"""The RDS API steps of an attach where moto cannot stand in for AWS (default parameter groups, which
moto does not have; the ~500-parameter listing AWS pages; a reboot): botocore Stubber asserts each
request, parameter names and values, against botocore's own RDS service model. No AWS is reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.attach.changes import apply_change, copy_group_name, plan_changes, reverse_change
from orchestrator.attach.cluster import AttachedCluster, describe_cluster, lambda_route
from orchestrator.attach.record import RecordedChange
from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from tests.factories import shipped_raw, toml_text

ROLE = "arn:aws:iam::123456789012:role/service-role/att-attachment-AuroraLambdaRole-ABC"
ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:team-db"


def config_for(tmp_path: Path, **database: Any) -> Any:
    raw = shipped_raw()
    raw["project"].update(target="aws", name="att")
    raw["database"].pop("migrations")
    raw["database"].update({"cluster": "team-db", "name": "shop", **database})
    raw["stream"]["tables"] = [{"name": "orders"}]
    path = tmp_path / "config.toml"
    path.write_text(toml_text(raw))
    return load_config(path)


def cluster(group: str, roles: tuple[str, ...] = ()) -> AttachedCluster:
    return AttachedCluster(identifier="team-db", arn=ARN, engine_version="8.0.mysql_aurora.3.10.3",
                           endpoint="team-db.cluster-x.eu-west-1.rds.amazonaws.com", port=3306, parameter_group=group,
                           master_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-1",
                           vpc_id="vpc-1", subnet_ids=("subnet-a", "subnet-b"), security_group_ids=("sg-1",),
                           role_arns=roles, members=("team-db-1", "team-db-2"))


@pytest.fixture
def rds() -> Any:
    client = boto3.client("rds", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_default_parameter_group_is_copied_set_and_attached_and_down_switches_back_then_deletes_the_copy(tmp_path, rds):
    client, stub = rds
    config = config_for(tmp_path, engine_version="8.0.mysql_aurora.3.10.3")
    attached = cluster("default.aurora-mysql8.0")
    changes = plan_changes(client, config, attached, ROLE)  # nothing read: a default group is never modified
    copy = copy_group_name(config, attached)
    assert copy == "att-team-db"
    assert [(c.kind, c.target, c.name, c.previous, c.wanted) for c in changes] == [
        ("associate-role", "team-db", ROLE, None, ROLE),
        ("copy-group", copy, copy, "default.aurora-mysql8.0", copy),
        ("set-parameter", copy, "aws_default_lambda_role", None, ROLE),
        ("set-parameter", copy, "activate_all_roles_on_login", None, "1"),
        ("switch-group", "team-db", copy, "default.aurora-mysql8.0", copy),
    ]
    stub.add_response("add_role_to_db_cluster", {}, {"DBClusterIdentifier": "team-db", "RoleArn": ROLE})
    stub.add_response("copy_db_cluster_parameter_group", {"DBClusterParameterGroup": {"DBClusterParameterGroupName": copy}},
                      {"SourceDBClusterParameterGroupIdentifier": "default.aurora-mysql8.0",
                       "TargetDBClusterParameterGroupIdentifier": copy,
                       "TargetDBClusterParameterGroupDescription":
                           "rds-streams: default.aurora-mysql8.0 with the stream's parameters"})
    for name, value in (("aws_default_lambda_role", ROLE), ("activate_all_roles_on_login", "1")):
        stub.add_response("modify_db_cluster_parameter_group", {"DBClusterParameterGroupName": copy},
                          {"DBClusterParameterGroupName": copy, "Parameters": [
                              {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "immediate"}]})
    stub.add_response("modify_db_cluster", {"DBCluster": {"DBClusterIdentifier": "team-db"}},
                      {"DBClusterIdentifier": "team-db", "DBClusterParameterGroupName": copy, "ApplyImmediately": True})
    for change in changes:
        apply_change(client, change)

    said: list[str] = []
    stub.add_response("modify_db_cluster", {"DBCluster": {"DBClusterIdentifier": "team-db"}},
                      {"DBClusterIdentifier": "team-db", "DBClusterParameterGroupName": "default.aurora-mysql8.0",
                       "ApplyImmediately": True})
    stub.add_response("delete_db_cluster_parameter_group", {}, {"DBClusterParameterGroupName": copy})
    stub.add_response("remove_role_from_db_cluster", {}, {"DBClusterIdentifier": "team-db", "RoleArn": ROLE})
    # down reverses newest first and skips the copy's parameters (they go with the copy)
    for change in reversed([c for c in changes if c.kind != "set-parameter"]):
        reverse_change(client, change.as_record(), said.append)
    assert said == ["the cluster team-db is back on default.aurora-mysql8.0; its instances take it at their next reboot"]


def test_the_cluster_own_group_is_read_across_pages_and_down_restores_a_value_and_resets_an_unset_one(tmp_path, rds):
    client, stub = rds
    config = config_for(tmp_path, engine_version="8.0.mysql_aurora.3.10.3")
    attached = cluster("team-params", roles=(ROLE,))
    stub.add_response("describe_db_cluster_parameters", {"Parameters": [
        {"ParameterName": "activate_all_roles_on_login", "ParameterValue": "0"}], "Marker": "page-2"},
        {"DBClusterParameterGroupName": "team-params"})
    stub.add_response("describe_db_cluster_parameters", {"Parameters": [
        {"ParameterName": "aws_default_lambda_role"}, {"ParameterName": "binlog_format", "ParameterValue": "ROW"}]},
        {"DBClusterParameterGroupName": "team-params", "Marker": "page-2"})
    changes = plan_changes(client, config, attached, ROLE)
    assert [(c.kind, c.name, c.previous, c.wanted) for c in changes] == [
        ("set-parameter", "aws_default_lambda_role", None, ROLE),
        ("set-parameter", "activate_all_roles_on_login", "0", "1"),
    ], "the role is associated already; only what differs is changed"

    stub.add_response("modify_db_cluster_parameter_group", {"DBClusterParameterGroupName": "team-params"},
                      {"DBClusterParameterGroupName": "team-params", "Parameters": [
                          {"ParameterName": "activate_all_roles_on_login", "ParameterValue": "0",
                           "ApplyMethod": "immediate"}]})
    stub.add_response("reset_db_cluster_parameter_group", {"DBClusterParameterGroupName": "team-params"},
                      {"DBClusterParameterGroupName": "team-params", "ResetAllParameters": False,
                       "Parameters": [{"ParameterName": "aws_default_lambda_role", "ApplyMethod": "immediate"}]})
    for change in reversed(changes):
        reverse_change(client, change.as_record(), lambda _: None)


def test_reversing_a_change_already_undone_is_not_an_error(tmp_path, rds):
    client, stub = rds
    stub.add_client_error("remove_role_from_db_cluster", service_error_code="DBClusterRoleNotFound",
                          expected_params={"DBClusterIdentifier": "team-db", "RoleArn": ROLE})
    reverse_change(client, RecordedChange("role:team-db", "associate-role", "team-db", ROLE, False, None, ROLE),
                   lambda _: None)


def test_outbox_delivery_also_turns_the_event_scheduler_on(tmp_path, rds):
    client, stub = rds
    raw_config = config_for(tmp_path)
    config = raw_config.model_copy(update={"stream": raw_config.stream.model_copy(update={"delivery": "outbox"})})
    stub.add_response("describe_db_cluster_parameters", {"Parameters": [
        {"ParameterName": "event_scheduler", "ParameterValue": "OFF"}]}, {"DBClusterParameterGroupName": "team-params"})
    changes = plan_changes(client, config, cluster("team-params", roles=(ROLE,)), ROLE)
    assert ("event_scheduler", "OFF", "ON") in [(c.name, c.previous, c.wanted) for c in changes]


def _describe(engine: str, version: str) -> dict[str, Any]:
    return {"DBClusters": [{"DBClusterIdentifier": "team-db", "DBClusterArn": ARN, "Engine": engine,
                            "EngineVersion": version, "Endpoint": "team-db.cluster-x", "Port": 3306,
                            "DBClusterParameterGroup": "team-params", "DBSubnetGroup": "team-subnets",
                            "MasterUserSecret": {"SecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:rds!c"},
                            "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1", "Status": "active"}],
                            "AssociatedRoles": [], "DBClusterMembers": [{"DBInstanceIdentifier": "team-db-1",
                                                                         "IsClusterWriter": True}]}]}


def test_a_missing_cluster_and_a_postgresql_one_are_refused_with_exit_2(tmp_path, rds):
    client, stub = rds
    config = config_for(tmp_path)
    stub.add_client_error("describe_db_clusters", service_error_code="DBClusterNotFoundFault",
                          expected_params={"DBClusterIdentifier": "team-db"})
    with pytest.raises(ConfigError, match=r"\[database\] cluster: no cluster 'team-db'") as missing:
        describe_cluster(client, config)
    assert missing.value.exit_code == 2
    stub.add_response("describe_db_clusters", _describe("aurora-postgresql", "16.4"), {"DBClusterIdentifier": "team-db"})
    with pytest.raises(ConfigError, match="is aurora-postgresql 16.4, not Aurora MySQL 2 or 3"):
        describe_cluster(client, config)


def test_an_arn_names_the_cluster_and_its_subnets_come_from_the_subnet_group(tmp_path, rds):
    client, stub = rds
    config = config_for(tmp_path, cluster=ARN)
    stub.add_response("describe_db_clusters", _describe("aurora-mysql", "8.0.mysql_aurora.3.10.3"),
                      {"DBClusterIdentifier": "team-db"})
    stub.add_response("describe_db_subnet_groups", {"DBSubnetGroups": [{"VpcId": "vpc-1", "Subnets": [
        {"SubnetIdentifier": "subnet-a"}, {"SubnetIdentifier": "subnet-b"}]}]}, {"DBSubnetGroupName": "team-subnets"})
    found = describe_cluster(client, config)
    assert (found.vpc_id, found.subnet_ids, found.security_group_ids, found.members) == (
        "vpc-1", ("subnet-a", "subnet-b"), ("sg-1",), ("team-db-1",))


def _route_tables(nat_for: tuple[str, ...]) -> dict[str, Any]:
    nat_routes = [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]
    return {"RouteTables": [
        {"RouteTableId": "rtb-main", "Associations": [{"Main": True}], "Routes": []},
        {"RouteTableId": "rtb-nat", "Associations": [{"SubnetId": s, "Main": False} for s in nat_for],
         "Routes": nat_routes},
    ]}


@pytest.mark.parametrize("nat_for, endpoints, needed", [
    (("subnet-a", "subnet-b"), [], False),
    (("subnet-a",), [], True),
    ((), [{"VpcEndpointId": "vpce-team", "State": "available"}], False),
    ((), [{"VpcEndpointId": "vpce-ours", "State": "available"}], True),
])
def test_a_lambda_endpoint_is_added_only_where_a_subnet_lacks_a_nat_route_and_the_vpc_has_none(
        nat_for, endpoints, needed):
    client = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("describe_route_tables", _route_tables(nat_for),
                          {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]})
        stub.add_response("describe_vpc_endpoints", {"VpcEndpoints": endpoints}, {"Filters": [
            {"Name": "vpc-id", "Values": ["vpc-1"]}, {"Name": "service-name", "Values": ["com.amazonaws.eu-west-1.lambda"]}]})
        route = lambda_route(client, cluster("team-params"), "eu-west-1", ignore=("vpce-ours",))
    assert route.needs_endpoint is needed
    assert ("the attachment stack holds a Lambda interface endpoint" in route.reason) is needed


def test_triggers_wait_until_the_role_is_active_and_every_instance_took_the_parameter_group(rds):
    from orchestrator.attach.changes import wait_until_settled
    from orchestrator.cancel import CancelToken

    client, stub = rds

    def described(role_status: str, group_status: str) -> dict[str, Any]:
        found = _describe("aurora-mysql", "8.0.mysql_aurora.3.10.3")
        found["DBClusters"][0]["AssociatedRoles"] = [{"RoleArn": ROLE, "Status": role_status}]
        found["DBClusters"][0]["DBClusterMembers"][0]["DBClusterParameterGroupStatus"] = group_status
        return found

    for role_status, group_status in (("PENDING", "pending-reboot"), ("ACTIVE", "pending-reboot"), ("ACTIVE", "in-sync")):
        stub.add_response("describe_db_clusters", described(role_status, group_status), {"DBClusterIdentifier": "team-db"})
    wait_until_settled(client, "team-db", ROLE, CancelToken(), poll=0.01)


def test_a_parameter_group_still_pending_a_reboot_stops_up_before_any_trigger(rds):
    from orchestrator.attach.changes import wait_until_settled
    from orchestrator.cancel import CancelToken
    from orchestrator.errors import OperationFailed

    client, stub = rds
    found = _describe("aurora-mysql", "8.0.mysql_aurora.3.10.3")
    found["DBClusters"][0]["DBClusterMembers"][0]["DBClusterParameterGroupStatus"] = "pending-reboot"
    stub.add_response("describe_db_clusters", found, {"DBClusterIdentifier": "team-db"})
    with pytest.raises(OperationFailed, match="team-db-1 have not taken the parameter group yet"):
        wait_until_settled(client, "team-db", ROLE, CancelToken(), timeout=0.0, poll=0.01)


def test_a_copy_still_in_use_until_a_reboot_is_kept_and_down_says_how_to_delete_it(rds):
    client, stub = rds
    stub.add_client_error("delete_db_cluster_parameter_group", service_error_code="InvalidDBParameterGroupState",
                          expected_params={"DBClusterParameterGroupName": "att-team-db"})
    said: list[str] = []
    reverse_change(client, RecordedChange("group-copy:att-team-db", "copy-group", "att-team-db", "att-team-db", True,
                                          "default.aurora-mysql8.0", "att-team-db"), said.append)
    assert said and "delete-db-cluster-parameter-group --db-cluster-parameter-group-name att-team-db" in said[0]
