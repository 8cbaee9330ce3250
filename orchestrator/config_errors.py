"""The one message a refused config gets: each problem naming its key as the user wrote it in the file,
with a "did you mean" for a near miss (used by config.py, and by commands naming tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


def describe_validation_error(err: ValidationError, path: Path) -> str:
    """One message for all problems, each naming its key as the user wrote it in the file."""
    lines = []
    for problem in err.errors():
        key = _key_name(problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"{path}: {key}: unknown key{did_you_mean(str(problem['loc'][-1]), _known_keys(problem['loc']))}"
                         " (see the config reference in README.md)")
        elif problem["type"] == "missing":
            lines.append(f"{path}: {key}: required key is missing")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {key}: {message} (got {problem.get('input')!r})")
    return "\n".join(lines)


def did_you_mean(word: str, known: list[str]) -> str:
    """"; did you mean X?" when a known name is close to what was written, else ""."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6) or [
        k for k in known if k.lower() == word.lower() or k.replace("_", "") == word.replace("-", "").replace("_", "")]
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed where `loc` (the unknown key's location) points."""
    from orchestrator.config import Config

    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _key_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if not parts:  # a rule across sections: its message names the keys
        return "settings"
    if parts[:2] == ["stream", "tables"] and len(parts) >= 3 and parts[2].isdigit():
        rest = ".".join(parts[3:])
        return f"[[stream.tables]] #{int(parts[2]) + 1}" + (f" {rest}" if rest else "")
    if len(parts) == 1:
        return f"[{parts[0]}]"
    return f"[{parts[0]}] {'.'.join(parts[1:])}"
