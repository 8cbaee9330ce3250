"""Your own consumer's deployment package: how long `up` spends building it, cold (pip installs
requirements.txt for Lambda's platform) and warm (the cached install, only the zip), and whether two
builds give the same bytes.

    .venv/bin/python bench/bench_package.py [--modules N]

The dependency is a pure-Python wheel written by hand and served with --find-links (no index, no
network), so the figures are pip's and ours, not a download's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.package.consumer import build_consumer_package  # noqa: E402
from tests.factories import write_config, write_consumer, write_wheel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", type=int, default=200, help="extra modules in the consumer's folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        work = Path(tmp)
        wheels = write_wheel(work / "wheels", "pigtail", "1.2.3", "def shout(t):\n    return t.upper()\n").parent
        folder = write_consumer(work / "consumer", "import pigtail\n\ndef handler(event, context):\n    return 1\n",
                                f"--no-index\n--find-links {wheels}\npigtail==1.2.3\n")
        for i in range(args.modules):
            (folder / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 50)
        config = load_config(write_config(work, {"consumer": {"source": "consumer", "handler": "app.handler"}}))

        started = time.perf_counter()
        first = build_consumer_package(config)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(10):
            started = time.perf_counter()
            again = build_consumer_package(config)
            warm.append(time.perf_counter() - started)
            assert again == first, "two builds of the same inputs differ"
        print(f"package of {args.modules + 2} files + 1 requirement: {len(first.data)} bytes, sha256 {first.short_hash}")
        print(f"cold build (pip install for manylinux2014_x86_64 / cp312, then zip): {cold * 1000:7.0f} ms")
        print(f"warm build (cached requirements, zip only), median of 10:      {statistics.median(warm) * 1000:7.0f} ms")
        print("same inputs, same bytes: yes (10 of 10 rebuilds identical)")


if __name__ == "__main__":
    main()
