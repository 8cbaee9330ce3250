"""What a stack is now (as a value, never a status string tested ad hoc) and its change sets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.errors import OperationFailed

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class Phase(Enum):
    ABSENT = "absent"
    STABLE = "stable"              # ready for a change set
    IN_PROGRESS = "in progress"    # CloudFormation is working on it
    FAILED_CREATE = "failed create"  # never became a stack: delete and create again
    BROKEN = "broken"              # needs a person (UPDATE_ROLLBACK_FAILED, DELETE_FAILED)


def phase_of(status: str | None) -> Phase:
    if status is None or status == "DELETE_COMPLETE":
        return Phase.ABSENT
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "REVIEW_IN_PROGRESS"):
        return Phase.FAILED_CREATE
    if status in ("UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"):
        return Phase.BROKEN
    if status.endswith("_IN_PROGRESS"):
        return Phase.IN_PROGRESS
    return Phase.STABLE


@dataclass(frozen=True)
class StackState:
    name: str
    status: str | None = None
    reason: str | None = None
    stack_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def phase(self) -> Phase:
        return phase_of(self.status)

    def owned_by(self, owner_tag: dict[str, str]) -> bool:
        return all(self.tags.get(k) == v for k, v in owner_tag.items())


def describe_stack(cfn: Any, name: str, *, stack_id: str | None = None) -> StackState:
    """By name, or by id once known (only the id still answers after the stack is deleted)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_id or name)["Stacks"]
    except ClientError as err:
        if "does not exist" in err.response.get("Error", {}).get("Message", ""):
            return StackState(name=name)
        raise
    if not stacks:
        return StackState(name=name)
    stack = stacks[0]
    return StackState(
        name=name, status=stack["StackStatus"], reason=stack.get("StackStatusReason"), stack_id=stack["StackId"],
        tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        # An SSM-typed parameter's value is the SSM name; what the stack runs with is ResolvedValue.
        parameters={p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
                    for p in stack.get("Parameters", [])},
    )


def refuse_foreign(state: StackState, owner_tag: dict[str, str], doing: str) -> None:
    if state.phase is not Phase.ABSENT and not state.owned_by(owner_tag):
        tag = ", ".join(f"{k}={v}" for k, v in owner_tag.items())
        raise OperationFailed(
            f"stack {state.name} exists but does not carry our ownership tag ({tag}); refusing to {doing} it",
            hint="it was not created by this project: rename [project] name, or remove that stack yourself",
        )


@dataclass(frozen=True)
class ResourceChange:
    action: str               # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""     # True | False | Conditional | "" (not applicable)

    @property
    def replaces(self) -> bool:
        return self.replacement in ("True", "Conditional")

    def risk(self, updating: bool) -> str | None:
        """Why this change needs a person's yes, or None."""
        if self.resource_type.startswith("AWS::RDS::") and (self.action == "Remove" or self.replaces):
            return "replaces or removes a database resource" if self.replaces else "removes a database resource"
        if updating and self.resource_type == "AWS::EC2::Instance" and (self.action == "Remove" or self.replaces):
            return "replaces the bastion: its host key and public address change and open tunnels drop"
        if updating and self.action in ("Add", "Modify") and (
            self.resource_type.startswith("AWS::IAM::") or self.resource_type.startswith("AWS::EC2::SecurityGroup")
        ):
            return "changes IAM or security group rules"
        return None


@dataclass(frozen=True)
class ChangeSet:
    stack: str
    name: str
    kind: str                 # CREATE | UPDATE
    changes: tuple[ResourceChange, ...]

    def risks(self) -> list[tuple[ResourceChange, str]]:
        updating = self.kind == "UPDATE"
        return [(c, reason) for c in self.changes if (reason := c.risk(updating))]


def create_change_set(cfn: Any, *, stack: str, template_body: str, parameters: list[dict[str, str]],
                      tags: dict[str, str], creating: bool, cancel: CancelToken,
                      timeout: float = 300.0) -> ChangeSet | None:
    """Create a change set and wait until it is ready; None when it holds no change (then it is deleted)."""
    name = f"rds-streams-{int(time.time() * 1000)}"
    kind = "CREATE" if creating else "UPDATE"
    from botocore.exceptions import ClientError

    try:
        cfn.create_change_set(
            StackName=stack, ChangeSetName=name, ChangeSetType=kind, TemplateBody=template_body,
            Parameters=parameters, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    except ClientError as err:
        # moto refuses an unchanged template with unchanged parameters up front (as update_stack does)
        # where CloudFormation makes a FAILED change set saying so: the same answer, no change.
        if any(marker in err.response.get("Error", {}).get("Message", "") for marker in NO_CHANGES):
            return None
        raise
    description = _wait_for_change_set(cfn, stack, name, cancel, timeout)
    if description["Status"] == "FAILED":
        reason = description.get("StatusReason", "")
        cfn.delete_change_set(StackName=stack, ChangeSetName=name)
        if any(marker in reason for marker in NO_CHANGES):
            return None
        raise OperationFailed(f"CloudFormation refused the change set for {stack}: {reason}")
    changes = tuple(
        ResourceChange(action=c["ResourceChange"]["Action"], logical_id=c["ResourceChange"]["LogicalResourceId"],
                       resource_type=c["ResourceChange"]["ResourceType"],
                       replacement=c["ResourceChange"].get("Replacement", ""))
        for c in description.get("Changes", []) if c.get("Type") == "Resource"
    )
    return ChangeSet(stack=stack, name=name, kind=kind, changes=changes)


def _wait_for_change_set(cfn: Any, stack: str, name: str, cancel: CancelToken, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        description = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if description["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            return description
        if time.monotonic() > deadline:
            raise OperationFailed(f"the change set for {stack} was not ready after {timeout:.0f} s")
        if cancel.wait(delay):
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            cancel.raise_if_cancelled(f"stopped while CloudFormation prepared the change set for {stack}")
        delay = min(delay * 1.5, 5.0)
