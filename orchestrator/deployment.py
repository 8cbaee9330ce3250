"""What the stacks describe, as one value (endpoint, secrets, key, function, log group), and the
database session built on it: the tunnel through the bastion and connections through it.

On AWS the values come from the stack outputs. In the sandbox the same outputs are bound to the
local services: the cluster endpoint to MariaDB, the bastion to sshd, whose host key is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.aws import AwsClients
from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.ui import UI

T = TypeVar("T")
AWS_BASTION_USER = "ec2-user"  # Amazon Linux 2023's login user


@dataclass(frozen=True)
class SinkRef:
    kind: str     # kinesis | sqs | eventbridge
    target: str   # the stream's name, the queue's URL or the bus's name
    arn: str


def sink_ref(consumer_outputs: dict[str, str]) -> SinkRef | None:
    if not consumer_outputs.get("SinkKind"):
        return None
    return SinkRef(kind=consumer_outputs["SinkKind"], target=consumer_outputs["SinkTarget"],
                   arn=consumer_outputs["SinkArn"])


@dataclass(frozen=True)
class Deployment:
    target: str
    region: str
    account_id: str
    cluster_id: str
    db_host: str                 # as the bastion reaches it
    db_port: int
    master_secret_arn: str
    app_secret_arn: str
    bastion_host: str
    bastion_port: int
    bastion_user: str
    bastion_instance_id: str
    key_pair_id: str
    function_arn: str
    log_group: str
    sandbox_host_key: str | None = None  # the sandbox's sshd key; on AWS it is read from the console output
    reach: str = "bastion"               # "bastion": an SSH tunnel | "direct": [bastion] mode = "none"
    bastion_key_path: str | None = None  # [bastion] mode = "existing": the key file and the known host key
    bastion_host_key: str | None = None
    sink: SinkRef | None = None          # where our forwarder puts the records, when [consumer] sink is not "log"

    @property
    def event_source_arn(self) -> str:
        """Per table, like a DynamoDB stream ARN; {schema} and {table} are filled in per trigger."""
        return f"arn:aws:rds:{self.region}:{self.account_id}:cluster:{self.cluster_id}/stream/{{schema}}.{{table}}"


def _require_outputs(config: Config, outputs: dict[str, dict[str, str]], needed: dict[str, tuple[str, ...]]) -> None:
    missing = [f"{config.stack_name(k)}.{o}" for k, names in needed.items() for o in names if not outputs[k].get(o)]
    if missing:
        raise OperationFailed(f"the stacks lack outputs the database steps need: {', '.join(missing)}",
                              hint="run `rds-streams up` so the stacks are updated to this version's templates")


def build_deployment(config: Config, outputs: dict[str, dict[str, str]], aws: AwsClients,
                     sandbox: Any | None = None, *, attached: Any | None = None) -> Deployment:
    if attached is not None:
        return _attached_deployment(config, outputs, attached, sandbox)
    database, consumer = outputs["database"], outputs["consumer"]
    needed = {"database": ("ClusterIdentifier", "ClusterEndpoint", "ClusterPort", "MasterSecretArn", "AppSecretArn",
                           "BastionInstanceId", "KeyPairId") + (() if sandbox else ("BastionPublicIp",)),
              "consumer": ("FunctionArn", "LogGroupName")}
    _require_outputs(config, outputs, needed)
    function_arn = consumer["FunctionArn"]
    common = dict(
        target=config.project.target, region=config.project.region, account_id=function_arn.split(":")[4],
        cluster_id=database["ClusterIdentifier"], master_secret_arn=database["MasterSecretArn"],
        app_secret_arn=database["AppSecretArn"], bastion_instance_id=database["BastionInstanceId"],
        key_pair_id=database["KeyPairId"], function_arn=function_arn, log_group=consumer["LogGroupName"],
        sink=sink_ref(consumer),
    )
    if sandbox is not None:
        return Deployment(**common, db_host="127.0.0.1", db_port=sandbox.mariadb_port, bastion_host="127.0.0.1",
                          bastion_port=sandbox.sshd_port, bastion_user=sandbox.sshd_user,
                          sandbox_host_key=sandbox.sshd_host_key)
    return Deployment(**common, db_host=database["ClusterEndpoint"], db_port=int(database["ClusterPort"]),
                      bastion_host=database["BastionPublicIp"], bastion_port=22, bastion_user=AWS_BASTION_USER)


def _attached_deployment(config: Config, outputs: dict[str, dict[str, str]], cluster: Any,
                         sandbox: Any | None) -> Deployment:
    """An attached cluster: its endpoint and admin secret from AWS, ours from the attachment stack, and
    the way in from [bastion] mode."""
    attachment, consumer = outputs["attachment"], outputs["consumer"]
    mode = config.bastion.mode
    needed = {"attachment": ("AppSecretArn",) + (("BastionInstanceId", "KeyPairId") if mode == "create" else ())
              + (("BastionPublicIp",) if mode == "create" and not sandbox else ()),
              "consumer": ("FunctionArn", "LogGroupName")}
    _require_outputs(config, outputs, needed)
    function_arn = consumer["FunctionArn"]
    common: dict[str, Any] = dict(
        target=config.project.target, region=config.project.region, account_id=function_arn.split(":")[4],
        cluster_id=cluster.identifier, master_secret_arn=config.database.admin_secret or cluster.master_secret_arn,
        app_secret_arn=attachment["AppSecretArn"], function_arn=function_arn, log_group=consumer["LogGroupName"],
        db_host="127.0.0.1" if sandbox else cluster.endpoint, db_port=sandbox.mariadb_port if sandbox else cluster.port,
        bastion_instance_id=attachment.get("BastionInstanceId", ""), key_pair_id=attachment.get("KeyPairId", ""),
        sink=sink_ref(consumer),
    )
    if mode == "none":
        return Deployment(**common, bastion_host="", bastion_port=0, bastion_user="", reach="direct")
    if mode == "existing":
        return Deployment(**common, bastion_host=config.bastion.host or "", bastion_port=config.bastion.port,
                          bastion_user=config.bastion.user or "", bastion_key_path=str(config.bastion_key_path),
                          bastion_host_key=config.bastion.host_key)
    if sandbox is not None:
        return Deployment(**common, bastion_host="127.0.0.1", bastion_port=sandbox.sshd_port,
                          bastion_user=sandbox.sshd_user, sandbox_host_key=sandbox.sshd_host_key)
    return Deployment(**common, bastion_host=attachment["BastionPublicIp"], bastion_port=22,
                      bastion_user=AWS_BASTION_USER)


@dataclass(frozen=True)
class DirectRoute:
    """[bastion] mode = "none": the endpoint is reachable as it is (a VPN, a peered network); no tunnel."""

    local_host: str
    local_port: int
    connect_seconds: float = 0.0

    def ensure_open(self) -> None:
        return None

    def close(self) -> None:
        return None


class DatabaseSession:
    """The tunnel and the master connection through it, opened on first use and reopened when lost."""

    def __init__(self, config: Config, deployment: Deployment, aws: AwsClients, ui: UI,
                 local_port: int = 0) -> None:
        self.config = config
        self.deployment = deployment
        self.aws = aws
        self.ui = ui
        self.local_port = local_port
        self._tunnel: Any = None
        self._master: Any = None
        self._credentials: dict[str, Any] = {}

    def trusted_host_keys(self) -> Any:
        from orchestrator.database.hostkeys import TrustedHostKeys, bastion_host_keys

        if self.deployment.sandbox_host_key:
            return TrustedHostKeys.from_keys([self.deployment.sandbox_host_key], source="the sandbox's sshd")
        if self.deployment.bastion_host_key:
            return TrustedHostKeys.from_keys([self.deployment.bastion_host_key], source="[bastion] host_key")
        return bastion_host_keys(self.aws.client("ec2"), self.deployment.bastion_instance_id, say=self.ui.say)

    def private_key(self) -> Any:
        from orchestrator.database.hostkeys import load_private_key

        if self.deployment.bastion_key_path:
            from pathlib import Path

            return load_private_key(Path(self.deployment.bastion_key_path).read_text())
        name = f"/ec2/keypair/{self.deployment.key_pair_id}"
        value = self.aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        return load_private_key(value)

    def tunnel(self) -> Any:
        if self._tunnel is None and self.deployment.reach == "direct":
            self._tunnel = DirectRoute(self.deployment.db_host, self.deployment.db_port)
        if self._tunnel is None:
            from orchestrator.database.tunnel import TunnelSpec, open_tunnel

            d = self.deployment
            self._tunnel = open_tunnel(TunnelSpec(
                bastion_host=d.bastion_host, bastion_port=d.bastion_port, username=d.bastion_user,
                private_key=self.private_key(), host_keys=self.trusted_host_keys(), remote_host=d.db_host,
                remote_port=d.db_port, local_port=self.local_port,
            ))
        return self._tunnel

    def tls(self) -> Any:
        from orchestrator.database.connect import TlsPolicy

        return TlsPolicy.for_target(self.config.project.target, ca_bundle=self.config.ca_bundle_path,
                                    server_name=self.deployment.db_host if self.config.ca_bundle_path else None)

    def credentials(self, which: str) -> Any:
        """`master` or `app`, read from Secrets Manager once per session (every connect needs them)."""
        from orchestrator.database.credentials import read_secret_credentials

        if which not in self._credentials:
            arn = self.deployment.master_secret_arn if which == "master" else self.deployment.app_secret_arn
            self._credentials[which] = read_secret_credentials(self.aws.client("secretsmanager"), arn)
        return self._credentials[which]

    def connect(self, which: str = "master", database: str | None = None) -> Any:
        from orchestrator.database.connect import connect

        tunnel = self.tunnel()
        return connect(tunnel.local_host, tunnel.local_port, self.credentials(which), database=database,
                       tls=self.tls())

    def master(self) -> Any:
        if self._master is None or not self._master.open:
            self._master = self.connect("master")
        return self._master

    def run(self, step: Callable[[Any], T], what: str) -> T:
        """Run `step(master connection)`; if the connection breaks, reopen the tunnel and retry once."""
        from orchestrator.database.tunnel import run_with_reconnect

        def attempt() -> T:
            try:
                return step(self.master())
            except Exception:
                self._drop_master()
                raise

        return run_with_reconnect(self.tunnel(), attempt, what=what)

    def _drop_master(self) -> None:
        if self._master is not None:
            try:
                self._master.close()
            except Exception:  # already broken: nothing to close cleanly
                pass
            self._master = None

    def close(self) -> None:
        self._drop_master()
        if self._tunnel is not None:
            self._tunnel.close()
            self._tunnel = None
