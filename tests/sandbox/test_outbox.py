"""Outbox delivery on the sandbox (real MariaDB event scheduler, runner, moto logs): no phantom
events, no failed writes while Lambda fails, per-key order, poison records set aside, nothing lost
across a MariaDB restart and a killed runner."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from orchestrator.config import load_config
from orchestrator.sandbox.aurora_emulation import clear_faults, inject_fault
from orchestrator.sandbox.manager import Sandbox
from tests.sandbox.conftest import (
    ROUTE_INSERT,
    ROUTE_UPDATE,
    local_config,
    logged_records,
    root_connection,
    wait_for,
)


@pytest.fixture(scope="module")
def outbox_sandbox(tmp_path_factory):
    from orchestrator.cli import main

    config_path = local_config(tmp_path_factory.mktemp("outbox"),
                               {"stream": {"delivery": "outbox", "batch_size": 50, "max_attempts": 2}})
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def outbox_rows(config_path) -> int:
    conn = root_connection(config_path)
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM `rds_streams`.`outbox`")
        count = cursor.fetchone()[0]
    conn.close()
    return count


def test_a_rolled_back_transaction_emits_nothing(outbox_sandbox):
    conn = root_connection(outbox_sandbox)
    conn.autocommit(False)
    with conn.cursor() as cursor:
        cursor.execute(ROUTE_INSERT, ("RB1", "ROLLBACK-1", "XX"))
        cursor.execute(ROUTE_INSERT, ("COMMIT1", "ROLLBACK-1", "XX"))
    conn.rollback()
    with conn.cursor() as cursor:
        cursor.execute(ROUTE_INSERT, ("COMMIT2", "ROLLBACK-1", "XX"))
    conn.commit()
    conn.close()
    records = wait_for(lambda: logged_records(outbox_sandbox, "ROLLBACK-1"), 15, "the committed insert")
    time.sleep(2.0)  # two more delivery cycles for anything that should not come
    keys = [r["dynamodb"]["Keys"]["airportFrom"]["S"] for r in logged_records(outbox_sandbox, "ROLLBACK-1")]
    assert keys == ["COMMIT2"], records


def test_no_write_fails_while_lambda_fails_and_every_change_arrives_in_order(outbox_sandbox):
    writers, updates = 4, 15
    conn = root_connection(outbox_sandbox)
    fault = inject_fault(conn, reason="Rate Exceeded.")
    errors: list[Exception] = []

    def write(n: int) -> None:
        own = root_connection(outbox_sandbox)
        try:
            with own.cursor() as cursor:
                cursor.execute(ROUTE_INSERT, (f"W{n}", "LOAD-2", "v00"))
                for version in range(1, updates + 1):
                    cursor.execute(ROUTE_UPDATE, (f"v{version:02d}", f"W{n}", "LOAD-2"))
        except Exception as err:  # counted: there must be none
            errors.append(err)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(3.0)  # Lambda keeps failing for a while: the event retries, splits, sets nothing aside
    assert errors == [], "no write fails because Lambda does"
    assert outbox_rows(outbox_sandbox) == writers * (updates + 1)
    clear_faults(conn, fault)
    conn.close()

    expected = writers * (updates + 1)
    wait_for(lambda: len({r["eventID"] for r in logged_records(outbox_sandbox, "LOAD-2")}) >= expected, 60,
             "every committed change")
    records = logged_records(outbox_sandbox, "LOAD-2")
    first_seen: dict[str, dict] = {}
    for record in records:
        first_seen.setdefault(record["eventID"], record)
    assert len(first_seen) == expected, "duplicates are only repeats of the same eventID"
    for n in range(writers):
        versions = [r["dynamodb"]["NewImage"]["carrierCode"]["S"] for r in first_seen.values()
                    if r["dynamodb"]["Keys"]["airportFrom"]["S"] == f"W{n}"]
        assert versions == [f"v{v:02d}" for v in range(updates + 1)], f"W{n} arrived out of commit order"
    assert outbox_rows(outbox_sandbox) == 0
    conn = root_connection(outbox_sandbox)
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM `rds_streams`.`outbox_dead_letters`")
        assert cursor.fetchone()[0] == 0, "an outage sets nothing aside as poison"
    conn.close()


def test_a_poison_record_goes_to_dead_letters_and_the_records_after_it_are_delivered(outbox_sandbox):
    conn = root_connection(outbox_sandbox)
    fault = inject_fault(conn, reason="the consumer rejects this record", payload_contains="POISON")
    after: list[str] = []

    def dead_letters() -> list:
        with conn.cursor() as cursor:
            cursor.execute("SELECT `payload`, `error` FROM `rds_streams`.`outbox_dead_letters`")
            found = cursor.fetchall()
        conn.commit()
        if not found:  # the record after the poison one must be in its partition (a key's relay): add some
            with conn.cursor() as cursor:
                for _ in range(4):
                    after.append(f"PA{len(after)}")
                    cursor.execute(ROUTE_INSERT, (after[-1], "AFTER-3", "XX"))
        return found

    try:
        with conn.cursor() as cursor:
            for key in ("P1", "POISON"):
                cursor.execute(ROUTE_INSERT, (key, "POISON-3" if key == "POISON" else "AFTER-3", "XX"))
        after.append("P1")
        dead = wait_for(dead_letters, 60, "the poison record set aside")
        wait_for(lambda: {r["dynamodb"]["Keys"]["airportFrom"]["S"] for r in logged_records(outbox_sandbox, "AFTER-3")}
                 >= set(after), 60, "the records around the poison one")
        assert len(dead) == 1 and "POISON-3" in dead[0][0] and "rejects this record" in dead[0][1]
        assert logged_records(outbox_sandbox, "POISON-3") == []
    finally:
        clear_faults(conn, fault)
        conn.close()


def test_nothing_committed_is_lost_when_mariadb_restarts_and_the_runner_is_killed(outbox_sandbox):
    config = load_config(outbox_sandbox)
    sandbox = Sandbox(config)
    state = sandbox.state()
    committed: list[str] = []
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                conn = root_connection(outbox_sandbox)
                with conn.cursor() as cursor:
                    cursor.execute(ROUTE_INSERT, (f"R{n}", "CRASH-4", "XX"))
                committed.append(f"R{n}")  # autocommit: the insert returned, so it is committed
                conn.close()
            except Exception:  # the server is restarting: this write did not commit
                time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(1.0)
        os.kill(sandbox.runner_pid(), signal.SIGKILL)
        time.sleep(0.5)
        sandbox.mariadb(state).stop()
        time.sleep(0.5)
        sandbox.mariadb(state).start()
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join()
    sandbox.restart_runner(state)
    assert len(committed) > 10
    delivered = wait_for(
        lambda: (keys := {r["dynamodb"]["Keys"]["airportFrom"]["S"] for r in logged_records(outbox_sandbox, "CRASH-4")})
        >= set(committed) and keys, 60, "every committed insert")
    assert set(committed) <= delivered


def test_switching_delivery_under_load_loses_no_change(outbox_sandbox):
    from orchestrator.cli import main

    committed: list[str] = []
    stop = threading.Event()

    def write() -> None:
        conn = root_connection(outbox_sandbox)
        n = 0
        while not stop.is_set():
            n += 1
            with conn.cursor() as cursor:
                cursor.execute(ROUTE_INSERT, (f"S{n}", "SWITCH-5", "XX"))
            committed.append(f"S{n}")
            time.sleep(0.005)
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for delivery in ("direct", "outbox"):
            local_config(outbox_sandbox.parent, {"stream": {"delivery": delivery, "batch_size": 50, "max_attempts": 2}})
            assert main(["up", "--config", str(outbox_sandbox), "--yes", "--output", "json"]) == 0
            time.sleep(0.5)
    finally:
        stop.set()
        writer.join()
    assert len(committed) > 50
    wait_for(lambda: {r["dynamodb"]["Keys"]["airportFrom"]["S"] for r in logged_records(outbox_sandbox, "SWITCH-5")}
             >= set(committed), 60, "every change made across both switches")


def test_status_shows_the_lag_of_each_relay(outbox_sandbox, cli):
    code, out = cli("status", "--config", str(outbox_sandbox))
    [status] = [o for o in out if o["type"] == "status"]
    assert code == 0
    partitions = status["outbox"]["partitions"]
    assert [p["relay"] for p in partitions] == [0, 1, 2, 3], "four relays unless the config says otherwise"
    assert all(p["waiting"] >= 0 for p in partitions)
    assert status["outbox"]["waiting"] == sum(p["waiting"] for p in partitions)
