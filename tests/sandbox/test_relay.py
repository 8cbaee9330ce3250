"""The outbox relays against a consumer of our own: real MariaDB (event scheduler, outbox, Aurora
emulation), the real Lambda runner and worker, moto's CloudWatch Logs. Only CloudFormation's
GetTemplate and DescribeStacks, which hand the runner the consumer's code, are stubbed (botocore Stubber): deploying a
function whose code raises on purpose would need a consumer source option the sandbox has not got.

A consumer that raises for one record, or runs past its Timeout, fails lambda_sync as Aurora's does;
the relay retries, splits and sets that record alone aside. With 4 relays and writers hammering 50
keys, every key's changes arrive in commit order, and none is missing.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from botocore.stub import Stubber

from orchestrator.database.outbox import install_outbox, outbox_lag
from orchestrator.database.probe import filter_events
from orchestrator.database.trigger_install import install_triggers
from orchestrator.database.triggers import StreamSettings
from orchestrator.sandbox.aurora_emulation import LAMBDA_ROLE, install_emulation, set_latency
from orchestrator.sandbox.mariadb import MariaDBServer
from orchestrator.sandbox.processes import free_port
from orchestrator.sandbox.runner import Runner
from tests.database.consumers import consume
from tests.sandbox.conftest import wait_for

FUNCTION = "relay-consumer"
ARN = f"arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION}"
SOURCE_ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:relay/{schema}/{table}"
TIMEOUT_S = 1
# Logs each record as the shipped consumer does; raises for a record naming RAISE, outlives its
# Timeout for one naming SLOW.
CONSUMER = '''
import json, time

def handler(event, context=None):
    records = event.get("Records", [])
    for record in records:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        if "RAISE" in text:
            raise ValueError("this consumer cannot take " + record["eventID"])
        if "SLOW" in text:
            time.sleep(3 * context.get_remaining_time_in_millis() / 1000 + 0.5)
    for record in records:
        print(json.dumps(record, sort_keys=True, separators=(",", ":")))
    return {"records": len(records)}
'''


@dataclass
class Relay:
    conn: pymysql.Connection
    server: MariaDBServer
    logs: Any

    def connect(self) -> pymysql.Connection:
        return pymysql.connect(unix_socket=str(self.server.socket), user="root", database="relay",
                               charset="utf8mb4", autocommit=True)

    def execute(self, sql: str, args: Any = None) -> list[tuple]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def configure(self, *, batch_size: int = 8, max_attempts: int = 2, partitions: int = 4) -> None:
        install_outbox(self.conn, function_arn=ARN, batch_size=batch_size, max_attempts=max_attempts,
                       partitions=partitions)

    def records(self, term: str) -> list[dict[str, Any]]:
        """Records the consumer logged whose line names `term`, in log order, each checked as a consumer would."""
        found = []
        for event in filter_events(self.logs, f"/aws/lambda/{FUNCTION}", f'"{term}"', 0):
            try:
                record = json.loads(event["message"])
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "eventID" in record:
                consume(record)
                found.append(record)
        return found

    def log_lines(self, term: str) -> list[str]:
        return [e["message"] for e in filter_events(self.logs, f"/aws/lambda/{FUNCTION}", f'"{term}"', 0)]

    def dead_letters(self) -> list[tuple[str, str, int]]:
        return self.execute("SELECT `payload`, `error`, `attempts` FROM `rds_streams`.`outbox_dead_letters` ORDER BY `id`")


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
    logs = session.client("logs", endpoint_url=f"http://{host}:{port}")
    cfn = session.client("cloudformation", endpoint_url=f"http://{host}:{port}")
    template = {"Resources": {"Consumer": {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": FUNCTION, "Handler": "index.handler", "Code": {"ZipFile": CONSUMER}, "Timeout": TIMEOUT_S}}}}
    stubber = Stubber(cfn)
    stubber.add_response("get_template", {"TemplateBody": json.dumps(template)}, {"StackName": "relay-consumer"})
    stubber.add_response("describe_stacks", {"Stacks": [{
        "StackName": "relay-consumer", "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/relay-consumer/1",
        "CreationTime": "2026-12-03T00:00:00Z", "StackStatus": "CREATE_COMPLETE"}]}, {"StackName": "relay-consumer"})
    stubber.activate()

    folder = Path(tempfile.mkdtemp(prefix="rds-streams-relay-"))
    server = MariaDBServer(folder / "mariadb", free_port())
    server.start()
    runner = None
    try:
        root = pymysql.connect(unix_socket=str(server.socket), user="root", charset="utf8mb4", autocommit=True)
        with root.cursor() as cursor:
            for schema in ("relay", "rds_streams"):
                cursor.execute(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4")
        root.select_db("relay")
        install_emulation(root, ["relay", "rds_streams"])
        with root.cursor() as cursor:
            # The relay events run in their definer's context, where only its default role is active.
            cursor.execute(f"GRANT `{LAMBDA_ROLE}` TO CURRENT_USER")
            cursor.execute(f"SET DEFAULT ROLE `{LAMBDA_ROLE}`")
            cursor.execute("CREATE TABLE `hammer` (`k` INT NOT NULL PRIMARY KEY, `version` INT NOT NULL, "
                           "`note` VARCHAR(40) NOT NULL)")
        install_triggers(root, "relay", ["hammer"], StreamSettings(function_arn=ARN, region="eu-west-1",
                                                                   event_source_arn=SOURCE_ARN, delivery="outbox"))
        relay = Relay(root, server, logs)
        runner = Runner(connect=relay.connect, cfn=cfn, logs=logs, consumer_stack="relay-consumer",
                        work_dir=folder / "functions")
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        yield relay
    finally:
        if runner is not None:
            runner.stopping.set()
            thread.join(10)
        server.stop()
        moto.stop()


def _drained(relay: Relay) -> bool:
    lag = outbox_lag(relay.conn)
    return lag is not None and lag.waiting == 0


def test_a_consumer_raising_for_one_record_sets_that_record_alone_aside_under_the_latency_model(relay):
    relay.configure(batch_size=8, max_attempts=2, partitions=1)
    set_latency(relay.conn, 35)
    try:
        with relay.conn.cursor() as cursor:
            relay.conn.begin()
            for k in range(1, 13):  # one transaction: the relay sees all 12 at once, in one first batch
                cursor.execute("INSERT INTO `hammer` VALUES (%s, 0, %s)", (k, "RAISE-1" if k == 5 else "FINE-1"))
            relay.conn.commit()
        wait_for(lambda: relay.dead_letters(), 60, "the raising record set aside")
        wait_for(lambda: _drained(relay), 30, "the rest delivered")
    finally:
        set_latency(relay.conn, 0)
    [(payload, error, attempts)] = relay.dead_letters()
    [dead] = json.loads(payload)["Records"]
    assert dead["dynamodb"]["Keys"] == {"k": {"N": "5"}} and attempts == 2
    assert error.startswith("Lambda API returned error: Unhandled. ")
    assert json.loads(error.split(". ", 1)[1])["errorMessage"] == f"this consumer cannot take {dead['eventID']}"
    delivered = {r["dynamodb"]["Keys"]["k"]["N"] for r in relay.records("FINE-1")}
    assert delivered == {str(k) for k in range(1, 13) if k != 5}
    assert relay.records("RAISE-1") == [], "a batch that failed logs nothing"
    raised = [line for line in relay.log_lines("ValueError") if dead["eventID"] in line]
    # Tried whole, retried, split until alone, retried alone: the consumer saw it fail every time.
    assert len(raised) >= 2 * 4
    relay.execute("DELETE FROM `rds_streams`.`outbox_dead_letters`")


def test_a_consumer_running_past_its_timeout_fails_the_call(relay):
    relay.configure(batch_size=4, max_attempts=1, partitions=1)
    with relay.conn.cursor() as cursor:
        relay.conn.begin()
        for k in range(101, 105):
            cursor.execute("INSERT INTO `hammer` VALUES (%s, 0, %s)", (k, "SLOW-2" if k == 102 else "FINE-2"))
        relay.conn.commit()
    wait_for(lambda: relay.dead_letters(), 60, "the record that times out set aside")
    wait_for(lambda: _drained(relay), 30, "the rest delivered")
    [(payload, error, _)] = relay.dead_letters()
    assert json.loads(payload)["Records"][0]["dynamodb"]["Keys"] == {"k": {"N": "102"}}
    assert "Unhandled" in error and f"Task timed out after {TIMEOUT_S:.2f} seconds" in error
    assert {r["dynamodb"]["Keys"]["k"]["N"] for r in relay.records("FINE-2")} == {"101", "103", "104"}
    assert any("Task timed out" in line for line in relay.log_lines("timed")), "Lambda's timeout line is logged"
    relay.execute("DELETE FROM `rds_streams`.`outbox_dead_letters`")


def hammer(relay: Relay, marker: str, first_key: int, *, keys: int = 50, writers: int = 4, seconds: float = 4.0,
           meanwhile: Any = None) -> dict[int, int]:
    """`writers` connections updating random keys of `keys` for `seconds`; returns each key's last
    committed version. `meanwhile` runs in this thread while they write. No write may fail."""
    with relay.conn.cursor() as cursor:
        cursor.executemany("INSERT INTO `hammer` VALUES (%s, 0, %s)", [(first_key + k, marker) for k in range(keys)])
    committed: dict[int, int] = {}
    failures: list[Exception] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def write(seed: int) -> None:
        rng, conn = random.Random(seed), relay.connect()
        try:
            while time.monotonic() < stop:
                key = first_key + rng.randrange(keys)
                try:
                    with conn.cursor() as cursor:
                        cursor.execute("UPDATE `hammer` SET `version` = `version` + 1 WHERE `k` = %s", (key,))
                        cursor.execute("SELECT `version` FROM `hammer` WHERE `k` = %s", (key,))
                        version = cursor.fetchone()[0]
                    with lock:
                        committed[key] = max(committed.get(key, 0), version)
                except pymysql.err.Error as err:  # counted: there must be none
                    failures.append(err)
        finally:
            conn.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    if meanwhile:
        meanwhile()
    for thread in threads:
        thread.join()
    assert failures == [], "no write fails"
    assert sum(committed.values()) > 200, "the writers made enough changes to mean something"
    return committed


def assert_every_change_in_commit_order(relay: Relay, marker: str, committed: dict[int, int]) -> None:
    wait_for(lambda: _drained(relay), 60, "every change delivered")
    first_seen: dict[str, dict[str, Any]] = {}
    for record in relay.records(marker):
        if record["eventName"] == "MODIFY":
            first_seen.setdefault(record["eventID"], record)
    versions: dict[int, list[int]] = {}
    for record in first_seen.values():
        key = int(record["dynamodb"]["Keys"]["k"]["N"])
        versions.setdefault(key, []).append(int(record["dynamodb"]["NewImage"]["version"]["N"]))
    for key, last in committed.items():
        assert versions.get(key) == list(range(1, last + 1)), f"key {key}: missing or out of commit order"
    assert relay.dead_letters() == []


def test_with_four_relays_every_keys_changes_arrive_in_commit_order(relay):
    relay.configure(batch_size=200, max_attempts=3, partitions=4)
    relay.execute("UPDATE `rds_streams`.`outbox_relays` SET `delivered` = 0")
    committed = hammer(relay, "ORDER-3", 1000)
    assert_every_change_in_commit_order(relay, "ORDER-3", committed)
    assert [p.relay for p in outbox_lag(relay.conn).partitions] == [0, 1, 2, 3]
    # 50 keys over 64 buckets: every relay had keys of its own to deliver.
    assert all(n > 0 for (n,) in relay.execute("SELECT `delivered` FROM `rds_streams`.`outbox_relays` ORDER BY `relay`"))


def test_changing_the_number_of_relays_under_load_keeps_every_keys_order(relay):
    relay.configure(batch_size=200, max_attempts=3, partitions=4)

    def repartition() -> None:
        for partitions in (2, 3, 1, 4):
            time.sleep(0.8)
            relay.configure(batch_size=200, max_attempts=3, partitions=partitions)

    committed = hammer(relay, "REPART-4", 2000, meanwhile=repartition)
    assert_every_change_in_commit_order(relay, "REPART-4", committed)
    assert len(outbox_lag(relay.conn).partitions) == 4
