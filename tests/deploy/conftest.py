"""A moto server (with our CloudFormation models) as the AWS control plane, reset for every test."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.factories import write_config


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from orchestrator.sandbox import moto_models

    moto_models.register()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """An empty moto account; returns a client factory for it. The tool finds moto via AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)

    def client(service: str) -> Any:
        return boto3.client(service, region_name="eu-west-1", endpoint_url=moto_url)

    return client


@pytest.fixture
def aws_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a target = "aws" config with overrides; returns its path."""

    def make(overrides: dict | None = None) -> Path:
        base = {"project": {"target": "aws"}}
        for key, value in (overrides or {}).items():
            base[key] = {**base.get(key, {}), **value}
        return write_config(tmp_path, base)

    return make
