"""Stack parameters kept from the first deploy: the bastion's image.

`up` resolves the current Amazon Linux 2023 image once, when the database stack is created, and then
passes the stack's own value back on every update, so a new Amazon Linux release never replaces the
bastion behind the user's back. `up --refresh-bastion` resolves it anew (a replacement, which asks for
a yes like every risky change).
"""

from __future__ import annotations

from collections.abc import Callable

from blueprints.bastion import IMAGE_PARAMETER, image_source
from orchestrator.config import Config
from orchestrator.deploy.stacks import StackState

# The value of a public SSM parameter, by name (ssm:GetParameter).
ImageLookup = Callable[[str], str]


def pinned_parameters(key: str, config: Config, state: StackState, *, lookup: ImageLookup | None,
                      refresh: bool = False) -> list[dict[str, str]]:
    """The extra parameters stack `key` takes besides its upstream wiring."""
    if key != "database" and not (key == "attachment" and config.bastion.mode == "create"):
        return []
    current = state.parameters.get(IMAGE_PARAMETER, "")
    # A stack from before the pin has the SSM name as its value; StackState carries what it resolved to.
    if current.startswith("ami-") and not refresh:
        return [{"ParameterKey": IMAGE_PARAMETER, "ParameterValue": current}]
    if lookup is None:
        return []
    return [{"ParameterKey": IMAGE_PARAMETER, "ParameterValue": lookup(image_source(config))}]


def newer_image_note(config: Config, state: StackState, lookup: ImageLookup) -> list[str]:
    """A line for `plan` when Amazon Linux has released an image newer than the bastion's."""
    pinned = state.parameters.get(IMAGE_PARAMETER, "")
    if not pinned.startswith("ami-"):
        return []
    current = lookup(image_source(config))
    if current == pinned:
        return []
    return [f"the bastion runs {pinned}; Amazon Linux 2023's current image is {current}: "
            "`rds-streams up --refresh-bastion` replaces the bastion with it (a new host key; tunnels drop)"]


def ssm_lookup(ssm_client: object) -> ImageLookup:
    return lambda name: ssm_client.get_parameter(Name=name)["Parameter"]["Value"]  # type: ignore[attr-defined]
