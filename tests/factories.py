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


def write_wheel(directory: Path, name: str, version: str, module_source: str) -> Path:
    """A pure-Python wheel (py3-none-any) of one module `name`, written by hand: a third-party dependency
    pip installs from `--find-links directory` with no package index (so no network)."""
    import base64
    import hashlib
    import zipfile

    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module_source,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: rds-streams-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def write_consumer(directory: Path, handler_source: str, requirements: str = "") -> Path:
    """Your own consumer's folder: app.py (with `handler`) and requirements.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(handler_source)
    (directory / "requirements.txt").write_text(requirements)
    return directory
