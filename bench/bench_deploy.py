"""Deploy timing against a moto server, as whole processes, the server reset before each run.

Prints wall time (process start included) and the number of AWS API calls moto saw, for
`rds-streams up --only network --only consumer --yes` and for the full set (target aws,
AWS_ENDPOINT_URL at moto). Target (issue 3): network + consumer in at most 1.0 s.

    .venv/bin/python bench/bench_deploy.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workdir import project_dir  # noqa: E402
from orchestrator.sandbox.processes import free_port, port_open, wait_until  # noqa: E402

CLI = str(Path(sys.executable).with_name("rds-streams"))


def request_lines(log: Path, offset: int) -> int:
    text = log.read_text(errors="replace")[offset:]
    return sum(1 for line in text.splitlines() if '"POST / ' in line or '"GET / ' in line)


def run(label: str, args: list[str], env: dict[str, str], url: str, log: Path, runs: int) -> None:
    times, calls = [], []
    for _ in range(runs):
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
        time.sleep(0.05)
        offset = len(log.read_text(errors="replace"))
        started = time.perf_counter()
        result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.exit(f"{label} failed:\n{result.stdout}\n{result.stderr}")
        time.sleep(0.1)  # let the server flush its request log
        calls.append(request_lines(log, offset))
    print(f"{label:<40} median {statistics.median(times):.2f} s  min {min(times):.2f} s  "
          f"max {max(times):.2f} s  API calls {statistics.median(calls):.0f}  ({runs} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with project_dir(**{'target = "local"': 'target = "aws"'}) as config_path:
        work = config_path.parent
        port = free_port()
        log = work / "moto.log"
        with log.open("w") as sink:
            server = subprocess.Popen([sys.executable, "-m", "orchestrator.sandbox.moto_server", "-H", "127.0.0.1",
                                       "-p", str(port)], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_until(lambda: port_open(port), timeout=30, what="moto server")
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench",
                   "AWS_SECRET_ACCESS_KEY": "bench"}
            env.pop("AWS_PROFILE", None)
            common = ["--config", str(config_path), "--yes"]
            run("up --only network --only consumer", ["up", *common, "--only", "network", "--only", "consumer"],
                env, url, log, runs)
            # All three stacks; --only also skips the database steps, which need a real bastion.
            run("up --only (all three stacks)", ["up", *common, "--only", "network", "--only", "consumer",
                                                  "--only", "database"], env, url, log, runs)
            run("rds-streams --help", ["--help"], env, url, log, runs)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
