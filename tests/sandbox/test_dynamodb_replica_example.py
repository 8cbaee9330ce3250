"""examples/dynamodb_replica: the example consumer, deployed as the example's config deploys it, keeps a
DynamoDB table (moto's, in the sandbox) equal to the Aurora table row for row, after a random workload
of inserts, updates, key changes, deletes and rolled-back transactions from writers running
throughout, none of whose writes fails."""

from __future__ import annotations

import random
import shutil
import threading
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from examples.dynamodb_replica.create_replica_table import KEYS, create_replica_table
from orchestrator.sandbox.processes import free_port
from tests.factories import ROOT, toml_text
from tests.sandbox.conftest import root_connection, wait_for

EXAMPLE = ROOT / "examples" / "dynamodb_replica"
REPLICA = "replica-routes"
SEQUENCE = "rds_streams_sequence"
COLUMNS = ("airportFrom", "airportTo", "connectingAirport", "newRoute", "seasonalRoute", "operator", "group", "tags",
           "similarArrivalAirportCodes", "carrierCode")


def example_config(folder: Path) -> Path:
    """The example as shipped, in `folder`: its consumer and config (a free port, the migrations found)."""
    shutil.copytree(EXAMPLE / "consumer", folder / "consumer")
    raw = tomllib.loads((EXAMPLE / "config.toml").read_text())
    raw["database"]["migrations"] = str((EXAMPLE / raw["database"]["migrations"]).resolve())
    raw["bastion"]["local_port"] = free_port()
    path = folder / "config.toml"
    path.write_text(toml_text(raw))
    return path


def aurora_rows(conn: Any) -> dict[tuple[str, str], dict[str, Any]]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT `airportFrom`, `airportTo`, `connectingAirport`, `newRoute` + 0 AS `newRoute`, "
                       "`seasonalRoute` + 0 AS `seasonalRoute`, `operator`, `group`, `tags`, "
                       "`similarArrivalAirportCodes`, `carrierCode` FROM `flights`.`routes`")
        rows = cursor.fetchall()
    return {(row[0], row[1]): dict(zip(COLUMNS, row, strict=True)) for row in rows}


def replica_rows(dynamodb: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The replica's items as boto3's TypeDeserializer decodes them, BOOL as 0/1 like MySQL's BIT."""
    decode = TypeDeserializer().deserialize
    rows = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=REPLICA):
        for item in page["Items"]:
            row = {name: decode(value) for name, value in item.items() if name != SEQUENCE}
            row = {name: int(value) if isinstance(value, (bool, Decimal)) else value for name, value in row.items()}
            rows[(row["airportFrom"], row["airportTo"])] = {c: row.get(c) for c in COLUMNS}
    return rows


class RandomWriter:
    """Random single- and multi-statement transactions on its own keys; some rolled back. Counts failures."""

    def __init__(self, config: Path, name: str, seed: int) -> None:
        self.conn = root_connection(config)
        self.conn.autocommit(False)
        self.name, self.random = name, random.Random(seed)
        self.keys: list[str] = []
        self.next = 0
        self.done = self.failed = self.rolled_back = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def fresh_key(self) -> str:
        self.next += 1
        return f"{self.name}-{self.next}"

    def statement(self, cursor: Any) -> None:
        choice = self.random.random() if self.keys else 0.0
        if choice < 0.35:
            key = self.fresh_key()
            cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `connectingAirport`, `newRoute`, "
                           "`operator`, `group`, `tags`, `carrierCode`) VALUES (%s, %s, %s, %s, 'op', 'grp', %s, 'XX')",
                           (self.name, key, self.random.choice([None, "FRA", ""]), self.random.randint(0, 1),
                            self.random.choice([None, "a,b", "é ÿ"])))
            self.keys.append(key)
        elif choice < 0.7:
            key = self.random.choice(self.keys)
            cursor.execute("UPDATE `flights`.`routes` SET `carrierCode` = %s, `seasonalRoute` = %s, `tags` = %s "
                           "WHERE `airportFrom` = %s AND `airportTo` = %s",
                           (self.random.choice(["BA", "LO", "FR"]), self.random.randint(0, 1),
                            self.random.choice([None, "x", "y"]), self.name, key))
        elif choice < 0.85:
            old, new = self.random.choice(self.keys), self.fresh_key()
            cursor.execute("UPDATE `flights`.`routes` SET `airportTo` = %s WHERE `airportFrom` = %s AND `airportTo` = %s",
                           (new, self.name, old))
            self.keys[self.keys.index(old)] = new
        else:
            key = self.random.choice(self.keys)
            cursor.execute("DELETE FROM `flights`.`routes` WHERE `airportFrom` = %s AND `airportTo` = %s", (self.name, key))
            self.keys.remove(key)

    def run(self) -> None:
        with self.conn.cursor() as cursor:
            while not self.stop.is_set():
                keys_before, next_before = list(self.keys), self.next
                try:
                    for _ in range(self.random.choice([1, 1, 1, 2, 3])):
                        self.statement(cursor)
                    if self.random.random() < 0.1:
                        self.conn.rollback()
                        self.keys, self.rolled_back = keys_before, self.rolled_back + 1
                    else:
                        self.conn.commit()
                    self.done += 1
                except Exception:  # counted: the test asserts there were none
                    self.conn.rollback()
                    self.keys, self.next = keys_before, next_before
                    self.failed += 1

    def __enter__(self) -> RandomWriter:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def test_the_replica_equals_the_aurora_table_after_a_random_workload(tmp_path, cli) -> None:
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    config = example_config(tmp_path)
    try:
        code, out = cli("up", "--config", str(config), "--yes")
        assert code == 0, out
        code, out = cli("verify", "--config", str(config))
        assert code == 0, [o for o in out if o["type"] in ("check", "result")]
        dynamodb = Sandbox(load_config(config)).state().aws().client("dynamodb")
        create_replica_table(dynamodb, REPLICA, KEYS["routes"])

        writers = [RandomWriter(config, f"W{i}", seed=i) for i in range(2)]
        for writer in writers:
            writer.__enter__()
        try:
            wait_for(lambda: sum(w.done for w in writers) >= 400, 120, "400 transactions")
        finally:
            for writer in writers:
                writer.__exit__()
        assert [w.failed for w in writers] == [0, 0]
        assert all(w.rolled_back for w in writers), "the workload rolled some transactions back"

        conn = root_connection(config)
        try:
            expected = aurora_rows(conn)
        finally:
            conn.close()
        assert len(expected) > 50
        wait_for(lambda: replica_rows(dynamodb) == expected, 90, "the replica to equal the Aurora table")
    finally:
        cli("down", "--config", str(config), "--yes")
