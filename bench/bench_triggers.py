"""Insert throughput into the article's routes table without triggers and with ours, per view type.

Starts its own MariaDB (the sandbox's stand-in for Aurora, with the emulated lambda_async queue as
the direct delivery's target) in a temporary directory and stops it afterwards.

    .venv/bin/python bench/bench_triggers.py [--rows 20000] [--batch 500] [--repeat 3]

Target (issue 4): NEW_AND_OLD_IMAGES triggers cost at most 2.5x the untriggered insert rate.
Then the cost of emitting cascaded rows (issue 9): deleting parents whose ON DELETE CASCADE removes
their streamed children, without triggers and with the parent's cascade triggers emitting each child.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import tempfile
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.database.trigger_install import install_triggers  # noqa: E402
from orchestrator.database.trigger_sql import VIEW_TYPES  # noqa: E402
from orchestrator.database.triggers import StreamSettings  # noqa: E402
from orchestrator.sandbox.aurora_emulation import install_emulation  # noqa: E402
from orchestrator.sandbox.mariadb import MariaDBServer  # noqa: E402
from orchestrator.sandbox.processes import free_port  # noqa: E402

SCHEMA = "bench_flights"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"
SOURCE_ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:rds-streams/{schema}/{table}"
# For scale: the plain per-row outbox FACTS.md measured at 2.9x (InnoDB insert of an untyped image).
REFERENCE_OUTBOX = (
    "CREATE TABLE IF NOT EXISTS `outbox` (`id` BIGINT AUTO_INCREMENT PRIMARY KEY, `payload` JSON) ENGINE = InnoDB",
    "CREATE TRIGGER `outbox_routes_insert` AFTER INSERT ON `routes` FOR EACH ROW INSERT INTO `outbox` (`payload`) "
    "VALUES (JSON_OBJECT('airportFrom', NEW.`airportFrom`, 'airportTo', NEW.`airportTo`, 'connectingAirport', "
    "NEW.`connectingAirport`, 'newRoute', NEW.`newRoute` = 1, 'seasonalRoute', NEW.`seasonalRoute` = 1, 'operator', "
    "NEW.`operator`, 'group', NEW.`group`, 'tags', NEW.`tags`, 'similarArrivalAirportCodes', "
    "NEW.`similarArrivalAirportCodes`, 'carrierCode', NEW.`carrierCode`))",
)
REFERENCE = "plain outbox (reference)"
COLUMNS = ("airportFrom", "airportTo", "connectingAirport", "newRoute", "seasonalRoute", "operator", "group",
           "tags", "similarArrivalAirportCodes", "carrierCode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is reported")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    with tempfile.TemporaryDirectory(prefix="rds-streams-bench-") as tmp:
        server = MariaDBServer(Path(tmp), free_port())
        server.start()
        try:
            conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", charset="utf8mb4", autocommit=True)
            run(conn, rows, args.batch, args.repeat)
        finally:
            server.stop()


def run(conn: pymysql.Connection, rows: list[tuple], batch: int, repeat: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{SCHEMA}` CHARACTER SET latin1")
    conn.select_db(SCHEMA)
    install_emulation(conn, [SCHEMA])
    variants: list[str | None] = [None, REFERENCE, *VIEW_TYPES]
    rates: dict[str | None, float] = {}
    print(f"{len(rows)} rows into `routes` (latin1, 10 columns), multi-row INSERTs of {batch}, best of {repeat}")
    for variant in variants:
        best = max(timed_load(conn, rows, batch, variant) for _ in range(repeat))
        rates[variant] = best
        label = "no triggers" if variant is None else variant if variant == REFERENCE else f"triggers, {variant}"
        ratio = "" if variant is None else f"   {rates[None] / best:.2f}x slower"
        print(f"  {label:<32} {best:>9,.0f} rows/s{ratio}")
    ratio = rates[None] / rates["NEW_AND_OLD_IMAGES"]
    verdict = "meets" if ratio <= 2.5 else "misses"
    print(f"untriggered/NEW_AND_OLD_IMAGES = {ratio:.2f} ({verdict} the 2.5x target)")
    cascade_cost(conn, repeat)


CASCADE_TABLES = (
    "CREATE TABLE `parents` (`id` INT NOT NULL PRIMARY KEY, `name` VARCHAR(20) NOT NULL) ENGINE = InnoDB",
    "CREATE TABLE `children` (`id` INT NOT NULL PRIMARY KEY, `parent_id` INT NOT NULL, `note` VARCHAR(40) NULL, "
    "CONSTRAINT `fk_children_parent` FOREIGN KEY (`parent_id`) REFERENCES `parents` (`id`) ON DELETE CASCADE) "
    "ENGINE = InnoDB",
)
PARENTS, CHILDREN_EACH = 2000, 5


def cascade_cost(conn: pymysql.Connection, repeat: int) -> None:
    """Child rows removed per second by one DELETE of all parents, without and with streaming the children,
    and, for scale, by one DELETE of the children themselves (their own triggers emitting them)."""
    print(f"DELETE of {PARENTS} parents cascading to {PARENTS * CHILDREN_EACH} children, best of {repeat}")
    labels = {"none": "cascade, no triggers", "cascade": "cascade, children streamed",
              "direct": "DELETE of the children, streamed"}
    rates: dict[str, float] = {}
    for variant, label in labels.items():
        rates[variant] = max(timed_cascade(conn, variant) for _ in range(repeat))
        ratio = "" if variant == "none" else f"   {rates['none'] / rates[variant]:.2f}x slower"
        print(f"  {label:<40} {rates[variant]:>9,.0f} child rows/s{ratio}")


def timed_cascade(conn: pymysql.Connection, variant: str) -> float:
    streamed = variant != "none"
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS `children`")
        cursor.execute("DROP TABLE IF EXISTS `parents`")
        for statement in CASCADE_TABLES:
            cursor.execute(statement)
        cursor.executemany("INSERT INTO `parents` VALUES (%s, %s)", [(i, f"p{i}") for i in range(PARENTS)])
        cursor.executemany("INSERT INTO `children` VALUES (%s, %s, %s)",
                           [(i, i // CHILDREN_EACH, f"note {i}") for i in range(PARENTS * CHILDREN_EACH)])
        cursor.execute("TRUNCATE TABLE `rds_streams_sandbox`.`lambda_calls`")
    if streamed:
        settings = StreamSettings(function_arn=FUNCTION_ARN, region="eu-west-1", event_source_arn=SOURCE_ARN)
        install_triggers(conn, SCHEMA, ["children"], settings)
    start = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute("DELETE FROM `children`" if variant == "direct" else "DELETE FROM `parents`")
    elapsed = time.perf_counter() - start
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM `rds_streams_sandbox`.`lambda_calls`")
        queued = cursor.fetchone()[0]
    if queued != (PARENTS * CHILDREN_EACH if streamed else 0):
        raise SystemExit(f"expected a record per cascaded child, found {queued}")
    return PARENTS * CHILDREN_EACH / elapsed


def timed_load(conn: pymysql.Connection, rows: list[tuple], batch: int, view_type: str | None) -> float:
    schema_sql = (ROOT / "sql" / "migrations" / "V1__routes.sql").read_text()
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS `routes`")
        cursor.execute(schema_sql)
        cursor.execute("TRUNCATE TABLE `rds_streams_sandbox`.`lambda_calls`")
    if view_type == REFERENCE:
        with conn.cursor() as cursor:
            for statement in REFERENCE_OUTBOX:
                cursor.execute(statement)
    elif view_type is not None:
        settings = StreamSettings(function_arn=FUNCTION_ARN, region="eu-west-1", event_source_arn=SOURCE_ARN,
                                  view_type=view_type)  # type: ignore[arg-type]
        install_triggers(conn, SCHEMA, ["routes"], settings)
    names = ", ".join(f"`{c}`" for c in COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    start = time.perf_counter()
    with conn.cursor() as cursor:
        for offset in range(0, len(rows), batch):
            chunk = rows[offset:offset + batch]
            values = ", ".join([placeholders] * len(chunk))
            cursor.execute(f"INSERT INTO `routes` ({names}) VALUES {values}", [v for row in chunk for v in row])
    elapsed = time.perf_counter() - start
    if view_type not in (None, REFERENCE):
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM `rds_streams_sandbox`.`lambda_calls`")
            queued = cursor.fetchone()[0]
        if queued != len(rows):
            raise SystemExit(f"expected {len(rows)} queued calls with {view_type}, found {queued}")
    return len(rows) / elapsed


def make_rows(count: int) -> list[tuple]:
    rng = random.Random(4)
    seen: set[tuple[str, str]] = set()
    rows = []
    while len(rows) < count:
        key = ("".join(rng.choices(string.ascii_uppercase, k=3)), "".join(rng.choices(string.ascii_uppercase, k=4)))
        if key in seen:
            continue
        seen.add(key)
        rows.append((*key, rng.choice([None, "FRA", "CDG"]), rng.randint(0, 1), rng.randint(0, 1),
                     rng.choice(["KL", "AF", "LH"]), f"g{rng.randint(1, 9)}",
                     ",".join(rng.choices(["eu", "intl", "night", "ckin"], k=2)), "LGW,LCY,STN",
                     rng.choice(["KL", "AF", "LH"])))
    return rows


if __name__ == "__main__":
    main()
