"""Deploy or update the stacks in graph order, every change through a change set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.assets import ConsumerCode
from orchestrator.deploy.graph import StackSpec, build_specs, selected, stack_order, waves
from orchestrator.deploy.pinned import ImageLookup, pinned_parameters
from orchestrator.deploy.stacks import (
    ChangeSet,
    Phase,
    StackState,
    create_change_set,
    describe_stack,
    refuse_foreign,
)
from orchestrator.deploy.watch import Watched, wait_for
from orchestrator.errors import OperationFailed
from orchestrator.ui import UI

STACK_TIMEOUT = 90 * 60.0  # an Aurora cluster with instances can take most of an hour


@dataclass
class DeployResult:
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)


def deploy_stacks(cfn: Any, config: Config, only: list[str] | None, ui: UI, cancel: CancelToken, *,
                  image_lookup: ImageLookup | None = None, refresh_bastion: bool = False,
                  code: ConsumerCode | None = None,
                  external: dict[str, dict[str, str]] | None = None) -> DeployResult:
    """`image_lookup` resolves the bastion's image when the database stack is created or refreshed;
    `code` builds and uploads your own consumer's package (needed when [consumer] source is set);
    `external` holds parameters read from an attached cluster."""
    keys = selected(only, with_dependencies=True, order=stack_order(config))
    specs = build_specs(config, keys, external)
    result = DeployResult()
    for wave in waves(keys):
        states = {key: _ready_state(cfn, config, specs[key], ui, cancel) for key in wave}
        change_sets: dict[str, ChangeSet] = {}
        for key in wave:
            change_set = create_change_set(
                cfn, stack=specs[key].name, template_body=specs[key].template_body,
                parameters=specs[key].parameters(result.outputs) + pinned_parameters(
                    key, config, states[key], lookup=image_lookup, refresh=refresh_bastion) + (
                    code.parameters(key, result.outputs, upload=True) if code else []),
                tags=config.owner_tag,
                creating=states[key].phase is Phase.ABSENT, cancel=cancel,
            )
            if change_set is None:
                ui.emit("stack_unchanged", stack=specs[key].name)
                ui.say("[dim]{stack}: no changes[/]", stack=specs[key].name)
                result.outputs[key] = states[key].outputs
            else:
                change_sets[key] = change_set
        try:
            _confirm_risks(list(change_sets.values()), ui)
        except Exception:
            for change_set in change_sets.values():
                cfn.delete_change_set(StackName=change_set.stack, ChangeSetName=change_set.name)
            raise
        watched = []
        for key, change_set in change_sets.items():
            cfn.execute_change_set(StackName=change_set.stack, ChangeSetName=change_set.name)
            watched.append(Watched(name=change_set.stack, action=change_set.kind.lower(),
                                   total=_resource_count(specs[key])))
        if watched:
            wait_for(cfn, watched, ui, cancel, timeout=STACK_TIMEOUT)
        for key in change_sets:
            result.outputs[key] = next(w.state for w in watched if w.name == specs[key].name).outputs
            result.changed.append(specs[key].name)
    return result


def _ready_state(cfn: Any, config: Config, spec: StackSpec, ui: UI, cancel: CancelToken) -> StackState:
    """The stack's state once it can take a change set: wait out work in progress, clear a failed create."""
    state = describe_stack(cfn, spec.name)
    refuse_foreign(state, config.owner_tag, "update")
    if state.phase is Phase.IN_PROGRESS:
        ui.text(f"{spec.name} is {state.status}; waiting for CloudFormation to finish it first")
        action = "delete" if state.status.startswith("DELETE") else "update"
        watched = Watched(name=spec.name, action=action, total=_resource_count(spec), state=state)
        try:
            wait_for(cfn, [watched], ui, cancel, timeout=STACK_TIMEOUT)
        except OperationFailed:
            pass  # a rollback it finished is handled below like any other state
        state = describe_stack(cfn, spec.name)
    if state.phase is Phase.FAILED_CREATE:
        ui.text(f"{spec.name} is {state.status} from a failed create; deleting it to create it again")
        cfn.delete_stack(StackName=spec.name)
        wait_for(cfn, [Watched(name=spec.name, action="delete", total=0, state=state)], ui, cancel,
                 timeout=STACK_TIMEOUT)
        state = StackState(name=spec.name)
    if state.phase is Phase.BROKEN:
        raise OperationFailed(f"{spec.name} is {state.status}: CloudFormation needs a person to repair it",
                              hint="see the stack's events in the console; continue or cancel the rollback, then rerun")
    return state


def _confirm_risks(change_sets: list[ChangeSet], ui: UI) -> None:
    risky = [(cs.stack, change, reason) for cs in change_sets for change, reason in cs.risks()]
    if not risky:
        return
    for stack, change, reason in risky:
        ui.say("[yellow]![/] {what}", what=f"{stack}: {change.action} {change.logical_id} ({change.resource_type}): {reason}")
    ui.emit("risky_changes", changes=[{"stack": s, "logical_id": c.logical_id, "action": c.action, "reason": r}
                                      for s, c, r in risky])
    ui.confirm("Apply these changes?", why=f"{len(risky)} change(s) replace data or broaden access")


def _resource_count(spec: StackSpec) -> int:
    import json

    return len(json.loads(spec.template_body)["Resources"])
