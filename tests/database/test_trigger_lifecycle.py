"""The trigger lifecycle: ours known from our records, never a gap on a crash, convergence after
renames, no false drift for odd column names."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from orchestrator.database.trigger_install import trigger_drift, wanted_triggers
from orchestrator.database.triggers import trigger_name
from orchestrator.errors import ConfigError
from tests.database.conftest import StreamDb

ORDERS = "CREATE TABLE `orders` (`id` INT NOT NULL PRIMARY KEY, `qty` INT NULL)"


def triggers_on(db: StreamDb, table: str) -> list[str]:
    rows = db.query("SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                    "AND EVENT_OBJECT_TABLE = %s ORDER BY 1", (db.schema, table))
    return [row["name"] for row in rows]


def wanted(db: StreamDb, table: str, view_type: str = "NEW_AND_OLD_IMAGES") -> list[str]:
    return sorted(d.name for d in wanted_triggers(db.conn, db.schema, [table], db.settings(view_type))[0][table])


def test_a_trigger_we_did_not_create_is_never_touched_whatever_its_name(stream_db: StreamDb) -> None:
    stream_db.execute(ORDERS)
    stream_db.execute("CREATE TRIGGER `rds_streams_orders_audit` AFTER INSERT ON `orders` FOR EACH ROW SET @audit = 1")
    stream_db.install(["orders"])
    stream_db.install(["orders"], "KEYS_ONLY")
    assert "rds_streams_orders_audit" in triggers_on(stream_db, "orders")
    assert all(d.in_sync for d in trigger_drift(stream_db.conn, stream_db.schema, ["orders"],
                                                  stream_db.settings("KEYS_ONLY")))


def test_a_user_trigger_holding_a_name_we_need_is_refused_by_name(stream_db: StreamDb) -> None:
    stream_db.execute(ORDERS)
    taken = wanted(stream_db, "orders")[0]
    stream_db.execute(f"CREATE TRIGGER `{taken}` AFTER UPDATE ON `orders` FOR EACH ROW SET @mine = 1")
    with pytest.raises(ConfigError, match=f"trigger named {taken} that rds-streams did not create") as refused:
        stream_db.install(["orders"])
    assert refused.value.exit_code == 2
    assert triggers_on(stream_db, "orders") == [taken], "nothing was created or dropped"


def test_a_renamed_and_recreated_table_converges_in_one_install(stream_db: StreamDb) -> None:
    stream_db.execute("CREATE TABLE `gen` (`id` INT PRIMARY KEY, `v` INT)")
    stream_db.install(["gen"])
    stream_db.execute("RENAME TABLE `gen` TO `gen_old`")
    stream_db.execute("CREATE TABLE `gen` (`id` INT PRIMARY KEY, `v` INT, `w` INT)")
    stream_db.install(["gen"])
    assert triggers_on(stream_db, "gen_old") == [], "no longer streamed: our triggers left with the rename are gone"
    assert triggers_on(stream_db, "gen") == wanted(stream_db, "gen")
    stream_db.new_records()
    stream_db.execute("INSERT INTO `gen_old` VALUES (1, 1)")
    stream_db.execute("INSERT INTO `gen` VALUES (2, 2, 2)")
    (record,) = stream_db.new_records()
    assert record["eventSourceARN"].endswith("/gen") and record["dynamodb"]["Keys"] == {"id": {"N": "2"}}


@pytest.mark.parametrize("column", ["back\\slash", "it's", 'dq"uote', "`tick`", "trailing\\"])
def test_odd_column_names_show_no_drift_after_install(stream_db: StreamDb, column: str) -> None:
    quoted = "`" + column.replace("`", "``") + "`"
    stream_db.execute(f"CREATE TABLE `odd` (`id` INT PRIMARY KEY, {quoted} VARCHAR(10))")
    stream_db.install(["odd"])
    assert all(d.in_sync for d in trigger_drift(stream_db.conn, stream_db.schema, ["odd"], stream_db.settings()))
    [plan] = stream_db.install(["odd"])
    assert not plan.needs_work
    stream_db.execute(f"INSERT INTO `odd` (`id`, {quoted}) VALUES (1, 'x')")
    (record,) = stream_db.new_records()
    assert record["dynamodb"]["NewImage"][column] == {"S": "x"}


def test_triggers_of_earlier_releases_are_adopted_and_replaced(stream_db: StreamDb) -> None:
    stream_db.execute(ORDERS)
    legacy = trigger_name("orders", "INSERT", reserve=0)
    stream_db.execute(f"CREATE TRIGGER `{legacy}` AFTER INSERT ON `orders` FOR EACH ROW SET @old = 1")
    stream_db.execute(f"DELETE FROM rds_streams.triggers WHERE schema_name = '{stream_db.schema}'")
    stream_db.install(["orders"])
    assert triggers_on(stream_db, "orders") == wanted(stream_db, "orders")


INSTALL_LOOP = textwrap.dedent("""
    import sys, pymysql
    from orchestrator.config import Dialect
    from orchestrator.database.trigger_install import install_triggers
    from orchestrator.database.triggers import StreamSettings
    port, schema, arn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", database=schema, autocommit=True)
    print("ready", flush=True)
    while True:
        for view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"):
            install_triggers(conn, schema, ["orders"], StreamSettings(
                function_arn=arn, region="eu-west-1", event_source_arn="arn:aws:rds:x/{schema}/{table}",
                view_type=view_type, dialect=Dialect.V3))
""")


def test_an_install_killed_at_random_moments_never_leaves_a_gap(stream_db: StreamDb) -> None:
    """SIGKILL lands between creating a new generation and dropping the old one, or inside either:
    every committed row still emits (duplicates allowed), and the next install settles one set."""
    from tests.database.conftest import FUNCTION_ARN

    stream_db.execute(ORDERS)
    stream_db.install(["orders"], "KEYS_ONLY")
    writer_conn = stream_db.connect()
    committed: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        row_id = 0
        try:
            with writer_conn.cursor() as cursor:
                while not stop.is_set():
                    row_id += 1
                    cursor.execute("INSERT INTO orders (id, qty) VALUES (%s, 1)", (row_id,))
                    committed.append(row_id)
        except BaseException as err:  # reported below
            failures.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(10)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    two_generations_seen = 0
    try:
        for _ in range(20):
            loop = subprocess.Popen([sys.executable, "-c", INSTALL_LOOP, str(stream_db.server.port), stream_db.schema,
                                     FUNCTION_ARN], stdout=subprocess.PIPE, env=env)
            assert loop.stdout is not None and loop.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(loop.pid, signal.SIGKILL)
            loop.wait()
            [drift] = trigger_drift(stream_db.conn, stream_db.schema, ["orders"], stream_db.settings("KEYS_ONLY"))
            two_generations_seen += drift.two_generations
            events = {name.rsplit("_", 2)[-2] for name in triggers_on(stream_db, "orders")}
            assert events == {"insert", "update", "delete"}, "a complete set at every moment"
    finally:
        stop.set()
        writer.join()
    assert not failures and len(committed) > 100
    stream_db.install(["orders"], "KEYS_ONLY")
    assert triggers_on(stream_db, "orders") == wanted(stream_db, "orders", "KEYS_ONLY"), "settled to one set"
    keys = {int(r["dynamodb"]["Keys"]["id"]["N"]) for r in stream_db.new_records()}
    assert keys == set(committed), "every committed row emitted at least once"
