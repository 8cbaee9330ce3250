"""The sections of config.toml ([project], [network], [database], [bastion], [consumer], [stream],
[sandbox]) as typed, validated, frozen models: each key's rule next to the key. config.py puts them
together and loads the file."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Schemas a user's tables may not live in: ours (bookkeeping, sandbox emulation) and the server's own.
RESERVED_SCHEMAS = frozenset({"rds_streams", "rds_streams_sandbox", "mysql", "sys", "information_schema",
                              "performance_schema"})
DEFAULT_MIGRATIONS = "sql/migrations"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
ENGINE_VERSION = re.compile(r"^(?P<major>5\.7|8\.0)\.mysql_aurora\.(?P<aurora>[23])\.\d+\.\d+$")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)


class Dialect(StrEnum):
    """How the database calls Lambda: follows from the Aurora major version."""

    V2 = "v2"  # Aurora MySQL 2 (5.7): CALL mysql.lambda_async, GRANT INVOKE LAMBDA
    V3 = "v3"  # Aurora MySQL 3 (8.0): lambda_async() native function, AWS_LAMBDA_ACCESS role


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 CIDR such as 10.0.0.0/16 ({err})") from None
    return str(network)


class ProjectConfig(_Section):
    name: str = Field("rds-streams", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,29}$")
    target: Literal["local", "aws"] = "local"
    region: str = Field("eu-west-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")


class NetworkConfig(_Section):
    cidr: str = "10.0.0.0/16"
    egress: Literal["nat", "endpoint"] = "nat"

    @field_validator("cidr")
    @classmethod
    def _room_for_subnets(cls, value: str) -> str:
        network = ipaddress.IPv4Network(_cidr(value))
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"{value} must have a prefix from /16 to /24 (three subnets are carved out of it)")
        return str(network)


class DatabaseConfig(_Section):
    engine_version: str = "8.0.mysql_aurora.3.10.3"
    instance_class: str = Field("db.t4g.medium", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    instances: int = Field(1, ge=1, le=15)
    name: str = Field("flights", pattern=IDENTIFIER.pattern)
    # A folder of V<n>__<name>.sql files applied in order, each once; or (older configs) one `schema`
    # file, applied as migration version 1. Give one of the two.
    migrations: str | None = None
    schema_file: str | None = Field(None, alias="schema")
    deletion: Literal["delete", "snapshot"] = "delete"
    # The RDS CA bundle (PEM) to verify the cluster's TLS certificate through the tunnel; without it,
    # TLS on AWS is required but not verified.
    ca_bundle: str | None = None
    # Attach to an existing Aurora MySQL cluster (identifier or ARN) instead of creating one: the network
    # and database stacks are not created, and `down` removes only what `up` added.
    cluster: str | None = Field(None, pattern=r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:)?[A-Za-z][A-Za-z0-9-]{0,62}$")
    # The Secrets Manager secret (name or ARN) of the master or an admin user of an attached cluster;
    # default: the cluster's own managed master secret.
    admin_secret: str | None = Field(None, min_length=1, max_length=2048)

    @field_validator("engine_version")
    @classmethod
    def _aurora_mysql(cls, value: str) -> str:
        match = ENGINE_VERSION.match(value)
        if not match or (match["major"] == "5.7") != (match["aurora"] == "2"):
            raise ValueError(
                f"{value!r} is not an Aurora MySQL 2 or 3 version; use e.g. 8.0.mysql_aurora.3.10.3 "
                "(v3) or 5.7.mysql_aurora.2.12.5 (v2)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_SCHEMAS:
            raise ValueError(f"{value!r} is reserved (ours or the server's: {', '.join(sorted(RESERVED_SCHEMAS))}); "
                             "name the schema your tables live in")
        return value

    @model_validator(mode="after")
    def _one_schema_source(self) -> DatabaseConfig:
        if self.migrations is not None and self.schema_file is not None:
            raise ValueError("give either migrations (a folder of V<n>__<name>.sql files) or schema (one file), "
                             "not both")
        return self

    @model_validator(mode="after")
    def _attach_keeps_the_cluster(self) -> DatabaseConfig:
        if self.cluster is not None and self.deletion == "snapshot":
            raise ValueError("deletion = \"snapshot\" conflicts with cluster: `down` never deletes an attached "
                             "cluster, so there is no final snapshot to take; remove deletion")
        if self.admin_secret is not None and self.cluster is None:
            raise ValueError("admin_secret names the admin credentials of an attached cluster: set cluster too, "
                             "or remove admin_secret (a cluster of ours has its own managed secret)")
        return self

    @property
    def cluster_identifier(self) -> str | None:
        """The attached cluster's identifier (from an ARN too), or None when we create the cluster."""
        return self.cluster.rsplit(":", 1)[-1] if self.cluster else None

    @property
    def dialect(self) -> Dialect:
        return Dialect.V2 if self.engine_version.startswith("5.7.") else Dialect.V3

    @property
    def parameter_group_family(self) -> str:
        return "aurora-mysql5.7" if self.dialect is Dialect.V2 else "aurora-mysql8.0"


class BastionConfig(_Section):
    # "create": a bastion of ours; "existing": a bastion you run (host, user, key_path, host_key);
    # "none": the database endpoint is reachable directly (e.g. over a VPN). Only "create" without cluster.
    mode: Literal["create", "existing", "none"] = "create"
    instance_type: str = Field("t4g.nano", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    allowed_cidr: str | None = None   # required when mode = "create"
    local_port: int = Field(33306, ge=1024, le=65535)
    host: str | None = Field(None, min_length=1, max_length=253)
    port: int = Field(22, ge=1, le=65535)
    user: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    key_path: str | None = None       # the private key that logs in to the existing bastion
    host_key: str | None = Field(None, pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$")

    @model_validator(mode="after")
    def _mode_settings(self) -> BastionConfig:
        if self.mode == "create" and self.allowed_cidr is None:
            raise ValueError("allowed_cidr is required with mode = \"create\" (who may SSH in to our bastion)")
        if self.mode == "existing":
            missing = [k for k in ("host", "user", "key_path", "host_key") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"mode = \"existing\" needs {', '.join(missing)} (the host key as in known_hosts, "
                                 "e.g. \"ssh-ed25519 AAAA...\": it is checked, never trusted on first use)")
        elif any(getattr(self, k) is not None for k in ("host", "user", "key_path", "host_key")):
            raise ValueError(f"host, user, key_path and host_key describe a bastion you run: they need "
                             f"mode = \"existing\", not {self.mode!r}")
        return self

    @field_validator("allowed_cidr")
    @classmethod
    def _not_the_world(cls, value: str | None) -> str | None:
        if value is None:
            return None
        network = ipaddress.IPv4Network(_cidr(value))
        if network.prefixlen == 0:
            raise ValueError("0.0.0.0/0 is refused: give the address range that may SSH in, e.g. 203.0.113.7/32")
        return str(network)

    @property
    def architecture(self) -> Literal["arm64", "x86_64"]:
        """Graviton families carry a 'g' after the generation digit (t4g, m7g, c7gn); a1 is Graviton 1."""
        family = self.instance_type.split(".", 1)[0]
        return "arm64" if family == "a1" or re.match(r"^[a-z]+\d+[a-z]*g", family) else "x86_64"


# Lambda reserves these environment variable names (and sets them itself).
RESERVED_ENVIRONMENT = re.compile(r"^(AWS_|_HANDLER$|_X_AMZN_TRACE_ID$|LAMBDA_TASK_ROOT$|LAMBDA_RUNTIME_DIR$|TZ$)")


class ConsumerConfig(_Section):
    function_name: str = Field("rds-streams-consumer", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    log_retention_days: int = 7
    # Your own handler: a folder (relative to the config file) with an optional requirements.txt, and
    # its entry point as module.function. Without `source`, the shipped logging consumer is deployed.
    source: str | None = None
    handler: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    # The function's architecture: what requirements.txt is installed for.
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    # The function's environment variables (e.g. the table your handler writes to).
    environment: dict[str, str] = Field(default_factory=dict)
    # Managed policies attached to the function's role, for what your handler calls (e.g. DynamoDB).
    policy_arns: tuple[str, ...] = Field((), strict=False)
    # Where the stream ends: "log" (the shipped logging consumer) or a managed sink our forwarder feeds.
    sink: Literal["log", "kinesis", "sqs", "eventbridge"] = "log"

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("environment")
    @classmethod
    def _lambda_environment(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _)")
            if RESERVED_ENVIRONMENT.match(name):
                raise ValueError(f"{name!r} is reserved by Lambda, which sets it itself; choose another name")
        return value

    @field_validator("policy_arns")
    @classmethod
    def _policy_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not re.match(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+$", arn):
                raise ValueError(f"{arn!r} is not a managed policy ARN such as "
                                 "arn:aws:iam::123456789012:policy/my-replica-writer")
        return value

    @model_validator(mode="after")
    def _handler_needs_source(self) -> ConsumerConfig:
        if self.handler is not None and self.source is None:
            raise ValueError("handler names an entry point in your own code: give source (the folder it is in) too")
        if self.source is not None and self.handler is None:
            raise ValueError("source is your own code: give handler too, its entry point as module.function "
                             "(e.g. \"app.handler\" for def handler(event, context) in app.py)")
        return self


class TableConfig(_Section):
    name: str
    # `up` emits the table's existing rows (a backfill) the first time it streams the table.
    backfill: bool = False
    # Values verify uses for a marker row when the table's constraints defeat generated ones.
    sample: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not value:
            raise ValueError("a table name may not be empty")
        if not IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain identifier (letters, digits, _ and $, not starting with a digit)")
        return value


class StreamConfig(_Section):
    delivery: Literal["direct", "outbox"] = "direct"
    view_type: Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] = "NEW_AND_OLD_IMAGES"
    # the records' eventSource: consumers such as powertools' parser accept only "aws:dynamodb"
    event_source: str = Field("aws:dynamodb", min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$")
    tables: tuple[TableConfig, ...] = Field(min_length=1, strict=False)
    # outbox delivery: records per lambda_sync call (the payload also stays under 1 MB), and how often a
    # batch may fail before it is split (a record failing alone then goes to the dead-letter table)
    # 10,000: in practice the payload limit (1 MB) fills a batch first under load
    batch_size: int = Field(10000, ge=1, le=10000)
    max_attempts: int = Field(3, ge=1, le=100)
    # outbox delivery: relays running in parallel over the key space, each key in one of them, in order
    # (None: RELAY_PARTITIONS). At most OUTBOX_BUCKETS: a key's bucket is what a relay takes.
    relay_partitions: int | None = Field(None, ge=1, le=64)

    @property
    def partitions(self) -> int:
        return self.relay_partitions or RELAY_PARTITIONS

    @field_validator("tables")
    @classmethod
    def _unique_names(cls, tables: tuple[TableConfig, ...]) -> tuple[TableConfig, ...]:
        seen: set[str] = set()
        for table in tables:
            if table.name.lower() in seen:
                raise ValueError(f"table {table.name!r} is listed twice")
            seen.add(table.name.lower())
        return tables


class SandboxConfig(_Section):
    # the round trip of each emulated lambda_async/lambda_sync call in ms (Aurora's is about 35 ms); 0 keeps
    # the sandbox fast, 35 makes its figures Aurora's
    lambda_ms: int = Field(0, ge=0, le=60000)


# Chosen for you: on Aurora a relay spends most of its time waiting for lambda_sync's round trip, so a
# few relays multiply the delivery rate; more than the instance's cores buys little.
RELAY_PARTITIONS = 4
