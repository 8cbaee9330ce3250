"""A reproducible zip: the same files give the same bytes, so the same hash, so no change to deploy.

zipfile writes each entry's modification time and permissions, and entries in the order they are
added; all three are fixed here. Hand-written because the few lines are all it takes (no library
offers this for in-memory zips without also pinning the zlib build, which the same machine shares).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
# Never part of a package: caches and editor or VCS leftovers that change without the code changing.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".venv", ".mypy_cache", ".pytest_cache",
                          ".ruff_cache", ".rds-streams", ".idea", ".vscode"})
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".DS_Store", "~", ".swp")


@dataclass(frozen=True)
class Package:
    """A deployment package: its bytes and their SHA-256 (hex)."""

    data: bytes
    sha256: str

    @property
    def short_hash(self) -> str:
        return self.sha256[:16]


# One input: a folder (its files land at the zip's root) or a file (at the root under its own name),
# or (path, prefix) to place it under a folder of the zip.
PackageInput = Path | tuple[Path, str]


def collect(inputs: Sequence[PackageInput]) -> dict[str, Path]:
    """Every file the inputs name, by its path in the zip; a later input wins a clash (dependencies first,
    your code last, as Lambda would find your module before a dependency of the same name)."""
    entries: dict[str, Path] = {}
    for item in inputs:
        path, prefix = (item, "") if isinstance(item, Path) else item
        prefix = prefix.strip("/")
        if path.is_file():
            entries[_join(prefix, path.name)] = path
            continue
        for file in _walk(path):
            entries[_join(prefix, file.relative_to(path).as_posix())] = file
    return entries


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _walk(root: Path) -> Iterable[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(SKIPPED_SUFFIXES):
                yield Path(folder) / name


def zip_package(inputs: Sequence[PackageInput]) -> Package:
    """The zip of `inputs`, entries sorted, times and permissions fixed: same inputs, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(collect(inputs).items()):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (EXECUTABLE_MODE if executable else FILE_MODE)) << 16
            info.create_system = 3  # Unix, so the permissions above are read on extraction
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return Package(data=data, sha256=hashlib.sha256(data).hexdigest())
