"""Helpers every blueprint shares: a fresh template and the ownership tag on all that takes tags."""

from __future__ import annotations

from troposphere import Tags, Template

from orchestrator.config import Config


def new_template(config: Config, stack: str, description: str) -> Template:
    template = Template(Description=f"rds-streams {config.project.name}: {description}")
    template.set_version("2010-09-09")
    template.set_metadata({"rds-streams": {"project": config.project.name, "stack": stack}})
    return template


def tag_everything(template: Template, config: Config) -> Template:
    """Put the ownership tag (plus a Name) on every resource whose type takes tags.

    Done once per template rather than at each resource, so a resource added later cannot miss it.
    """
    for logical_id, resource in template.resources.items():
        spec = resource.props.get("Tags")
        if spec is None:
            continue
        tags = {"Name": f"{config.project.name}-{logical_id}", **config.owner_tag}
        resource.Tags = dict(tags) if spec[0] is dict else Tags(tags)
    return template
