"""Your own handler, from [consumer] source with a third-party dependency, deployed through the assets
bucket and run by the sandbox from the very package the AWS path deploys; an unchanged package
deploys nothing, and a one-line change shows in `plan` and is deployed by `up`, while a writer keeps
writing and loses nothing.

The dependency is a wheel built by the test and served with pip's --find-links (no index, no
network): pip installs it for Lambda's platform into the package and for this machine's Python into
the sandbox's private environment.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from tests.database.consumers import consume
from tests.factories import write_consumer, write_wheel
from tests.sandbox.conftest import local_config, logged_lines, logged_records, root_connection, wait_for

HANDLER = '''import json

import pigtail

VERSION = "v1"


def handler(event, context):
    for record in event["Records"]:
        print(json.dumps(record))  # whole, one line: where up's smoke test and verify look for the canary's records
        print(json.dumps({"own": VERSION, "shout": pigtail.shout(record["eventName"]), "record": record}))
    return {"handled": len(event["Records"])}
'''


def own_lines(config_path: Path, term: str) -> list[dict[str, Any]]:
    """What the own handler logged for records whose line contains `term`."""
    return [line for line in logged_lines(config_path, f'"{term}"') if "own" in line]


def events_of(kind: str, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in out if o["type"] == kind]


class Writer:
    """Inserts marker rows the whole time; counts what it wrote and what failed."""

    def __init__(self, config_path: Path, token: str) -> None:
        self.conn = root_connection(config_path)
        self.token = token
        self.written: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with self.conn.cursor() as cursor:
            while not self.stop.is_set():
                to = f"{self.token}{len(self.written) + self.failed}"
                try:
                    cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, "
                                   "`carrierCode`) VALUES ('OWN', %s, 'op', 'grp', 'W')", (to,))
                    self.written.append(to)
                except Exception:  # counted: the test asserts there were none
                    self.failed += 1
                self.stop.wait(0.02)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def test_own_handler_with_a_dependency_runs_and_redeploys_only_when_its_code_changes(tmp_path, cli) -> None:
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    wheels = write_wheel(tmp_path / "wheels", "pigtail", "1.2.3", "def shout(text):\n    return text.upper() + '!'\n").parent
    consumer = write_consumer(tmp_path / "consumer", HANDLER,
                              f"--no-index\n--find-links {wheels}\npigtail==1.2.3\n")
    config = local_config(tmp_path, {"consumer": {"source": "consumer", "handler": "app.handler"}})
    try:
        code, out = cli("up", "--config", str(config), "--yes")
        assert code == 0, [o for o in out if o['type'] in ('error', 'result')]
        [uploaded] = events_of("package_uploaded", out)
        assert uploaded["key"] == f"rds-streams/rds-streams-consumer/{uploaded['sha256']}.zip"

        token = "ow" + uuid.uuid4().hex[:6]
        with Writer(config, token) as writer:
            wait_for(lambda: len(writer.written) >= 10, 30, "the writer's first rows")
            # nothing changed: no stack changes, no upload
            code, out = cli("up", "--config", str(config), "--yes")
            assert code == 0, out
            assert events_of("stack_event", out) == [] and events_of("package_uploaded", out) == []
            assert len(events_of("stack_unchanged", out)) == 4

            # one line changed: plan shows the function modified; up deploys it
            (consumer / "app.py").write_text(HANDLER.replace('VERSION = "v1"', 'VERSION = "v2"'))
            code, out = cli("plan", "--config", str(config))
            assert code == 0, out
            plans = {p["stack"]: p for p in events_of("stack_plan", out)}
            assert plans["rds-streams-consumer"]["action"] == "update"
            assert ("Modify", "ConsumerFunction") in {(c["action"], c["logical_id"])
                                                      for c in plans["rds-streams-consumer"]["changes"]}
            assert {p["action"] for s, p in plans.items() if s != "rds-streams-consumer"} == {"unchanged"}
            assert any("your consumer's code changed" in n["message"] for n in events_of("note", out))

            code, out = cli("up", "--config", str(config), "--yes")
            assert code == 0, out
            assert len(events_of("package_uploaded", out)) == 1
            assert {e["stack"] for e in events_of("stack_event", out)} == {"rds-streams-consumer"}
            wait_for(lambda: any(line["own"] == "v2" for line in own_lines(config, token)), 60,
                     "a record handled by the changed code")
        assert writer.failed == 0

        def all_logged() -> list[dict[str, Any]] | None:
            lines = [line for line in own_lines(config, token) if line["record"]["eventName"] == "INSERT"]
            seen = {line["record"]["dynamodb"]["Keys"]["airportTo"]["S"] for line in lines}
            return lines if seen >= set(writer.written) else None

        lines = wait_for(all_logged, 90, "every written row in the own handler's log")
        assert {line["own"] for line in lines} == {"v1", "v2"}
        assert {line["shout"] for line in lines} == {"INSERT!"}, "the dependency from requirements.txt ran"
        for line in lines:
            consume(line["record"])

        # the handler ran from the package, its dependency from the private environment under .rds-streams/
        root = Sandbox(load_config(config)).root
        assert list((root / "functions").glob("rds-streams-consumer/*/app.py"))
        assert list((root / "functions" / "local-deps").glob("*/pigtail.py"))

        # back to the shipped logging consumer: inline code again, which the sandbox runs as deployed
        text = config.read_text()
        config.write_text(text.replace('source = "consumer"\n', "").replace('handler = "app.handler"\n', ""))
        code, out = cli("up", "--config", str(config), "--yes")
        assert code == 0, out
        with root_connection(config).cursor() as cursor:
            cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, "
                           "`carrierCode`) VALUES ('OWN', %s, 'op', 'grp', 'W')", (f"{token}-shipped",))
        [record] = wait_for(lambda: logged_records(config, f"{token}-shipped"), 60, "the shipped consumer's record")
        assert consume(record)["NewImage"]["airportTo"] == f"{token}-shipped"
    finally:
        cli("down", "--config", str(config), "--yes")
