"""Small factories for configs: the shipped config.toml with overrides, written to a temp dir."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "config.toml"


def shipped_raw() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_CONFIG.read_text())


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def toml_text(raw: dict[str, Any]) -> str:
    """Enough of a TOML writer for our config shape (tables of scalars, arrays of tables)."""
    lines: list[str] = []
    for section, body in raw.items():
        scalars = {k: v for k, v in body.items() if not _is_table_array(v)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_value(v)}" for k, v in scalars.items()]
        for key, value in body.items():
            if _is_table_array(value):
                for item in value:
                    lines.append(f"[[{section}.{key}]]")
                    lines += [f"{k} = {_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_value(v)}' for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


SHIPPED_MIGRATION = ROOT / "sql" / "migrations" / "V1__routes.sql"


def write_config(directory: Path, overrides: dict[str, Any] | None = None, *,
                 schema: str | None = None) -> Path:
    """A config.toml in `directory` (with the shipped migration, or `schema` as V1, beside it) and its path."""
    raw = merged(shipped_raw(), overrides or {})
    folder = directory / "sql" / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "V1__routes.sql").write_text(schema if schema is not None else SHIPPED_MIGRATION.read_text())
    path = directory / "config.toml"
    path.write_text(toml_text(raw))
    return path
