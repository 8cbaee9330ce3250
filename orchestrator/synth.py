"""`rds-streams synth`: write each stack's template as JSON."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.ui import UI


def synth(config: Config, out_dir: Path, ui: UI) -> dict[str, Path]:
    from blueprints import render_all

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OperationFailed(f"cannot create {out_dir}: {err.strerror}") from None
    written: dict[str, Path] = {}
    for stack, template in render_all(config).items():
        path = out_dir / f"{config.stack_name(stack)}.json"
        path.write_text(template.to_json(indent=2) + "\n", encoding="utf-8")
        written[stack] = path
        ui.emit("template", stack=stack, stack_name=config.stack_name(stack), path=str(path),
                resources=len(template.resources))
        ui.say("[green]wrote[/] {path}  ({n} resources)", path=path, n=len(template.resources))
    return written
