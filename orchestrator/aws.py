"""boto3 clients for the configured region.

boto3 itself honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), AWS_PROFILE and AWS_REGION,
so pointing the tool at moto or at a profile needs nothing here. The sandbox passes its moto
endpoint explicitly instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import Config
from orchestrator.errors import OperationFailed

# The sandbox's moto server accepts any credentials; these never reach AWS.
CLI_PROFILE = "rds-streams-sandbox"
SANDBOX_CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}


@dataclass
class AwsClients:
    """One boto3 session and a cache of its clients (boto3 clients are thread-safe, sessions are not)."""

    region: str
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = field(default=None, repr=False)  # the sandbox's own key for its moto
    # The same key as an aws CLI credentials file (0600, under .rds-streams/), for commands we print:
    # they name the file, never the key.
    credentials_file: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import boto3

        credentials = self.credentials or (SANDBOX_CREDENTIALS if self.endpoint_url else {})
        self._session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or self.region,
                                              **credentials)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config as BotoConfig

            options: dict[str, Any] = {"config": BotoConfig(retries={"max_attempts": 5, "mode": "standard"},
                                                            connect_timeout=5, read_timeout=60)}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            self._clients[service] = self._session.client(service, **options)
        return self._clients[service]

    def cli_environment(self) -> dict[str, str]:
        """What the aws CLI needs in its environment to reach what these clients reach (the sandbox's moto
        takes the sandbox's credentials; on AWS, the user's own environment already has what it needs)."""
        if not self.endpoint_url:
            return {}
        if self.credentials_file:
            return {"AWS_SHARED_CREDENTIALS_FILE": self.credentials_file, "AWS_PROFILE": CLI_PROFILE}
        return {"AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"]}

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def clients_for(config: Config, endpoint_url: str | None = None) -> AwsClients:
    return AwsClients(region=config.project.region, endpoint_url=endpoint_url)


def describe_aws_error(err: Exception, doing: str) -> OperationFailed:
    """A botocore error as a message the user can act on."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(err, NoCredentialsError):
        return OperationFailed(f"{doing}: no AWS credentials found",
                               hint="set AWS_PROFILE or run `aws configure`; for the sandbox use target = \"local\"")
    if isinstance(err, NoRegionError):
        return OperationFailed(f"{doing}: no AWS region", hint="set [project] region in config.toml")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return OperationFailed(f"{doing}: {error.get('Code', 'Error')}: {error.get('Message', err)}")
    return OperationFailed(f"{doing}: {err}")
