"""Database credentials from Secrets Manager, in a value that never prints its password.

Two secrets matter: the RDS-managed master secret (`rds!cluster-...`, used to administer the
database and to install the triggers, which then run as that user) and the app-user secret the
database stack creates. Both hold JSON `{"username": ..., "password": ...}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OperationFailed


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        # Tracebacks, logs and Rich pretty-printing all go through repr; the password must not.
        return f"Credentials(username={self.username!r}, password='***')"

    __str__ = __repr__


def read_secret_credentials(secretsmanager_client: Any, secret_arn: str) -> Credentials:
    """Read `{"username", "password"}` from the secret; errors name the secret, never its value."""
    from botocore.exceptions import ClientError

    try:
        response = secretsmanager_client.get_secret_value(SecretId=secret_arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        hints = {
            "ResourceNotFoundException": "the database stack creates it; run `rds-streams up` (or check the region)",
            "AccessDeniedException": "your AWS identity needs secretsmanager:GetSecretValue (and kms:Decrypt) on it",
            "DecryptionFailure": "your AWS identity needs kms:Decrypt on the secret's KMS key",
        }
        raise OperationFailed(f"cannot read the secret {secret_arn}: {code or err}",
                              hint=hints.get(code, "check the secret in the Secrets Manager console")) from None
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise OperationFailed(f"the secret {secret_arn} has no SecretString (binary secrets are not supported)",
                              hint='store JSON {"username": ..., "password": ...} as its secret string')
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        # The decode error quotes the document; the document is the secret.
        raise OperationFailed(f"the secret {secret_arn} is not JSON",
                              hint='it must be {"username": ..., "password": ...}') from None
    if not isinstance(value, dict):
        raise OperationFailed(f"the secret {secret_arn} is JSON but not an object",
                              hint='it must be {"username": ..., "password": ...}')
    problems = [key for key in ("username", "password") if not isinstance(value.get(key), str) or not value.get(key)]
    if problems:
        present = ", ".join(sorted(value)) or "none"
        raise OperationFailed(f"the secret {secret_arn} lacks a non-empty string {' and '.join(problems)} "
                              f"(keys present: {present})",
                              hint='it must be {"username": ..., "password": ...}')
    return Credentials(value["username"], value["password"])
