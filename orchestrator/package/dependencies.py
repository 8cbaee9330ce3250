"""A requirements.txt installed into a folder with pip, cached by a hash of everything that decides
the result (the file's text, the platform, the Python version), so an unchanged requirements.txt costs
nothing and gives the same files, hence the same package.

Two kinds of target: Lambda's (Python 3.12 on manylinux for the function's architecture, wheels only,
as `pip install --platform` requires) for the deployment package, and this machine's Python for the
sandbox's private environment, which runs the handler here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OperationFailed

LAMBDA_PYTHON = "3.12"   # the consumer's runtime, python3.12
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
PIP_TIMEOUT = 600.0


@dataclass(frozen=True)
class InstallTarget:
    """Where installed packages will run: Lambda's runtime (platform set) or this machine (None)."""

    platform: str | None = None
    python_version: str | None = None

    @classmethod
    def lambda_runtime(cls, architecture: str) -> InstallTarget:
        return cls(platform=PLATFORMS[architecture], python_version=LAMBDA_PYTHON)

    @classmethod
    def this_machine(cls) -> InstallTarget:
        return cls()

    def pip_options(self) -> list[str]:
        if self.platform is None:
            return []
        return ["--platform", self.platform, "--implementation", "cp", "--python-version", self.python_version or "",
                "--only-binary=:all:"]

    def describe(self) -> str:
        if self.platform is None:
            return f"this machine's Python {sys.version_info.major}.{sys.version_info.minor}"
        return f"Lambda's Python {self.python_version} on {self.platform}"


def cache_key(requirements: str, target: InstallTarget) -> str:
    identity = {"requirements": requirements, "target": [target.platform, target.python_version],
                # this machine's packages only fit this Python
                "local_python": None if target.platform else [sys.implementation.name, *sys.version_info[:2]]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def install_requirements(requirements: Path, target: InstallTarget, cache_dir: Path) -> Path:
    """The folder holding `requirements` installed for `target`: from the cache, or installed now."""
    text = requirements.read_text(encoding="utf-8")
    folder = cache_dir / cache_key(text, target)
    complete = folder.with_name(folder.name + ".complete")  # beside it: the marker is no file of the package
    if complete.is_file() and folder.is_dir():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=cache_dir))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--no-warn-script-location", "--target", str(partial), *target.pip_options(),
               "--requirement", str(requirements)]
    try:
        # Relative paths in requirements.txt (a local wheel, say) are relative to its folder.
        result = subprocess.run(command, cwd=requirements.parent, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise OperationFailed(f"pip did not finish installing {requirements} within {PIP_TIMEOUT:.0f} s",
                              hint="check the package index is reachable (pip's own settings apply), then run again") from None
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        detail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        hint = ("Lambda needs wheels built for its platform: pin versions that publish manylinux wheels "
                "(or pure-Python ones)" if target.platform else "fix requirements.txt, then run again")
        raise OperationFailed(f"pip could not install {requirements} for {target.describe()}:\n{detail}", hint=hint)
    shutil.rmtree(folder, ignore_errors=True)  # a half-finished earlier install
    try:
        partial.rename(folder)
    except OSError:  # another build finished the same install first: theirs is as good
        shutil.rmtree(partial, ignore_errors=True)
    complete.write_text("")
    return folder
