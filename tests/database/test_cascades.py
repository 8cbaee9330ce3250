"""Rows changed by cascading foreign keys arrive as records, with the images a direct change would give,
through a three-level chain, in both delivery modes, while another writer keeps writing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from orchestrator.database.cascades import cascade_paths_covered
from orchestrator.database.catalog import read_table_shape
from orchestrator.database.images import decode_image
from orchestrator.database.trigger_install import plan_triggers
from orchestrator.errors import ConfigError
from orchestrator.sandbox.aurora_emulation import clear_faults, inject_fault
from tests.database.conftest import StreamDb
from tests.database.consumers import create_outbox_table, drop_outbox_table, outbox_records

CHAIN_SQL = (
    "CREATE TABLE customers (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NULL) ENGINE = InnoDB",
    "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, customer_id INT NOT NULL, note VARCHAR(20) NULL, "
    "CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) "
    "ON DELETE CASCADE ON UPDATE CASCADE) ENGINE = InnoDB",
    "CREATE TABLE items (order_id INT NOT NULL, line INT NOT NULL, sku VARCHAR(10) NULL, PRIMARY KEY (order_id, line), "
    "CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE ON UPDATE CASCADE) "
    "ENGINE = InnoDB",
    "CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, item_order INT NULL, item_line INT NULL, body TEXT NULL, "
    "CONSTRAINT fk_notes_item FOREIGN KEY (item_order, item_line) REFERENCES items (order_id, line) "
    "ON DELETE SET NULL) ENGINE = InnoDB",
    "CREATE TABLE writes (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL) ENGINE = InnoDB",
)
STREAMED = ["customers", "orders", "items", "notes", "writes"]
ROWS = (
    "INSERT INTO customers VALUES (1, 'ada'), (2, 'bob')",
    "INSERT INTO orders VALUES (10, 1, 'first'), (11, 1, 'second'), (20, 2, 'other')",
    "INSERT INTO items VALUES (10, 1, 'a'), (10, 2, 'b'), (11, 1, 'c'), (20, 1, 'z')",
    "INSERT INTO notes VALUES (100, 10, 1, 'on a'), (101, 11, 1, 'on c'), (102, NULL, NULL, 'loose'), (103, 20, 1, 'z')",
)


def make_chain(db: StreamDb, mode: str) -> Any:
    """The four chained tables and `writes`, streamed with `mode`, with rows; how to read new records."""
    for statement in CHAIN_SQL:
        db.execute(statement)
    db.install(STREAMED, delivery=mode)
    for statement in ROWS:
        db.execute(statement)
    read = db.new_records if mode == "direct" else lambda: outbox_records(db)
    assert len(read()) == 13
    return read


@pytest.fixture(params=["direct", "outbox"])
def chain(stream_db: StreamDb, request: pytest.FixtureRequest) -> Iterator[tuple[StreamDb, Any, str]]:
    created = request.param == "outbox" and create_outbox_table(stream_db)
    yield stream_db, make_chain(stream_db, request.param), request.param
    drop_outbox_table(stream_db, created)


@pytest.fixture
def writer(stream_db: StreamDb) -> Iterator[list[int]]:
    """Another session inserting into `writes` all along; every insert must succeed and be streamed."""
    done, written = threading.Event(), []
    conn = stream_db.connect()

    def write() -> None:
        with conn.cursor() as cursor:
            while not done.is_set():
                cursor.execute("INSERT INTO writes (n) VALUES (%s)", (len(written),))
                written.append(cursor.lastrowid)

    thread = threading.Thread(target=write)
    thread.start()
    yield written
    done.set()
    thread.join()


def by_table(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        tables.setdefault(record["eventSourceARN"].rsplit("/", 1)[1], []).append(record)
    return tables


def images(db: StreamDb, table: str, record: dict[str, Any]) -> tuple[str, dict | None, dict | None, dict]:
    shape = read_table_shape(db.conn, db.schema, table)
    ddb = record["dynamodb"]
    return (record["eventName"], *(decode_image(ddb[n], shape) if n in ddb else None for n in ("NewImage", "OldImage")),
            decode_image(ddb["Keys"], shape))


def test_deleting_a_customer_emits_its_orders_items_and_nulled_notes(chain: tuple[StreamDb, Any, str],
                                                                      writer: list[int]) -> None:
    db, read, mode = chain
    db.execute("DELETE FROM customers WHERE id = 1")
    tables = by_table([r for r in read() if "/writes" not in r["eventSourceARN"]])
    assert [images(db, "customers", r)[0] for r in tables.pop("customers")] == ["REMOVE"]
    orders = sorted((images(db, "orders", r) for r in tables.pop("orders")), key=lambda o: o[3]["id"])
    assert orders == [("REMOVE", None, {"id": 10, "customer_id": 1, "note": "first"}, {"id": 10}),
                      ("REMOVE", None, {"id": 11, "customer_id": 1, "note": "second"}, {"id": 11})]
    items = sorted((images(db, "items", r) for r in tables.pop("items")), key=lambda i: (i[3]["order_id"], i[3]["line"]))
    assert [(i[0], i[2]) for i in items] == [("REMOVE", {"order_id": 10, "line": 1, "sku": "a"}),
                                             ("REMOVE", {"order_id": 10, "line": 2, "sku": "b"}),
                                             ("REMOVE", {"order_id": 11, "line": 1, "sku": "c"})]
    notes = sorted((images(db, "notes", r) for r in tables.pop("notes")), key=lambda n: n[3]["id"])
    assert notes == [("MODIFY", {"id": 100, "item_order": None, "item_line": None, "body": "on a"},
                      {"id": 100, "item_order": 10, "item_line": 1, "body": "on a"}, {"id": 100}),
                     ("MODIFY", {"id": 101, "item_order": None, "item_line": None, "body": "on c"},
                      {"id": 101, "item_order": 11, "item_line": 1, "body": "on c"}, {"id": 101})]
    assert tables == {}
    assert db.query("SELECT COUNT(*) AS n FROM orders") == [{"n": 1}]
    assert db.query("SELECT id FROM notes WHERE item_order IS NULL ORDER BY id") == [{"id": 100}, {"id": 101}, {"id": 102}]


def test_a_key_update_cascades_as_modify_or_remove_then_insert(chain: tuple[StreamDb, Any, str], writer: list[int]) -> None:
    db, read, mode = chain
    db.execute("UPDATE customers SET id = 3 WHERE id = 2")  # orders.customer_id: not in its key
    db.execute("DELETE FROM notes WHERE id = 103")
    db.execute("UPDATE orders SET id = 21 WHERE id = 20")  # items.order_id: part of its key
    events = [(r["eventSourceARN"].rsplit("/", 1)[1], *images(db, r["eventSourceARN"].rsplit("/", 1)[1], r))
              for r in read() if "/writes" not in r["eventSourceARN"]]
    assert ("orders", "MODIFY", {"id": 20, "customer_id": 3, "note": "other"},
            {"id": 20, "customer_id": 2, "note": "other"}, {"id": 20}) in events
    item_events = [e for e in events if e[0] == "items"]
    assert item_events == [("items", "REMOVE", None, {"order_id": 20, "line": 1, "sku": "z"}, {"order_id": 20, "line": 1}),
                           ("items", "INSERT", {"order_id": 21, "line": 1, "sku": "z"}, None, {"order_id": 21, "line": 1})]
    assert [e[:2] for e in events if e[0] == "customers"] == [("customers", "REMOVE"), ("customers", "INSERT")]
    assert [e[:2] for e in events if e[0] == "notes"] == [("notes", "REMOVE")]


def test_the_writer_lost_nothing_while_cascades_ran(chain: tuple[StreamDb, Any, str], writer: list[int]) -> None:
    db, read, mode = chain
    for _ in range(5):
        db.execute("DELETE FROM items WHERE line = 99")
        db.execute("UPDATE customers SET name = 'x' WHERE id = 1")
    db.execute("DELETE FROM customers")
    writes_before = len(writer)
    assert writes_before > 0
    streamed = {int(r["dynamodb"]["Keys"]["id"]["N"]) for r in read() if "/writes" in r["eventSourceARN"]}
    assert set(writer[:writes_before]) <= streamed


def test_status_names_the_cascade_paths_covered(stream_db: StreamDb) -> None:
    for statement in CHAIN_SQL:
        stream_db.execute(statement)
    paths = cascade_paths_covered(stream_db.conn, stream_db.schema, STREAMED)
    assert "customers -> orders (fk_orders_customer, ON DELETE CASCADE)" in paths
    assert ("customers -> orders (fk_orders_customer, ON DELETE CASCADE) then orders -> items (fk_items_order, ON "
            "DELETE CASCADE) then items -> notes (fk_notes_item, ON DELETE SET NULL)") in paths
    assert "orders -> items (fk_items_order, ON UPDATE CASCADE)" in paths


@pytest.mark.parametrize("statement, key", [
    ("CREATE TABLE tree (id INT PRIMARY KEY, up INT NULL, CONSTRAINT fk_tree_up FOREIGN KEY (up) REFERENCES tree (id) "
     "ON DELETE CASCADE) ENGINE = InnoDB", "fk_tree_up"),
    ("CREATE TABLE twice (id INT PRIMARY KEY, a INT NULL, b INT NULL, "
     "CONSTRAINT fk_twice_a FOREIGN KEY (a) REFERENCES customers (id) ON DELETE CASCADE, "
     "CONSTRAINT fk_twice_b FOREIGN KEY (b) REFERENCES customers (id) ON DELETE SET NULL) ENGINE = InnoDB", "fk_twice_b"),
])
def test_a_cascade_that_cannot_be_emitted_is_refused_by_name(stream_db: StreamDb, statement: str, key: str) -> None:
    stream_db.execute(CHAIN_SQL[0])
    stream_db.execute(statement)
    table = statement.split()[2]
    with pytest.raises(ConfigError) as refused:
        plan_triggers(stream_db.conn, stream_db.schema, ["customers", table], stream_db.settings())
    assert key in str(refused.value) and f"on table {table}" in str(refused.value)
    assert refused.value.exit_code == 2
    assert stream_db.query("SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
                           (stream_db.schema,)) == [{"n": 0}]


def test_a_cascaded_record_too_large_for_lambda_arrives_keys_only(chain: tuple[StreamDb, Any, str]) -> None:
    db, read, mode = chain
    db.execute("ALTER TABLE notes MODIFY body LONGTEXT NULL")
    db.install(STREAMED, delivery=mode)
    db.execute("UPDATE notes SET body = %s WHERE id = 100", ("x" * 900_000,))
    db.execute("DELETE FROM items WHERE order_id = 10 AND line = 1")
    records = [r for r in read() if "/notes" in r["eventSourceARN"]]
    assert [r["eventName"] for r in records] == ["MODIFY", "MODIFY"]
    cascaded = records[1]["dynamodb"]
    assert cascaded["Keys"] == {"id": {"N": "100"}} and "NewImage" not in cascaded and "OldImage" not in cascaded
    assert cascaded["rdsStreamsImagesOmitted"] is True and "Lambda async payload" in cascaded["rdsStreamsOmittedReason"]
    assert cascaded["SizeBytes"] > 1_800_000


def test_a_failing_lambda_call_for_a_cascaded_row_fails_the_write_as_a_direct_change_would(stream_db: StreamDb) -> None:
    db = stream_db
    make_chain(db, "direct")  # only direct delivery calls Lambda inside the write
    inject_fault(db.conn, payload_contains=f"/{db.schema}/notes", reason="Throttled")
    try:
        with pytest.raises(pymysql.err.OperationalError, match="Lambda API returned error: Throttled"):
            db.execute("DELETE FROM items WHERE order_id = 10 AND line = 1")
    finally:
        clear_faults(db.conn)
    assert db.query("SELECT item_order FROM notes WHERE id = 100") == [{"item_order": 10}]
    assert db.query("SELECT COUNT(*) AS n FROM items WHERE order_id = 10") == [{"n": 2}]
