"""A throwaway project directory for a benchmark: the shipped config (with replacements) and schema."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def project_dir(**replace: str) -> Iterator[Path]:
    """Yields the path of a config.toml in a temp dir; `replace` maps text of the shipped config to new text."""
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        work = Path(tmp)
        (work / "sql" / "migrations").mkdir(parents=True)
        (work / "sql" / "migrations" / "V1__routes.sql").write_text(
            (ROOT / "sql" / "migrations" / "V1__routes.sql").read_text())
        config = (ROOT / "config.toml").read_text()
        for old, new in replace.items():
            config = config.replace(old, new)
        (work / "config.toml").write_text(config)
        yield work / "config.toml"
