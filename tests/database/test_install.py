"""Installing, replacing and checking triggers: idempotent, no lost change, drift reported."""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.database.catalog import read_table_shape
from orchestrator.database.table_shape import Column, TableShape
from orchestrator.database.trigger_install import generation_of, plan_triggers, trigger_drift, wanted_triggers
from orchestrator.database.triggers import StreamSettings, generate_triggers, trigger_name
from orchestrator.errors import OperationFailed
from tests.database.conftest import FUNCTION_ARN, StreamDb

TABLE = "CREATE TABLE `orders` (`id` INT NOT NULL PRIMARY KEY, `qty` INT NULL, `note` VARCHAR(20) NULL)"


def expected_names(db: StreamDb, table: str = "orders", view_type: str = "NEW_AND_OLD_IMAGES") -> list[str]:
    """What install names the triggers: `rds_streams_<table>_<event>_<generation>`."""
    return [d.name for d in wanted_triggers(db.conn, db.schema, [table], db.settings(view_type))[0][table]]


def installed(db: StreamDb) -> dict[str, tuple[str, object]]:
    rows = db.query("SELECT TRIGGER_NAME AS name, ACTION_STATEMENT AS body, CREATED AS created "
                    "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (db.schema,))
    return {row["name"]: (row["body"], row["created"]) for row in rows}


@pytest.fixture
def orders(stream_db: StreamDb) -> StreamDb:
    stream_db.execute(TABLE)
    return stream_db


def test_install_creates_three_triggers_and_plan_lists_their_columns(orders: StreamDb) -> None:
    [plan] = plan_triggers(orders.conn, orders.schema, ["orders"], orders.settings())
    assert plan.columns == ("id", "qty", "note")
    names = expected_names(orders)
    assert [(c.name, c.action) for c in plan.changes] == [(name, "create") for name in names]
    assert [n.rsplit("_", 1)[0] for n in names] == [f"rds_streams_orders_{e}" for e in ("insert", "update", "delete")]
    assert installed(orders) == {}
    orders.install(["orders"])
    assert sorted(installed(orders)) == sorted(names)


def test_installing_twice_changes_nothing(orders: StreamDb) -> None:
    orders.install(["orders"])
    before = installed(orders)
    time.sleep(0.02)
    [plan] = orders.install(["orders"])
    assert not plan.needs_work and {c.action for c in plan.changes} == {"unchanged"}
    assert installed(orders) == before
    assert all(drift.in_sync for drift in trigger_drift(orders.conn, orders.schema, ["orders"], orders.settings()))


def test_changed_settings_replace_the_triggers(orders: StreamDb) -> None:
    orders.install(["orders"], "KEYS_ONLY")
    [plan] = orders.install(["orders"], "NEW_IMAGE")
    assert {c.action for c in plan.changes} == {"replace"}
    orders.execute("INSERT INTO orders VALUES (1, 2, 'x')")
    [record] = orders.new_records()
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE" and "NewImage" in record["dynamodb"]


def test_table_without_primary_key_is_refused(orders: StreamDb) -> None:
    orders.execute("CREATE TABLE `log` (`line` TEXT)")
    with pytest.raises(OperationFailed, match=r"log has no primary key") as refused:
        orders.install(["log"])
    assert "ADD PRIMARY KEY" in (refused.value.hint or "")
    assert installed(orders) == {}


def test_missing_table_is_refused(orders: StreamDb) -> None:
    with pytest.raises(OperationFailed, match="does not exist"):
        orders.install(["nope"])


def test_drift_after_a_column_is_added(orders: StreamDb) -> None:
    orders.install(["orders"])
    before = expected_names(orders)
    orders.execute("ALTER TABLE orders ADD COLUMN `added` DATE NULL")
    [drift] = trigger_drift(orders.conn, orders.schema, ["orders"], orders.settings())
    assert (drift.missing, drift.changed, drift.extra) == (tuple(expected_names(orders)), tuple(before), ())
    orders.install(["orders"])
    assert sorted(installed(orders)) == sorted(expected_names(orders))
    orders.execute("INSERT INTO orders VALUES (1, 2, 'x', '2024-02-29')")
    assert orders.new_records()[0]["dynamodb"]["NewImage"]["added"] == {"S": "2024-02-29"}


def test_drift_after_a_trigger_is_dropped_and_our_triggers_on_a_table_no_longer_streamed(orders: StreamDb) -> None:
    orders.execute("CREATE TABLE `gone` (`id` INT PRIMARY KEY)")
    orders.install(["orders", "gone"])
    names = expected_names(orders)
    orders.execute(f"DROP TRIGGER `{names[1]}`")
    drift = {d.table: d for d in trigger_drift(orders.conn, orders.schema, ["orders"], orders.settings())}
    assert drift["orders"].missing == (names[1],) and drift["orders"].extra == ()
    assert drift["gone"].extra == tuple(expected_names(orders, "gone"))
    orders.install(["orders"])
    assert all(d.in_sync for d in trigger_drift(orders.conn, orders.schema, ["orders"], orders.settings()))
    assert sorted(installed(orders)) == sorted(names)


def test_trigger_names_are_deterministic_and_fit_64_characters() -> None:
    assert trigger_name("routes", "INSERT") == "rds_streams_routes_insert"
    long_name = "x" * 64
    odd = "with space`and😀"
    for table in (long_name, odd):
        names = {trigger_name(table, event) for event in ("INSERT", "UPDATE", "DELETE")}
        assert len(names) == 3 and all(len(n) <= 64 and n.startswith("rds_streams_") for n in names)
        assert trigger_name(table, "INSERT") == trigger_name(table, "INSERT")
    assert trigger_name("x" * 63, "INSERT") != trigger_name("x" * 64, "INSERT")
    shape = TableShape("s", long_name, (Column("id", "int", "int", False, None, 10, 0, None),), ("id",))
    settings = StreamSettings(function_arn=FUNCTION_ARN, region="eu-west-1", event_source_arn="arn:x")
    assert all(len(generation_of(d).name) <= 64 for d in generate_triggers(shape, settings))


def test_odd_table_names_get_working_triggers(stream_db: StreamDb) -> None:
    table = "order `details` " + "y" * 40
    stream_db.execute(f"CREATE TABLE `{table.replace('`', '``')}` (`select` INT PRIMARY KEY)")
    stream_db.install([table])
    stream_db.execute(f"INSERT INTO `{table.replace('`', '``')}` VALUES (7)")
    [record] = stream_db.new_records()
    assert record["dynamodb"]["Keys"] == {"select": {"N": "7"}}


def test_replacing_triggers_loses_no_concurrent_change(orders: StreamDb) -> None:
    orders.install(["orders"], "NEW_IMAGE")
    writer_conn = orders.connect()
    committed: list[int] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with writer_conn.cursor() as cursor:
                row_id = 0
                while not stop.is_set():
                    row_id += 1
                    cursor.execute("INSERT INTO orders (id, qty) VALUES (%s, 1)", (row_id,))
                    committed.append(row_id)
        except BaseException as err:  # reported below; a thread's exception is otherwise lost
            failures.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        replaced = 0
        for view_type in ["NEW_AND_OLD_IMAGES", "KEYS_ONLY"] * 4:
            time.sleep(0.02)
            [plan] = orders.install(["orders"], view_type)
            replaced += plan.needs_work
    finally:
        stop.set()
        writer.join()
    assert not failures and replaced == 8 and len(committed) > 50
    records = orders.new_records()
    keys = [int(r["dynamodb"]["Keys"]["id"]["N"]) for r in records]
    assert sorted(keys) == committed  # each committed row exactly once
    assert {r["dynamodb"]["StreamViewType"] for r in records} == {"NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"}


def test_generated_sql_never_concatenates_json(orders: StreamDb) -> None:
    shape = read_table_shape(orders.conn, orders.schema, "orders")
    for definition in generate_triggers(shape, orders.settings()):
        assert "CONCAT('{" not in definition.body and "'\"" not in definition.body
        assert definition.body.startswith("BEGIN") and definition.body.endswith("END")
