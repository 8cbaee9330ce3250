"""Migrations on streamed tables while writers keep writing, on the whole sandbox, in both delivery
modes: no write fails, no committed change is lost, each key's changes arrive in commit order, and
the records written after a migration carry the table's new shape."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.sandbox.conftest import ROUTE_INSERT, ROUTE_UPDATE, local_config, logged_records, root_connection, wait_for

TERM = "MIGR"


class Writers:
    """Threads, each on its own connection, inserting keys and updating them; every commit is noted."""

    def __init__(self, config_path: Path, count: int) -> None:
        self.config_path = config_path
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.committed: dict[str, list[str]] = defaultdict(list)  # key -> carrierCode values in commit order
        self.started_at: dict[tuple[str, str], float] = {}  # (key, value) -> when its write began
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _write(self, n: int) -> None:
        conn = root_connection(self.config_path)
        key_number, version = 0, 0
        try:
            while not self.stop.is_set():
                key = f"K{key_number:04d}-{TERM}"
                value = f"v{version:03d}"
                began = time.time()
                try:
                    with conn.cursor() as cursor:
                        if version == 0:
                            cursor.execute(ROUTE_INSERT, (f"W{n}", key, value))
                        else:
                            cursor.execute(ROUTE_UPDATE, (value, f"W{n}", key))
                except Exception as err:  # counted: there must be none
                    self.failures.append(f"W{n} {key} {value}: {err}")
                else:
                    self.committed[f"W{n}/{key}"].append(value)
                    self.started_at[(f"W{n}/{key}", value)] = began
                version += 1
                if version == 8:
                    key_number, version = key_number + 1, 0
                time.sleep(0.01)
        finally:
            conn.close()


def up(config_path: Path) -> None:
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def add_migration(config_path: Path, name: str, sql: str) -> None:
    (config_path.parent / "sql" / "migrations" / name).write_text(sql)


@pytest.mark.parametrize("delivery", ["direct", "outbox"])
def test_migrations_on_a_streamed_table_fail_no_write_and_lose_no_change(tmp_path: Path, delivery: str) -> None:
    config_path = local_config(tmp_path, {"stream": {"delivery": delivery}})
    try:
        up(config_path)
        with Writers(config_path, 3) as writers:
            time.sleep(0.5)
            add_migration(config_path, "V2__add_fare.sql", "ALTER TABLE `routes` ADD COLUMN `fare` DECIMAL(8,2) NULL;")
            up(config_path)
            add_migration(config_path, "V3__widen_tags.sql", "ALTER TABLE `routes` MODIFY COLUMN `tags` VARCHAR(500);")
            up(config_path)
            add_migration(config_path, "V4__rename.sql",
                          "ALTER TABLE `routes` RENAME COLUMN `connectingAirport` TO `viaAirport`;")
            up(config_path)
            add_migration(config_path, "V5__drop.sql", "ALTER TABLE `routes` DROP COLUMN `similarArrivalAirportCodes`;")
            up(config_path)
            reshaped_at = time.time()
            time.sleep(0.5)
        assert writers.failures == [], writers.failures[:5]
        expected = sum(len(values) for values in writers.committed.values())
        assert expected > 50, "the writers ran throughout"

        def arrived() -> dict[str, dict]:
            return {r["eventID"]: r for r in logged_records(config_path, TERM)}

        records = wait_for(lambda: (found := arrived()) and len(found) >= expected and found, 90,
                           f"{expected} records")
        seen: dict[str, list[str]] = defaultdict(list)
        for record in sorted(records.values(), key=lambda r: r["dynamodb"]["SequenceNumber"]):
            keys = record["dynamodb"]["Keys"]
            key = f"{keys['airportFrom']['S']}/{keys['airportTo']['S']}"
            image = record["dynamodb"]["NewImage"]
            seen[key].append(image["carrierCode"]["S"])
            if writers.started_at.get((key, image["carrierCode"]["S"]), 0) > reshaped_at:
                assert {"fare", "viaAirport"} <= set(image) and "similarArrivalAirportCodes" not in image, image
                assert "connectingAirport" not in image
        assert dict(seen) == dict(writers.committed), "every committed change, per key in commit order"
    finally:
        main(["down", "--config", str(config_path), "--yes", "--output", "json"])


def test_a_table_added_by_a_migration_streams_after_one_up_and_a_dropped_one_is_let_go(tmp_path: Path, cli) -> None:
    config_path = local_config(tmp_path)
    try:
        up(config_path)
        with Writers(config_path, 2) as writers:  # on routes, throughout
            add_migration(config_path, "V2__airports.sql",
                          "CREATE TABLE `airports` (`code` VARCHAR(3) PRIMARY KEY, `name` VARCHAR(50));")
            tables = {"tables": [{"name": "routes"}, {"name": "airports"}]}
            local_config(tmp_path, {"stream": tables})
            code, out = cli("plan", "--config", str(config_path))
            assert code == 0
            (database,) = [o for o in out if o["type"] == "database_plan"]
            assert [m["state"] for m in database["migrations"]] == ["applied", "pending"]
            up(config_path)
            conn = root_connection(config_path)
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO `flights`.`airports` VALUES ('ZRH', 'Zurich ADDED-TABLE')")
            wait_for(lambda: logged_records(config_path, "ADDED-TABLE"), 20, "the new table's record")

            local_config(tmp_path)  # airports is no longer streamed ...
            add_migration(config_path, "V3__drop_airports.sql", "DROP TABLE `airports`;")  # ... and then dropped
            up(config_path)
            with conn.cursor() as cursor:
                cursor.execute("SHOW TABLES FROM `flights`")
                assert cursor.fetchall() == (("routes",),)
            conn.close()
        assert writers.failures == []
        expected = sum(len(values) for values in writers.committed.values())
        wait_for(lambda: len({r["eventID"] for r in logged_records(config_path, TERM)}) >= expected, 60,
                 f"{expected} records of the writers")
        code, out = cli("plan", "--config", str(config_path))
        (database,) = [o for o in out if o["type"] == "database_plan"]
        assert {m["state"] for m in database["migrations"]} == {"applied"}
    finally:
        main(["down", "--config", str(config_path), "--yes", "--output", "json"])


def test_a_column_dropped_outside_the_tool_is_shown_first_by_status_and_repaired_by_up(tmp_path: Path, cli) -> None:
    config_path = local_config(tmp_path)
    try:
        up(config_path)
        conn = root_connection(config_path)
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE `flights`.`routes` DROP COLUMN `tags`")  # as Flyway would, say
            with pytest.raises(Exception, match="Unknown column"):
                cursor.execute(ROUTE_INSERT, ("OUT1", "OUTSIDE-DDL", "v1"))
        code, out = cli("status", "--config", str(config_path))
        (status,) = [o for o in out if o["type"] == "status"]
        assert any("writes to flights.routes are failing now" in line and "tags" in line
                   for line in status["failing_writes"])
        up(config_path)
        with conn.cursor() as cursor:
            cursor.execute(ROUTE_INSERT, ("OUT2", "OUTSIDE-DDL", "v1"))
        conn.close()
        (record,) = wait_for(lambda: logged_records(config_path, "OUTSIDE-DDL"), 20, "the record after the repair")
        assert "tags" not in record["dynamodb"]["NewImage"]
        code, out = cli("status", "--config", str(config_path))
        (status,) = [o for o in out if o["type"] == "status"]
        assert "failing_writes" not in status
    finally:
        main(["down", "--config", str(config_path), "--yes", "--output", "json"])
