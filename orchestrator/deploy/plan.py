"""`plan` for the stacks: what `up` would change, per resource, applying nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config, Dialect
from orchestrator.deploy.assets import ConsumerCode
from orchestrator.deploy.graph import build_specs, selected, stack_order
from orchestrator.deploy.pinned import ImageLookup, newer_image_note, pinned_parameters
from orchestrator.deploy.stacks import Phase, ResourceChange, create_change_set, describe_stack
from orchestrator.ui import UI


@dataclass(frozen=True)
class StackPlan:
    stack: str
    action: str                          # create | update | unchanged
    changes: tuple[ResourceChange, ...] = ()

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"


def plan_stacks(cfn: Any, config: Config, only: list[str] | None, ui: UI, cancel: CancelToken, *,
                image_lookup: ImageLookup | None = None,
                external: dict[str, dict[str, str]] | None = None) -> list[StackPlan]:
    order = stack_order(config)
    keys = selected(only, with_dependencies=False, order=order)
    specs = build_specs(config, keys, external)
    code = ConsumerCode(config)  # built (from its cache when unchanged) to compare its hash, never uploaded
    states = {key: describe_stack(cfn, config.stack_name(key)) for key in order}
    outputs = {key: state.outputs for key, state in states.items()}
    plans, notes = [], []
    for key in keys:
        spec, state = specs[key], states[key]
        if state.phase in (Phase.ABSENT, Phase.FAILED_CREATE):
            # Nothing to diff against: every resource would be added (no change set, so no stack is left
            # in REVIEW_IN_PROGRESS by a plan).
            template = json.loads(spec.template_body)
            plans.append(StackPlan(spec.name, "create", tuple(
                ResourceChange("Add", logical, body["Type"]) for logical, body in template["Resources"].items()
                if _condition_holds(template, body.get("Condition"), spec.external))))
            continue
        parameters = [
            {"ParameterKey": p, "ParameterValue": outputs[stack].get(output, state.parameters.get(p, ""))}
            for p, (stack, output) in sorted(spec.wiring.items())
        ] + spec.external_parameters() + pinned_parameters(key, config, state, lookup=image_lookup) \
            + code.parameters(key, outputs, upload=False)
        change_set = create_change_set(cfn, stack=spec.name, template_body=spec.template_body, parameters=parameters,
                                       tags=config.owner_tag, creating=False, cancel=cancel)
        if change_set is None:
            plans.append(StackPlan(spec.name, "unchanged"))
        else:
            notes += code.changed_note(key, state.parameters)
            cfn.delete_change_set(StackName=spec.name, ChangeSetName=change_set.name)
            plans.append(StackPlan(spec.name, "update", change_set.changes))
    for plan in plans:
        show_plan(plan, ui)
    if "database" in keys and config.database.dialect is Dialect.V2:
        from blueprints.database import EXTENDED_SUPPORT_NOTE

        notes.append(EXTENDED_SUPPORT_NOTE)
    bastion_stack = "attachment" if config.attached else "database"
    if bastion_stack in keys and config.bastion.mode == "create" and image_lookup is not None:
        notes += newer_image_note(config, states[bastion_stack], image_lookup)
    for note in notes:
        ui.emit("note", message=note)
        ui.say("[yellow]![/] {note}", note=note)
    return plans


def _condition_holds(template: dict[str, Any], name: str | None, values: dict[str, str]) -> bool:
    """Whether a resource's Condition holds for the parameters `up` would pass. Our templates only use
    Fn::Equals of a parameter and a literal; anything else counts as holding (listed, not hidden)."""
    if name is None:
        return True
    condition = template.get("Conditions", {}).get(name, {})
    left, right = condition.get("Fn::Equals", [None, None])
    if isinstance(left, dict) and "Ref" in left and isinstance(right, str):
        default = template.get("Parameters", {}).get(left["Ref"], {}).get("Default")
        return values.get(left["Ref"], default) == right
    return True


def show_plan(plan: StackPlan, ui: UI) -> None:
    ui.emit("stack_plan", stack=plan.stack, action=plan.action, changes=[
        {"action": c.action, "logical_id": c.logical_id, "resource_type": c.resource_type,
         "replacement": c.replacement} for c in plan.changes])
    if not plan.changed:
        ui.say("[dim]{stack}: no changes[/]", stack=plan.stack)
        return
    from orchestrator.ui import Styled

    colours = {"Add": "green", "Modify": "yellow", "Remove": "red"}
    replaced = {"True": Styled("yes", "red"), "Conditional": Styled("maybe", "yellow"), "False": "no"}
    ui.table(("action", "resource", "type", "replaced"),
             [(Styled(c.action, colours.get(c.action, "")), c.logical_id, c.resource_type,
               replaced.get(c.replacement, "")) for c in plan.changes],
             title=f"{plan.stack}: {plan.action}")
