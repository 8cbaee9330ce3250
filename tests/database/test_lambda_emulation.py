"""The sandbox's Aurora Lambda emulation behaves as Aurora does for the triggers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pymysql
import pytest

from orchestrator.config import Dialect
from orchestrator.sandbox.aurora_emulation import clear_faults, fetch_calls, inject_fault
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


def test_lambda_sync_queues_the_call_and_returns_json(items: StreamDb) -> None:
    result = items.query("SELECT lambda_sync(%s, %s) AS r", (FUNCTION_ARN, '{"ping": 1}'))[0]["r"]
    assert json.loads(result)["StatusCode"] == 200
    [call] = fetch_calls(items.conn, items.seen_call_id)
    assert (call.invocation_type, json.loads(call.payload)) == ("RequestResponse", {"ping": 1})
