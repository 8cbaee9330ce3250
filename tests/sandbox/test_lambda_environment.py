"""The environment the sandbox's runner gives a function's worker: what Lambda gives, with the
sandbox's own credentials and moto's endpoint, never what points the handler's SDK at real AWS."""

from __future__ import annotations

import json
import subprocess
import sys

from orchestrator.sandbox.runner import lambda_environment
from orchestrator.sandbox.state import SandboxState


def test_a_worker_gets_lambdas_variables_the_sandboxs_credentials_and_moto_endpoint(tmp_path, monkeypatch):
    state = SandboxState(root=tmp_path, region="eu-central-1", consumer_stack="x-consumer", moto_port=45678,
                         mariadb_port=1, sshd_port=2)
    (tmp_path / "credentials").write_text(json.dumps({"aws_access_key_id": "AKIASANDBOX",
                                                      "aws_secret_access_key": "sandbox-secret"}))
    for name, value in {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "t", "AWS_ENDPOINT_URL_DYNAMODB": "https://x",
                        "AWS_ACCESS_KEY_ID": "AKIAREAL", "KEEP_ME": "yes"}.items():
        monkeypatch.setenv(name, value)
    environment = lambda_environment(state, "fn", memory_mb=256, handler="app.handler", variables={"TABLE": "t1"})
    assert {k: environment[k] for k in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                        "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                        "_HANDLER", "TABLE", "KEEP_ME")} == {
        "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "AKIASANDBOX",
        "AWS_SECRET_ACCESS_KEY": "sandbox-secret", "AWS_ENDPOINT_URL": "http://127.0.0.1:45678",
        "AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "_HANDLER": "app.handler",
        "TABLE": "t1", "KEEP_ME": "yes"}
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"} & set(environment)
    # boto3 in that environment resolves to the sandbox's moto with the sandbox's key
    probe = ("import boto3; c = boto3.client('dynamodb'); "
             "print(c.meta.endpoint_url, c.meta.region_name, c._request_signer._credentials.access_key)")
    out = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["http://127.0.0.1:45678", "eu-central-1", "AKIASANDBOX"]
