"""Play a team's existing Aurora cluster in the sandbox, so an attach can be rehearsed and tested.

    python -m orchestrator.sandbox.existing_cluster create --config config.toml
    python -m orchestrator.sandbox.existing_cluster remove --config config.toml

`create` starts the sandbox's services (as `up` would) and, outside our stacks, through moto's APIs
as a team would have: a VPC with private subnets (and a public one with an internet gateway, where
`[bastion] mode = "create"` puts our bastion), a security group, a subnet group, a cluster parameter
group of the team's own, and the cluster `[database] cluster` names with its managed master secret.
The cluster's endpoint is bound to the sandbox's MariaDB, which then holds what a team's cluster
holds: its master user, the database `[database] name` with tables, rows, a user, a trigger, a view
and a procedure (sql/sandbox/existing_cluster.sql). Aurora's Lambda functions are emulated there, as
Aurora provides them. `--engine aurora-postgresql` makes a cluster `up` must refuse.
`--bastion` also plays the team's own bastion (the sandbox's sshd with a key of the team's), for
`[bastion] mode = "existing"`. `remove` stops the sandbox and deletes it, the played cluster with it
(`down` keeps it: it is not ours).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import Config, load_config
from orchestrator.ui import UI

TEAM_USER = "reporting"
TEAM_TAG = {"Key": "team", "Value": "payments"}
VPC_CIDR = "10.42.0.0/16"


@dataclass(frozen=True)
class PlayedCluster:
    identifier: str
    parameter_group: str
    vpc_id: str
    security_group_id: str


def team_bastion(config: Config, ui: UI) -> dict[str, object]:
    """The sandbox's sshd as a bastion the team runs ([bastion] mode = "existing"): a key of the team's,
    written beside the config (0600) and allowed one forward, to the cluster; returns the config lines."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from orchestrator.sandbox.manager import Sandbox
    from orchestrator.sandbox.sshd import SshServer, restricted_key_line

    state = Sandbox(config).start(ui)
    key = Ed25519PrivateKey.generate()
    path = config.source.parent / "team-bastion.key"
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    server = SshServer(state.sshd_dir, state.sshd_port)
    server.authorized_keys_path.write_text(restricted_key_line(public, f"127.0.0.1:{state.mariadb_port}") + "\n")
    settings: dict[str, object] = {"mode": "existing", "host": "127.0.0.1", "port": state.sshd_port,
                                   "user": state.sshd_user, "key_path": path.name, "host_key": state.sshd_host_key}
    ui.say("the team's bastion is the sandbox's sshd; for {section} set:", section='[bastion] mode = "existing"')
    for name, value in settings.items():
        ui.say("  {name} = {value}", name=name, value=f'"{value}"' if isinstance(value, str) else value)
    return settings


def create(config: Config, ui: UI, *, engine: str = "aurora-mysql", seed: str | None = None,
           team_parameters: dict[str, str] | None = None) -> PlayedCluster:
    from orchestrator.sandbox.manager import Sandbox

    identifier = config.database.cluster_identifier or "team-db"
    state = Sandbox(config).start(ui)
    aws = state.aws()
    played = _create_in_moto(aws, config, identifier, engine, team_parameters)
    if engine == "aurora-mysql":
        _bind_and_seed(state, aws, config, identifier, seed)
    ui.say("[green]created[/] the existing cluster {cluster} ({engine}) outside our stacks, with its data",
           cluster=identifier, engine=engine)
    return played


def _create_in_moto(aws: Any, config: Config, identifier: str, engine: str,
                    team_parameters: dict[str, str] | None) -> PlayedCluster:
    ec2, rds = aws.client("ec2"), aws.client("rds")
    region = config.project.region
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    private = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{region}{zone}")
               ["Subnet"]["SubnetId"] for i, zone in ((1, "a"), (2, "b"))]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24", AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=table, SubnetId=public)
    group = ec2.create_security_group(GroupName=f"{identifier}-db", Description="the team's database",
                                      VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName=f"{identifier}-subnets", DBSubnetGroupDescription="the team's",
                               SubnetIds=private)
    family = ("aurora-postgresql16" if engine != "aurora-mysql" else config.database.parameter_group_family)
    parameter_group = f"{identifier}-params"
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=parameter_group, DBParameterGroupFamily=family,
                                          Description="the team's own parameters", Tags=[TEAM_TAG])
    parameters = team_parameters if team_parameters is not None else {"binlog_format": "ROW", "event_scheduler": "OFF"}
    if parameters:
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=parameter_group, Parameters=[
            {"ParameterName": k, "ParameterValue": v, "ApplyMethod": "pending-reboot"} for k, v in parameters.items()])
    version = config.database.engine_version if engine == "aurora-mysql" else "16.4"
    rds.create_db_cluster(
        DBClusterIdentifier=identifier, Engine=engine, EngineVersion=version, MasterUsername="team_admin",
        ManageMasterUserPassword=True, DatabaseName=config.database.name, DBSubnetGroupName=f"{identifier}-subnets",
        VpcSecurityGroupIds=[group], DBClusterParameterGroupName=parameter_group, StorageEncrypted=True,
        Tags=[TEAM_TAG])
    rds.create_db_instance(DBInstanceIdentifier=f"{identifier}-1", DBClusterIdentifier=identifier, Engine=engine,
                           DBInstanceClass=config.database.instance_class)
    return PlayedCluster(identifier, parameter_group, vpc, group)


def _bind_and_seed(state: Any, aws: Any, config: Config, identifier: str, seed: str | None) -> None:
    from orchestrator.database.credentials import read_secret_credentials
    from orchestrator.database.scripts import run_script
    from orchestrator.database.sqltext import quote_identifier
    from orchestrator.resources import sql_text
    from orchestrator.sandbox.aurora_emulation import install_emulation
    from orchestrator.sandbox.binding import ensure_master_user

    cluster = aws.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    master = read_secret_credentials(aws.client("secretsmanager"), cluster["MasterUserSecret"]["SecretArn"])
    database = config.database.name
    root = state.root_connection()
    try:
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)} CHARACTER SET utf8mb4")
        install_emulation(root, [database])  # Aurora's own lambda_async/lambda_sync and AWS_LAMBDA_ACCESS
        ensure_master_user(root, master)
        root.select_db(database)
        run_script(root, Path(seed).read_text() if seed else sql_text("sandbox/existing_cluster.sql"))
        with root.cursor() as cursor:
            cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (TEAM_USER, secrets.token_urlsafe(18)))
            cursor.execute(f"GRANT SELECT ON {quote_identifier(database)}.* TO %s@'%%'", (TEAM_USER,))
    finally:
        root.close()


def remove(config: Config, ui: UI) -> list[str]:
    from orchestrator.sandbox.manager import Sandbox

    stopped = Sandbox(config).stop()
    ui.say("[green]stopped[/] {what}; the played cluster is gone with the sandbox",
           what=", ".join(stopped) if stopped else "nothing (no sandbox was running)")
    return stopped


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from orchestrator.errors import RdsStreamsError

    parser = argparse.ArgumentParser(prog="python -m orchestrator.sandbox.existing_cluster",
                                     description="Play an existing Aurora cluster in the local sandbox.")
    parser.add_argument("action", choices=("create", "remove"))
    parser.add_argument("--config", default="config.toml", help="a local-target config naming [database] cluster")
    parser.add_argument("--engine", default="aurora-mysql", choices=("aurora-mysql", "aurora-postgresql"))
    parser.add_argument("--seed", help="SQL run in the cluster's database instead of the shipped example")
    parser.add_argument("--bastion", action="store_true", help="also play the team's own bastion (prints the "
                        "[bastion] settings for mode = \"existing\")")
    args = parser.parse_args(argv)
    ui = UI(console=Console())
    try:
        config = load_config(args.config)
        if config.project.target != "local":
            print("existing_cluster plays a cluster in the local sandbox: set [project] target = \"local\"",
                  file=sys.stderr)
            return 2
        if args.action == "create":
            create(config, ui, engine=args.engine, seed=args.seed)
            if args.bastion:
                team_bastion(config, ui)
        else:
            remove(config, ui)
    except RdsStreamsError as err:
        print(f"{err}" + (f"\n{err.hint}" if err.hint else ""), file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
