"""The attached cluster as AWS describes it, refused clearly (exit 2) when we cannot stream it, and
what its network lacks to reach Lambda (a NAT route or a Lambda interface endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import ENGINE_VERSION, Config, Dialect
from orchestrator.errors import ConfigError


@dataclass(frozen=True)
class AttachedCluster:
    identifier: str
    arn: str
    engine_version: str
    endpoint: str
    port: int
    parameter_group: str
    master_secret_arn: str | None
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    role_arns: tuple[str, ...]
    members: tuple[str, ...]            # instance identifiers

    @property
    def dialect(self) -> Dialect:
        return Dialect.V2 if self.engine_version.startswith("5.7.") else Dialect.V3

    @property
    def uses_default_group(self) -> bool:
        """AWS's default groups cannot be modified: we copy one and attach the copy."""
        return self.parameter_group.startswith("default.")


@dataclass(frozen=True)
class LambdaRoute:
    """How the cluster's subnets reach Lambda, and whether the attachment stack must add an endpoint."""

    nat_subnets: tuple[str, ...]
    existing_endpoint: str | None
    subnet_ids: tuple[str, ...]

    @property
    def needs_endpoint(self) -> bool:
        return self.existing_endpoint is None and set(self.nat_subnets) != set(self.subnet_ids)

    @property
    def reason(self) -> str:
        if self.existing_endpoint:
            return f"the VPC already has a Lambda interface endpoint ({self.existing_endpoint}): none added"
        if not self.needs_endpoint:
            return "every subnet of the cluster routes to a NAT gateway: no Lambda endpoint needed"
        lacking = sorted(set(self.subnet_ids) - set(self.nat_subnets))
        return (f"subnet(s) {', '.join(lacking)} have no NAT route and the VPC has no Lambda endpoint of its own: "
                "the attachment stack holds a Lambda interface endpoint")


def describe_cluster(rds: Any, config: Config) -> AttachedCluster:
    """The cluster `[database] cluster` names; ConfigError (exit 2, nothing touched) when it cannot be streamed."""
    from botocore.exceptions import ClientError

    where = f"{config.source}: [database] cluster"
    name = config.database.cluster or ""
    try:
        found = rds.describe_db_clusters(DBClusterIdentifier=config.database.cluster_identifier)["DBClusters"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("DBClusterNotFoundFault", "DBClusterNotFound"):
            found = []
        else:
            raise
    if not found:
        raise ConfigError(f"{where}: no cluster {name!r} in {config.project.region} for this account",
                          hint="check the identifier (aws rds describe-db-clusters) and [project] region")
    raw = found[0]
    engine, version = raw.get("Engine", ""), raw.get("EngineVersion", "")
    if engine != "aurora-mysql" or not ENGINE_VERSION.match(version):
        raise ConfigError(f"{where}: {name!r} is {engine} {version}, not Aurora MySQL 2 or 3: rds-streams streams "
                          "Aurora MySQL only (its triggers call Lambda through lambda_async)",
                          hint="name an aurora-mysql cluster, or remove [database] cluster to create one of ours")
    cluster = AttachedCluster(
        identifier=raw["DBClusterIdentifier"], arn=raw["DBClusterArn"], engine_version=version,
        endpoint=raw["Endpoint"], port=int(raw.get("Port") or 3306),
        parameter_group=raw.get("DBClusterParameterGroup", ""),
        master_secret_arn=(raw.get("MasterUserSecret") or {}).get("SecretArn"),
        vpc_id="", subnet_ids=(), security_group_ids=tuple(g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups", [])),
        role_arns=tuple(r["RoleArn"] for r in raw.get("AssociatedRoles", [])),
        members=tuple(m["DBInstanceIdentifier"] for m in raw.get("DBClusterMembers", [])),
    )
    if cluster.dialect is not config.database.dialect:
        raise ConfigError(f"{where}: {name!r} runs {version} ({cluster.dialect.value}) but [database] engine_version "
                          f"is {config.database.engine_version} ({config.database.dialect.value}): the triggers are "
                          "generated for the engine_version's dialect",
                          hint=f"set [database] engine_version = \"{version}\"")
    if config.database.admin_secret is None and cluster.master_secret_arn is None:
        raise ConfigError(f"{where}: {name!r} has no RDS-managed master secret, and [database] admin_secret is not set",
                          hint="store the master (or an admin) user's credentials in Secrets Manager as "
                               "{\"username\": ..., \"password\": ...} and name it in [database] admin_secret")
    return _with_network(rds, cluster, raw)


def _with_network(rds: Any, cluster: AttachedCluster, raw: dict[str, Any]) -> AttachedCluster:
    from dataclasses import replace

    group_name = raw.get("DBSubnetGroup")
    if not group_name:
        return cluster
    groups = rds.describe_db_subnet_groups(DBSubnetGroupName=group_name)["DBSubnetGroups"]
    if not groups:
        return cluster
    group = groups[0]
    return replace(cluster, vpc_id=group.get("VpcId", ""),
                   subnet_ids=tuple(s["SubnetIdentifier"] for s in group.get("Subnets", [])))


def lambda_route(ec2: Any, cluster: AttachedCluster, region: str, *, ignore: tuple[str, ...] = ()) -> LambdaRoute:
    """Reads route tables and endpoints only: which subnets route 0.0.0.0/0 to a NAT, and whether the VPC
    already has a Lambda interface endpoint (other than `ignore`: ours)."""
    if not cluster.vpc_id:
        return LambdaRoute(nat_subnets=(), existing_endpoint=None, subnet_ids=cluster.subnet_ids)
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [cluster.vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    nat: list[str] = []
    for subnet in cluster.subnet_ids:
        table = next((t for t in tables if any(a.get("SubnetId") == subnet for a in t.get("Associations", []))), main)
        if table is not None and any(r.get("NatGatewayId") and r.get("DestinationCidrBlock") == "0.0.0.0/0"
                                     and r.get("State", "active") == "active" for r in table.get("Routes", [])):
            nat.append(subnet)
    endpoints = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [cluster.vpc_id]},
        {"Name": "service-name", "Values": [f"com.amazonaws.{region}.lambda"]},
    ]).get("VpcEndpoints", [])
    usable = [e["VpcEndpointId"] for e in endpoints if e.get("State", "available").lower() in ("available", "pending")
              and e["VpcEndpointId"] not in ignore]
    return LambdaRoute(nat_subnets=tuple(nat), existing_endpoint=usable[0] if usable else None,
                       subnet_ids=cluster.subnet_ids)


def public_subnet(ec2: Any, cluster: AttachedCluster) -> str | None:
    """A subnet of the cluster's VPC that routes 0.0.0.0/0 to an internet gateway: where our bastion goes."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [cluster.vpc_id]}])["Subnets"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [cluster.vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    for subnet in sorted(subnets, key=lambda s: s["SubnetId"]):
        table = next((t for t in tables if any(a.get("SubnetId") == subnet["SubnetId"]
                                               for a in t.get("Associations", []))), main)
        if table is not None and any(str(r.get("GatewayId", "")).startswith("igw-")
                                     and r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", [])):
            return subnet["SubnetId"]
    return None
