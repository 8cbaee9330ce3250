"""The deployed function's code, made runnable on this machine for the sandbox's runner.

The consumer stack either inlines the shipped handler (Code.ZipFile) or names your package in the
assets bucket (Code.S3Bucket/S3Key, as stack parameters). A package is fetched from moto's S3, its hash
checked against its key, unpacked under .rds-streams/functions/, and its requirements.txt installed
for this machine's Python into a private folder (the package's own dependencies were installed for
Lambda's platform, which may not be this one): the same code the AWS path deploys, run here.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import OperationFailed


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    arn: str
    handler: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str] = field(default_factory=dict)
    inline_source: str | None = None     # the shipped handler, inlined in the template
    bucket: str | None = None            # or your package in the assets bucket
    key: str | None = None


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return parameters.get(value["Ref"])
    return value


def _resolved_environment(cfn: Any, stack: str, variables: dict[str, Any]) -> dict[str, str]:
    """Environment.Variables with each Ref resolved to the resource's physical id, as CloudFormation
    hands them to Lambda (moto's Lambda API would have them, but refuses our signed
    GetFunctionConfiguration under IAM enforcement)."""
    if any(isinstance(v, dict) for v in variables.values()):
        physical = {r.get("LogicalResourceId"): r.get("PhysicalResourceId")  # moto lists the types it skipped bare
                    for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
        variables = {k: physical[v["Ref"]] if isinstance(v, dict) else v for k, v in variables.items()}
    return {k: str(v) for k, v in variables.items()}


def deployed_function(cfn: Any, stack: str, name: str, arn: str) -> DeployedFunction | None:
    """What the consumer stack deploys as function `name`, or None if it deploys no such function."""
    from orchestrator.deploy.stacks import describe_stack

    body = cfn.get_template(StackName=stack)["TemplateBody"]
    template = body if isinstance(body, dict) else json.loads(body)
    parameters = describe_stack(cfn, stack).parameters
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") != "AWS::Lambda::Function" or props.get("FunctionName") != name:
            continue
        code = props["Code"]
        return DeployedFunction(
            name=name, arn=arn, handler=props["Handler"], memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            environment=_resolved_environment(cfn, stack, (props.get("Environment") or {}).get("Variables") or {}),
            inline_source=code.get("ZipFile"), bucket=_resolve(code.get("S3Bucket"), parameters),
            key=_resolve(code.get("S3Key"), parameters))
    return None


def prepare(function: DeployedFunction, s3: Any, work_dir: Path) -> list[Path]:
    """The folders to put on the worker's sys.path, first first: local dependencies, then the code.

    Idempotent and cached by the code's hash, so `up` prepares it (failing there, where the user sees
    it) and the runner finds it ready."""
    if function.inline_source is not None:
        digest = hashlib.sha256(function.inline_source.encode()).hexdigest()[:16]
        folder = work_dir / function.name / f"inline-{digest}"
        module = function.handler.rsplit(".", 1)[0]
        if not (folder / f"{module}.py").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{module}.py").write_text(function.inline_source)
        return [folder]
    if not function.bucket or not function.key:
        raise OperationFailed(f"the consumer stack names no code for {function.name}",
                              hint="run `rds-streams up` so the stack is updated to this version's templates")
    code = _unpacked(function, s3, work_dir)
    requirements = code / "requirements.txt"
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        from orchestrator.package.dependencies import InstallTarget, install_requirements

        return [install_requirements(requirements, InstallTarget.this_machine(), work_dir / "local-deps"), code]
    return [code]


def _unpacked(function: DeployedFunction, s3: Any, work_dir: Path) -> Path:
    expected = Path(function.key or "").stem  # our keys end in <sha256>.zip
    folder = work_dir / function.name / expected
    if folder.is_dir():
        return folder
    data = s3.get_object(Bucket=function.bucket, Key=function.key)["Body"].read()
    actual = hashlib.sha256(data).hexdigest()
    if len(expected) == 64 and actual != expected:
        raise OperationFailed(f"s3://{function.bucket}/{function.key} holds a package whose sha256 is {actual}, "
                              "not the one its key names", hint="run `rds-streams up` again to upload it anew")
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=expected + ".", dir=folder.parent))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(partial)  # our own package, its hash checked above
    try:
        partial.rename(folder)
    except OSError:  # the runner and `up` unpacked it at the same time: either copy is the same
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def prepare_deployed(aws: Any, stack: str, arn: str, work_dir: Path) -> None:
    """Make the function `stack` deploys as `arn` ready to run, before the runner needs it."""
    function = deployed_function(aws.client("cloudformation"), stack, arn.rsplit(":", 1)[-1], arn)
    if function is not None:
        prepare(function, aws.client("s3"), work_dir)
