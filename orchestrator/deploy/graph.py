"""The stack graph: assets and network first (in parallel), then the consumer (its code lives in the
assets bucket), then database with the bastion.

Upstream Outputs fill downstream Parameters (never exports: they lock stacks in AWS, and moto
mishandles them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.config import Config
from orchestrator.errors import UsageError

STACK_ORDER = ("assets", "network", "consumer", "database")
# Attached to an existing cluster ([database] cluster): no network or database stack of ours.
ATTACHED_ORDER = ("assets", "consumer", "attachment")
_ALL = ("assets", "network", "consumer", "database", "attachment")


def stack_order(config: Config) -> tuple[str, ...]:
    return ATTACHED_ORDER if config.attached else STACK_ORDER


# Parameter of the downstream stack -> (upstream stack, its Output).
WIRING: dict[str, dict[str, tuple[str, str]]] = {
    "consumer": {
        "CodeBucket": ("assets", "BucketName"),
    },
    "database": {
        "VpcId": ("network", "VpcId"),
        "PublicSubnetId": ("network", "PublicSubnetId"),
        "PrivateSubnetIds": ("network", "PrivateSubnetIds"),
        "ConsumerFunctionArn": ("consumer", "FunctionArn"),
    },
    "attachment": {
        "ConsumerFunctionArn": ("consumer", "FunctionArn"),
    },
}


@dataclass(frozen=True)
class StackSpec:
    key: str                     # assets | network | consumer | database | attachment
    name: str                    # the CloudFormation stack name
    template_body: str
    depends_on: tuple[str, ...] = ()
    wiring: dict[str, tuple[str, str]] = field(default_factory=dict)
    external: dict[str, str] = field(default_factory=dict)   # values read from what we attach to

    def parameters(self, outputs: dict[str, dict[str, str]]) -> list[dict[str, str]]:
        return [{"ParameterKey": param, "ParameterValue": outputs[stack][output]}
                for param, (stack, output) in sorted(self.wiring.items())] + self.external_parameters()

    def external_parameters(self) -> list[dict[str, str]]:
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(self.external.items())]


def dependencies(key: str) -> tuple[str, ...]:
    return tuple(sorted({stack for stack, _ in WIRING.get(key, {}).values()}, key=_ALL.index))


def selected(only: Iterable[str] | None, *, with_dependencies: bool,
             order: tuple[str, ...] = STACK_ORDER) -> list[str]:
    """The stacks `--only` names (all when empty), plus what they depend on if asked, in deploy order."""
    chosen = set(only or order)
    unknown = chosen - set(order)
    if unknown:
        raise UsageError(f"--only {', '.join(sorted(unknown))}: unknown stack; choose from {', '.join(order)}")
    if with_dependencies:
        for key in list(chosen):
            chosen.update(dependencies(key))
    return [key for key in order if key in chosen]


def waves(keys: list[str]) -> list[list[str]]:
    """Groups that can deploy in parallel, each after the ones before it."""
    done: set[str] = set()
    result: list[list[str]] = []
    remaining = list(keys)
    while remaining:
        wave = [k for k in remaining if all(d in done or d not in keys for d in dependencies(k))]
        result.append(wave)
        done.update(wave)
        remaining = [k for k in remaining if k not in wave]
    return result


def build_specs(config: Config, keys: list[str],
                external: dict[str, dict[str, str]] | None = None) -> dict[str, StackSpec]:
    """`external`: per stack, parameter values read from outside our stacks (the attached cluster's)."""
    from blueprints import blueprint

    specs = {}
    for key in keys:
        template = blueprint(key)(config)
        # Only the wiring the template takes: the consumer takes the bucket only when it runs your code.
        wiring = {param: source for param, source in WIRING.get(key, {}).items() if param in template.parameters}
        specs[key] = StackSpec(key=key, name=config.stack_name(key), template_body=template.to_json(indent=None),
                               depends_on=dependencies(key), wiring=wiring, external=(external or {}).get(key, {}))
    return specs
