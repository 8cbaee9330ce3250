"""Credentials from Secrets Manager (moto's server, the sandbox's own control plane) and their repr."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from orchestrator.database.credentials import Credentials, read_secret_credentials
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.processes import free_port

PASSWORD = "s3cr3t-Pa55word!"


@pytest.fixture(scope="module")
def secretsmanager() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=f"http://{host}:{port}",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    server.stop()


def make_secret(client: Any, name: str, value: str) -> str:
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def test_the_password_never_shows_in_repr_or_str() -> None:
    credentials = Credentials("admin", PASSWORD)
    for shown in (repr(credentials), str(credentials), f"{credentials}", f"{[credentials]}"):
        assert PASSWORD not in shown
        assert "admin" in shown
    assert credentials.password == PASSWORD


def test_the_rds_managed_master_secret_is_read(secretsmanager: Any) -> None:
    arn = make_secret(secretsmanager, "rds!cluster-0a1b2c3d", json.dumps({"username": "admin", "password": PASSWORD}))
    assert read_secret_credentials(secretsmanager, arn) == Credentials("admin", PASSWORD)


def test_the_app_user_secret_is_read(secretsmanager: Any) -> None:
    arn = make_secret(secretsmanager, "rds-streams/app-user",
                      json.dumps({"username": "app", "password": PASSWORD, "engine": "mysql"}))
    assert read_secret_credentials(secretsmanager, arn).username == "app"


def test_a_missing_secret_names_the_secret_and_what_to_do(secretsmanager: Any) -> None:
    with pytest.raises(OperationFailed, match="ResourceNotFoundException") as missing:
        read_secret_credentials(secretsmanager, "rds-streams/does-not-exist")
    assert "rds-streams/does-not-exist" in str(missing.value)
    assert "rds-streams up" in (missing.value.hint or "")


@pytest.mark.parametrize(("value", "complaint"), [
    (f"password={PASSWORD}", "is not JSON"),
    (json.dumps([PASSWORD]), "not an object"),
    (json.dumps({"user": "admin", "password": PASSWORD}), "lacks a non-empty string username"),
    (json.dumps({"username": "admin", "password": ""}), "lacks a non-empty string password"),
    (json.dumps({"username": "admin", "password": 97531864}), "lacks a non-empty string password"),
])
def test_a_malformed_secret_is_explained_without_echoing_it(secretsmanager: Any, value: str, complaint: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Only our own loggers: botocore's DEBUG wire log prints every response body, secrets included.
    caplog.set_level(logging.DEBUG, logger="orchestrator")
    arn = make_secret(secretsmanager, f"malformed-{abs(hash(value))}", value)
    with pytest.raises(OperationFailed, match=complaint) as refused:
        read_secret_credentials(secretsmanager, arn)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("orchestrator"))
    shown = str(refused.value) + (refused.value.hint or "") + repr(refused.value) + ours
    assert PASSWORD not in shown and "97531864" not in shown
    # No chained JSONDecodeError either: it carries the document, i.e. the secret, into tracebacks.
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None or refused.value.__suppress_context__
