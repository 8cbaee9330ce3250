"""Your own consumer: its config keys, the reproducible deployment package (dependencies installed for
Lambda's platform, cached), and the templates that deploy it through the assets bucket."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from blueprints import render_all
from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.package.consumer import build_consumer_package, package_key
from orchestrator.package.zipper import zip_package
from tests.factories import write_config, write_consumer, write_wheel

HANDLER = "import json\n\ndef handler(event, context):\n    print(json.dumps(event))\n"
OWN = {"consumer": {"source": "consumer", "handler": "app.handler"}}


def own_config(tmp_path: Path, requirements: str = "", **consumer: object) -> Path:
    write_consumer(tmp_path / "consumer", HANDLER, requirements)
    return write_config(tmp_path, {"consumer": {**OWN["consumer"], **consumer}})


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_source_without_handler_and_handler_without_source_are_refused(tmp_path):
    write_consumer(tmp_path / "consumer", HANDLER)
    assert "[consumer]" in (message := refused(write_config(tmp_path, {"consumer": {"source": "consumer"}})))
    assert "give handler too" in message
    assert "give source" in refused(write_config(tmp_path, {"consumer": {"handler": "app.handler"}}))


def test_a_missing_source_folder_or_handler_module_is_refused_naming_the_key(tmp_path):
    path = write_config(tmp_path, OWN)
    assert "[consumer] source: folder 'consumer' not found" in refused(path)
    write_consumer(tmp_path / "consumer", HANDLER)
    path = write_config(tmp_path, {"consumer": {"source": "consumer", "handler": "main.handler"}})
    assert "[consumer] handler: 'main.handler' names module main.py" in refused(path)
    path = write_config(tmp_path, {"consumer": {"source": "consumer", "handler": "app"}})
    assert "[consumer] handler" in refused(path)


def test_reserved_environment_names_and_bad_policy_arns_are_refused(tmp_path):
    assert "reserved by Lambda" in refused(own_config(tmp_path, environment={"AWS_REGION": "x"}))
    assert "not a managed policy ARN" in refused(own_config(tmp_path, policy_arns=["arn:aws:iam::*:policy/x"]))


def test_the_same_files_give_the_same_bytes_whatever_their_times_and_caches(tmp_path):
    folder = write_consumer(tmp_path / "consumer", HANDLER, "")
    first = zip_package([folder])
    os.utime(folder / "app.py", (1_000_000_000, 1_000_000_000))
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0cache")
    assert zip_package([folder]) == first
    (folder / "app.py").write_text(HANDLER + "# one more line\n")
    changed = zip_package([folder])
    assert changed.sha256 != first.sha256
    entries = zipfile.ZipFile(io.BytesIO(changed.data)).infolist()
    assert [e.filename for e in entries] == ["app.py", "requirements.txt"]
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {e.external_attr >> 16 & 0o777 for e in entries} == {0o644}


def test_requirements_are_installed_for_lambda_into_the_package_and_cached(tmp_path):
    wheels = write_wheel(tmp_path / "wheels", "pigtail", "1.2.3", "def shout(t):\n    return t.upper()\n").parent
    config = load_config(own_config(tmp_path, f"--no-index\n--find-links {wheels}\npigtail==1.2.3\n"))
    package = build_consumer_package(config)
    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    assert {"app.py", "requirements.txt", "pigtail.py", "pigtail-1.2.3.dist-info/METADATA"} <= set(names)
    assert not [n for n in names if n.endswith(".pyc") or n.endswith(".complete")]
    assert package_key(config, package) == f"rds-streams/rds-streams-consumer/{package.sha256}.zip"
    (wheels / "pigtail-1.2.3-py3-none-any.whl").unlink()  # a second build must come from the cache
    assert build_consumer_package(config) == package


def test_a_requirement_pip_cannot_install_fails_naming_the_file_and_the_platform(tmp_path):
    from orchestrator.errors import OperationFailed

    config = load_config(own_config(tmp_path, f"--no-index\n--find-links {tmp_path}\nno-such-thing==9.9\n"))
    with pytest.raises(OperationFailed) as caught:
        build_consumer_package(config)
    assert "requirements.txt" in str(caught.value) and "manylinux2014_x86_64" in str(caught.value)


def test_own_consumer_templates_pass_cfn_lint_and_point_at_the_package(tmp_path):
    config = load_config(own_config(tmp_path, environment={"REPLICA_TABLE": "routes"}, architecture="arm64",
                                    policy_arns=["arn:aws:iam::123456789012:policy/replica-writer"]))
    templates = {stack: json.loads(t.to_json()) for stack, t in render_all(config).items()}
    for stack, template in templates.items():
        assert [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))] == [], stack
    consumer = templates["consumer"]
    function = consumer["Resources"]["ConsumerFunction"]["Properties"]
    assert function["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    assert function["Handler"] == "app.handler" and function["Architectures"] == ["arm64"]
    assert function["Environment"] == {"Variables": {"REPLICA_TABLE": "routes"}}
    role = consumer["Resources"]["ConsumerRole"]["Properties"]
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::123456789012:policy/replica-writer"]
    assert set(consumer["Parameters"]) == {"CodeBucket", "CodeKey"}


def test_the_assets_bucket_is_versioned_encrypted_private_and_tls_only(tmp_path):
    assets = json.loads(render_all(load_config(own_config(tmp_path)))["assets"].to_json())
    bucket = assets["Resources"]["AssetsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    [statement] = assets["Resources"]["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_the_shipped_consumer_stays_inline_and_takes_no_bucket(tmp_path):
    consumer = json.loads(render_all(load_config(write_config(tmp_path)))["consumer"].to_json())
    assert "ZipFile" in consumer["Resources"]["ConsumerFunction"]["Properties"]["Code"]
    assert "Parameters" not in consumer
