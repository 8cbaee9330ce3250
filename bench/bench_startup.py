"""How fast does `rds-streams --help` start? Measured as a whole process, against `python -c "import boto3"`
in the same run on the same machine (the target: at most 0.2 s for --help).

Also `rds-streams up -h` (typer builds a command's parameters with pydantic before showing its help,
so a command's -h costs about what importing pydantic does), and which heavy modules `--help` imports
(none of boto3, troposphere, paramiko, rich should be among them).
Run: .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
TARGET_S = 0.2
CLI = Path(sys.executable).with_name("rds-streams")
HEAVY = ("boto3", "botocore", "troposphere", "paramiko", "pymysql", "rich", "pydantic")


def timed(command: list[str]) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the OS caches once
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def line(name: str, times: list[float]) -> str:
    return f"{name:32s} median {statistics.median(times) * 1000:6.0f} ms   min {min(times) * 1000:6.0f} ms   (n={len(times)})"


def heavy_imports() -> list[str]:
    code = ("import sys; from orchestrator.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "80"}).stdout.splitlines()[-1]
    return [m for m in out.removeprefix("HEAVY:").split(",") if m]


def main() -> None:
    help_times = timed([str(CLI), "--help"])
    print(line("rds-streams --help", help_times))
    print(line("rds-streams up -h", timed([str(CLI), "up", "-h"])))
    print(line('python -c "import boto3"', timed([sys.executable, "-c", "import boto3"])))
    print(line('python -c "pass"', timed([sys.executable, "-c", "pass"])))
    heavy = heavy_imports()
    print(f"heavy modules imported by --help: {', '.join(heavy) or 'none'}")
    verdict = "meets" if statistics.median(help_times) <= TARGET_S else "MISSES"
    print(f"--help median {statistics.median(help_times):.3f} s {verdict} the {TARGET_S} s target")


if __name__ == "__main__":
    main()
