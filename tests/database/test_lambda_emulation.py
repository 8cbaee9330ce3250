"""The sandbox's Aurora Lambda emulation behaves as Aurora does for the triggers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from orchestrator.config import Dialect
from orchestrator.sandbox.aurora_emulation import (
    LambdaCall,
    SyncAnswers,
    clear_faults,
    fetch_calls,
    fetch_sync_calls,
    inject_fault,
    latency,
    set_latency,
)
from tests.database.conftest import FUNCTION_ARN, StreamDb

ACCESS_DENIED = "Access denied; you need (at least one of) the Invoke Lambda privilege(s) for this operation"
TABLE = "CREATE TABLE `items` (`id` INT NOT NULL PRIMARY KEY, `name` VARCHAR(40) NULL)"


@pytest.fixture
def items(stream_db: StreamDb) -> StreamDb:
    stream_db.execute(TABLE)
    return stream_db


def test_rolled_back_write_still_calls_lambda(items: StreamDb) -> None:
    items.install(["items"])
    items.conn.begin()
    items.execute("INSERT INTO items VALUES (1, 'gone')")
    items.conn.rollback()
    assert items.query("SELECT * FROM items") == []
    [record] = items.new_records()
    assert record["eventName"] == "INSERT" and record["dynamodb"]["Keys"] == {"id": {"N": "1"}}


def test_definer_without_the_lambda_role_is_refused_as_on_aurora(items: StreamDb) -> None:
    user = f"app_{items.schema}"
    items.execute(f"CREATE USER '{user}'@'%'")
    items.execute(f"GRANT ALL ON `{items.schema}`.* TO '{user}'@'%'")
    items.install(["items"], definer=f"{user}@%")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        items.execute("INSERT INTO items VALUES (1, 'x')")
    assert refused.value.args == (1227, ACCESS_DENIED)
    assert items.query("SELECT * FROM items") == []

    items.execute(f"GRANT AWS_LAMBDA_ACCESS TO '{user}'@'%'")
    items.execute(f"SET DEFAULT ROLE AWS_LAMBDA_ACCESS FOR '{user}'@'%'")
    items.execute("INSERT INTO items VALUES (1, 'x')")
    [call] = [c for c in fetch_calls(items.conn, items.seen_call_id) if items.schema in c.payload]
    assert call.caller == f"{user}@%" and call.function_arn == FUNCTION_ARN
    items.execute(f"DROP USER '{user}'@'%'")


@pytest.fixture
def definer_and_app(items: StreamDb) -> Iterator[tuple[str, str]]:
    """A definer holding AWS_LAMBDA_ACCESS granted (not default) and an app user with DML only."""
    definer, app = f"definer_{items.schema}", f"app_{items.schema}"
    for user in (definer, app):
        items.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    items.execute(f"GRANT ALL ON `{items.schema}`.* TO '{definer}'@'%'")
    items.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{items.schema}`.* TO '{app}'@'%'")
    items.execute(f"GRANT AWS_LAMBDA_ACCESS TO '{definer}'@'%'")
    items.install(["items"], definer=f"{definer}@%")
    yield definer, app
    for user in (definer, app):
        items.execute(f"DROP USER '{user}'@'%'")


def test_a_role_granted_but_not_default_fails_only_writes_of_other_users_as_on_aurora(
        items: StreamDb, definer_and_app: tuple[str, str]) -> None:
    definer, app = definer_and_app
    # The definer's own session: its granted roles are active (activate_all_roles_on_login).
    with items.connect(definer, password="pw").cursor() as cursor:
        cursor.execute("INSERT INTO items VALUES (1, 'by the definer')")
    # Another user's write runs the trigger in the definer's context: only default roles count there.
    with items.connect(app, password="pw").cursor() as cursor:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cursor.execute("INSERT INTO items VALUES (2, 'by the app')")
        assert refused.value.args == (1227, ACCESS_DENIED)
        with pytest.raises(pymysql.err.OperationalError, match="Invoke Lambda privilege"):
            cursor.execute("UPDATE items SET name = 'changed' WHERE id = 1")
        with pytest.raises(pymysql.err.OperationalError, match="Invoke Lambda privilege"):
            cursor.execute("DELETE FROM items WHERE id = 1")
    assert items.query("SELECT id, name FROM items") == [{"id": 1, "name": "by the definer"}]
    assert [r["eventName"] for r in items.new_records()] == ["INSERT"]


def test_a_default_lambda_role_lets_every_users_writes_through_the_triggers(
        items: StreamDb, definer_and_app: tuple[str, str]) -> None:
    definer, app = definer_and_app
    before = items.seen_call_id
    items.execute(f"SET DEFAULT ROLE AWS_LAMBDA_ACCESS FOR '{definer}'@'%'")
    with items.connect(app, password="pw").cursor() as cursor:
        cursor.execute("INSERT INTO items VALUES (2, 'by the app')")
        cursor.execute("UPDATE items SET name = 'changed' WHERE id = 2")
        cursor.execute("DELETE FROM items WHERE id = 2")
    records = items.new_records()
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    calls = [c for c in fetch_calls(items.conn, before) if items.schema in c.payload]
    assert {c.caller for c in calls} == {f"{definer}@%"}


def test_fault_switch_fails_the_write_with_auroras_error(items: StreamDb) -> None:
    items.install(["items"])
    fault = inject_fault(items.conn)
    with pytest.raises(pymysql.err.OperationalError) as failed:
        items.execute("INSERT INTO items VALUES (1, 'x')")
    assert failed.value.args == (1873, "Lambda API returned error: Network Connection. Unable to connect to endpoint")
    assert items.query("SELECT * FROM items") == []
    clear_faults(items.conn, fault)
    items.execute("INSERT INTO items VALUES (1, 'x')")
    assert [r["eventName"] for r in items.new_records()] == ["INSERT"]


def test_fault_can_target_payloads_containing_a_text(items: StreamDb) -> None:
    items.install(["items"])
    inject_fault(items.conn, payload_contains="poison", reason="Throttled")
    items.execute("INSERT INTO items VALUES (1, 'fine')")
    with pytest.raises(pymysql.err.OperationalError, match="Lambda API returned error: Throttled"):
        items.execute("INSERT INTO items VALUES (2, 'poison pill')")
    clear_faults(items.conn)
    assert [r["dynamodb"]["Keys"] for r in items.new_records()] == [{"id": {"N": "1"}}]


def test_v2_dialect_triggers_call_the_native_lambda_async_not_the_deprecated_procedure(items: StreamDb) -> None:
    plans = items.install(["items"], dialect=Dialect.V2)
    body = items.query("SELECT ACTION_STATEMENT AS body FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                       "AND EVENT_MANIPULATION = 'INSERT'", (items.schema,))[0]["body"]
    assert "= lambda_async(" in body and "mysql.lambda_async" not in body and plans[0].needs_work
    items.execute("INSERT INTO items VALUES (1, 'v2')")
    items.execute("UPDATE items SET name = 'v2!' WHERE id = 1")
    items.execute("DELETE FROM items")
    assert [r["eventName"] for r in items.new_records()] == ["INSERT", "MODIFY", "REMOVE"]


def _call_sync(items: StreamDb, payload: str, outcome: dict[str, Any]) -> threading.Thread:
    """lambda_sync from its own session (it waits inside its statement), its result or error into `outcome`."""
    conn = items.connect()

    def call() -> None:
        started = time.monotonic()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT lambda_sync(%s, %s)", (FUNCTION_ARN, payload))
                outcome["result"] = cursor.fetchone()[0]
        except pymysql.err.OperationalError as err:
            outcome["error"] = err.args
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def _waiting_call(items: StreamDb, payload: str) -> LambdaCall:
    """The lambda_sync call carrying `payload`, as the runner sees it (it is not committed yet)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [c for c in fetch_sync_calls(items.conn) if c.payload == payload]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no lambda_sync call with {payload} reached the queue")


def test_lambda_sync_waits_for_the_function_and_succeeds_only_when_it_did(items: StreamDb) -> None:
    answers, outcome = SyncAnswers(items.conn), {}
    thread = _call_sync(items, '{"ping": 1}', outcome)
    call = _waiting_call(items, '{"ping": 1}')
    time.sleep(0.3)
    returned_early = dict(outcome)
    answers.answer(call.id, None)
    thread.join(10)
    assert returned_early == {}, "lambda_sync returned before the function ran"
    assert (call.invocation_type, call.function_arn, call.caller.split("@")[0]) == ("RequestResponse", FUNCTION_ARN, "root")
    assert json.loads(outcome["result"])["StatusCode"] == 200 and outcome["seconds"] >= 0.3
    assert fetch_sync_calls(items.conn) == [], "the caller takes its answered call off the queue"
    answers.settle(set())


def test_lambda_sync_returns_the_functions_own_response(items: StreamDb) -> None:
    answers, outcome = SyncAnswers(items.conn), {}
    thread = _call_sync(items, '{"ping": 3}', outcome)
    call = _waiting_call(items, '{"ping": 3}')
    answers.answer(call.id, None, json.dumps({"records": 1, "note": "ok"}))
    thread.join(10)
    assert json.loads(outcome["result"]) == {"records": 1, "note": "ok"}
    answers.settle(set())
    with items.conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'lambda\\_result\\_%%'")
        assert cursor.fetchone()[0] == 0, "the answer is withdrawn with its call"


def test_lambda_sync_fails_with_auroras_error_and_the_functions_error_document(items: StreamDb) -> None:
    answers, outcome = SyncAnswers(items.conn), {}
    thread = _call_sync(items, '{"ping": 2}', outcome)
    call = _waiting_call(items, '{"ping": 2}')
    answers.answer(call.id, json.dumps({"errorMessage": "cannot take this record", "errorType": "ValueError"}))
    thread.join(10)
    errno, message = outcome["error"]
    assert errno == 1873 and message.startswith("Lambda API returned error: Unhandled. ")
    assert json.loads(message.split(". ", 1)[1]) == {"errorMessage": "cannot take this record", "errorType": "ValueError"}
    assert fetch_sync_calls(items.conn) == [], "the failed statement takes its call back"
    answers.settle(set())


def test_lambda_sync_fails_when_no_runner_answers(items: StreamDb) -> None:
    items.execute("UPDATE rds_streams_sandbox.lambda_settings SET sync_wait_s = 1")
    try:
        outcome: dict[str, Any] = {}
        _call_sync(items, '{"ping": 3}', outcome).join(10)
    finally:
        items.execute("UPDATE rds_streams_sandbox.lambda_settings SET sync_wait_s = DEFAULT")
    assert outcome["error"][0] == 1873 and "No response" in outcome["error"][1] and outcome["seconds"] >= 1


def test_the_latency_model_makes_each_direct_write_pay_the_round_trip(items: StreamDb) -> None:
    items.install(["items"])
    set_latency(items.conn, 80)
    try:
        started = time.monotonic()
        items.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        slowed = time.monotonic() - started
    finally:
        set_latency(items.conn, 0)
    assert slowed >= 3 * 0.08, "three rows, three lambda_async calls inside the writer's statement"
    assert latency(items.conn) == 0
    assert len(items.new_records()) == 3


