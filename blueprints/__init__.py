"""troposphere templates, one module per stack, each a pure function of the config."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from troposphere import Template

    from orchestrator.config import Config

STACKS = ("assets", "network", "consumer", "database")
ATTACHED_STACKS = ("assets", "consumer", "attachment")  # [database] cluster: attach to a cluster we do not own


def blueprint(stack: str) -> Callable[[Config], Template]:
    from blueprints.assets import assets_template
    from blueprints.attachment import attachment_template
    from blueprints.consumer import consumer_template
    from blueprints.database import database_template
    from blueprints.network import network_template

    return {"assets": assets_template, "network": network_template, "consumer": consumer_template,
            "database": database_template, "attachment": attachment_template}[stack]


def render_all(config: Config) -> dict[str, Template]:
    return {stack: blueprint(stack)(config) for stack in (ATTACHED_STACKS if config.attached else STACKS)}
