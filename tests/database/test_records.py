"""Random rows inserted, updated and deleted produce one well-formed record each, whose typed images
decode back to exactly the row as PyMySQL reads it (FLOAT as its stored value, TIMESTAMP in UTC).

Every record also passes powertools and boto3 (consumers.py, via StreamDb.new_records)."""

from __future__ import annotations

import datetime as dt
import json
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.database.catalog import read_table_shape
from orchestrator.database.images import decode_image
from orchestrator.database.table_shape import TableShape
from orchestrator.database.trigger_sql import VIEW_TYPES
from tests.database.conftest import StreamDb

ROUTES_SQL = (Path(__file__).resolve().parents[2] / "sql" / "migrations" / "V1__routes.sql").read_text()
DB_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Awkward names on purpose: reserved words, spaces, quotes, backticks, a backslash, non-ASCII.
ALL_TYPES_SQL = r"""
CREATE TABLE `all types` (
    `order`          BIGINT UNSIGNED NOT NULL,
    `key part`       VARCHAR(20) CHARACTER SET utf8mb4 NOT NULL,
    `tiny`           TINYINT NULL,
    `small`          SMALLINT UNSIGNED NULL,
    `medium`         MEDIUMINT NULL,
    `int`            INT NULL,
    `big`            BIGINT NULL,
    `dec`            DECIMAL(20, 6) NULL,
    `fl`             FLOAT NULL,
    `dbl`            DOUBLE NULL,
    `flag`           BIT(1) NULL,
    `bits`           BIT(12) NULL,
    `ch latin1`      CHAR(10) CHARACTER SET latin1 NULL,
    `vc "utf8"`      VARCHAR(100) CHARACTER SET utf8mb4 NULL,
    `txt'latin1`     TEXT CHARACTER SET latin1 NULL,
    `txt``utf8`      TEXT CHARACTER SET utf8mb4 NULL,
    `e`              ENUM ('a', 'b', 'ç') NULL,
    `set`            SET ('x', 'y', 'z') NULL,
    `date`           DATE NULL,
    `dt6`            DATETIME(6) NULL,
    `ts`             TIMESTAMP NULL,
    `time`           TIME NULL,
    `year`           YEAR NULL,
    `bin4`           BINARY(4) NULL,
    `vbin`           VARBINARY(50) NULL,
    `blob`           BLOB NULL,
    `doc`            JSON NULL,
    -- (MariaDB keeps identifiers in utf8mb3: no emoji in names)
    `naïve ☃`        VARCHAR(10) CHARACTER SET utf8mb4 NULL,
    `back\slash`     INT NULL,
    PRIMARY KEY (`order`, `key part`)
) DEFAULT CHARSET = latin1
"""

LATIN1 = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0xA0, 0x100)) + "\n\t\\\"'"
latin1_text = st.text(alphabet=LATIN1, max_size=30)
utf8_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
json_doc = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
                        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
                        max_leaves=6).map(json.dumps)
MAX_TIME = 838 * 3600 + 59 * 60 + 59


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


ALL_TYPES_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "tiny": nullable(st.integers(-128, 127)),
    "small": nullable(st.integers(0, 65535)),
    "medium": nullable(st.integers(-(2**23), 2**23 - 1)),
    "int": nullable(st.integers(-(2**31), 2**31 - 1)),
    "big": nullable(st.integers(-(2**63), 2**63 - 1)),
    "dec": nullable(st.decimals(min_value=Decimal("-99999999999999.999999"), max_value=Decimal("99999999999999.999999"),
                                places=6, allow_nan=False, allow_infinity=False)),
    "fl": nullable(st.floats(width=32, allow_nan=False, allow_infinity=False)),
    "dbl": nullable(st.floats(allow_nan=False, allow_infinity=False)),
    "flag": nullable(st.integers(0, 1)),
    "bits": nullable(st.integers(0, 4095)),
    "ch latin1": nullable(st.text(alphabet=LATIN1, max_size=10)),
    'vc "utf8"': nullable(st.text(st.characters(exclude_categories=["Cs"]), max_size=100)),
    "txt'latin1": nullable(latin1_text),
    "txt`utf8": nullable(utf8_text),
    "e": nullable(st.sampled_from(["a", "b", "ç"])),
    "set": nullable(st.sets(st.sampled_from(["x", "y", "z"])).map(lambda s: ",".join(sorted(s)))),
    "date": nullable(st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31))),
    "dt6": nullable(st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59))),
    "ts": nullable(st.datetimes(dt.datetime(1980, 1, 1), dt.datetime(2037, 12, 31)).map(lambda d: d.replace(microsecond=0))),
    "time": nullable(st.integers(-MAX_TIME, MAX_TIME).map(lambda s: dt.timedelta(seconds=s))),
    "year": nullable(st.integers(1901, 2155)),
    "bin4": nullable(st.binary(max_size=4)),
    "vbin": nullable(st.binary(max_size=50)),
    "blob": nullable(st.binary(max_size=200)),
    "doc": nullable(json_doc),
    "naïve ☃": nullable(st.text(st.characters(exclude_categories=["Cs"]), max_size=10)),
    "back\\slash": nullable(st.integers(-5, 5)),
}
# Key text stays ASCII: _ci collations make many other strings equal (awkward keys: test_extreme_values).
KEY_TEXT = string.ascii_letters + string.digits + " _-"
ALL_TYPES_KEY = st.tuples(st.integers(0, 2**64 - 1) | st.just(2**64 - 1), st.text(alphabet=KEY_TEXT, min_size=1, max_size=20))
ROUTES_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "connectingAirport": nullable(st.text(alphabet=string.ascii_uppercase, max_size=10)),
    "newRoute": nullable(st.integers(0, 1)),
    "seasonalRoute": nullable(st.integers(0, 1)),
    "operator": st.text(alphabet=LATIN1, max_size=10),
    "group": st.text(alphabet=LATIN1, max_size=10),
    "tags": nullable(latin1_text),
    "similarArrivalAirportCodes": nullable(latin1_text),
    "carrierCode": st.text(alphabet=LATIN1, max_size=10),
}
ROUTES_KEY = st.tuples(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=10),
                       st.text(alphabet=KEY_TEXT, min_size=1, max_size=20))


def changes(key: st.SearchStrategy[tuple[Any, ...]], values: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """1-3 rows with distinct keys (as the server compares them), each with a second set of values."""
    row_values = st.fixed_dictionaries(values)
    return st.lists(st.tuples(key, row_values, row_values), min_size=1, max_size=3,
                    unique_by=lambda change: tuple(str(k).casefold().rstrip() for k in change[0]))


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read_row(db: StreamDb, shape: TableShape, key: tuple[Any, ...]) -> dict[str, Any]:
    """The row as the records carry it: a FLOAT's stored value, a TIMESTAMP's UTC instant."""
    where = " AND ".join(f"{q(name)} = %s" for name in shape.primary_key)
    columns = ", ".join(f"CAST({q(c.name)} AS DOUBLE) AS {q(c.name)}" if c.data_type == "float" else q(c.name)
                        for c in shape.columns)
    db.execute("SET time_zone = '+00:00'")
    rows = db.query(f"SELECT {columns} FROM {q(shape.table)} WHERE {where}", key)
    assert len(rows) == 1
    return rows[0]


def check_record(record: dict[str, Any], shape: TableShape, view_type: str, event_name: str,
                 new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    assert record["eventName"] == event_name
    assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventSourceARN"].endswith(f"/{shape.schema}/{shape.table}")
    ddb = record["dynamodb"]
    assert ddb["StreamViewType"] == view_type
    created = ddb["ApproximateCreationDateTime"]
    assert isinstance(created, int) and abs(created - dt.datetime.now().timestamp()) < 600
    assert isinstance(ddb["SizeBytes"], int) and ddb["SizeBytes"] > 0
    assert ddb["SequenceNumber"].isdigit() and 21 <= len(ddb["SequenceNumber"]) <= 40
    row = old if event_name == "REMOVE" else new
    assert row is not None
    assert decode_image(ddb["Keys"], shape) == {k: row[k] for k in shape.primary_key}
    wants_new = view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None
    wants_old = view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None
    assert ("NewImage" in ddb) == wants_new and ("OldImage" in ddb) == wants_old
    if wants_new:
        assert decode_image(ddb["NewImage"], shape) == new
    if wants_old:
        assert decode_image(ddb["OldImage"], shape) == old


def exercise(db: StreamDb, shape: TableShape, view_type: str, rows: list[Any]) -> None:
    """Insert, update and delete `rows`; every change must yield its record, in order, and only those."""
    names = [c.name for c in shape.columns]
    expected: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for key, first, _ in rows:
        values = dict(zip(shape.primary_key, key, strict=True)) | first
        db.execute(f"INSERT INTO {q(shape.table)} ({', '.join(map(q, names))}) VALUES ({', '.join(['%s'] * len(names))})",
                   [values[n] for n in names])
        expected.append(("INSERT", read_row(db, shape, key), None))
    for key, _, second in rows:
        before = read_row(db, shape, key)
        where = " AND ".join(f"{q(name)} = %s" for name in shape.primary_key)
        db.execute(f"UPDATE {q(shape.table)} SET {', '.join(f'{q(n)} = %s' for n in second)} WHERE {where}",
                   [*second.values(), *key])
        after = read_row(db, shape, key)
        if after != before:
            expected.append(("MODIFY", after, before))
    for key, _, _ in rows:
        before = read_row(db, shape, key)
        db.execute(f"DELETE FROM {q(shape.table)} WHERE {' AND '.join(f'{q(n)} = %s' for n in shape.primary_key)}", key)
        expected.append(("REMOVE", None, before))
    records = db.new_records()
    assert [r["eventName"] for r in records] == [e[0] for e in expected]
    for record, (event_name, new, old) in zip(records, expected, strict=True):
        check_record(record, shape, view_type, event_name, new, old)
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert len({r["eventID"] for r in records}) == len(records)


@pytest.mark.parametrize("view_type", VIEW_TYPES)
def test_routes_changes_become_records_with_the_view_types_images(stream_db: StreamDb, view_type: str) -> None:
    stream_db.execute(ROUTES_SQL)
    stream_db.install(["routes"], view_type)
    shape = read_table_shape(stream_db.conn, stream_db.schema, "routes")

    @DB_SETTINGS
    @given(changes(ROUTES_KEY, ROUTES_VALUES))
    def check(rows: list[Any]) -> None:
        exercise(stream_db, shape, view_type, rows)

    check()


@pytest.mark.parametrize("view_type", ["NEW_AND_OLD_IMAGES", "KEYS_ONLY"])
def test_every_column_type_and_awkward_name_round_trips(stream_db: StreamDb, view_type: str) -> None:
    stream_db.execute(ALL_TYPES_SQL)
    stream_db.install(["all types"], view_type)
    shape = read_table_shape(stream_db.conn, stream_db.schema, "all types")

    @settings(DB_SETTINGS, max_examples=60)
    @given(changes(ALL_TYPES_KEY, ALL_TYPES_VALUES))
    def check(rows: list[Any]) -> None:
        exercise(stream_db, shape, view_type, rows)

    check()


def test_extreme_values_round_trip(stream_db: StreamDb) -> None:
    stream_db.execute(ALL_TYPES_SQL)
    stream_db.install(["all types"])
    shape = read_table_shape(stream_db.conn, stream_db.schema, "all types")
    extreme = {"tiny": -128, "small": 65535, "medium": -(2**23), "int": 2**31 - 1, "big": -(2**63),
               "dec": Decimal("-99999999999999.999999"), "fl": -3.4028234e38, "dbl": 1.7976931348623157e308,
               "flag": 1, "bits": 4095, "ch latin1": "ÿ\\\"'", "vc \"utf8\"": "😀 e\u0301 \x00\x1f \u2028",
               "txt'latin1": "\n\t", "txt`utf8": "</script>" + "é" * 40, "e": "ç", "set": "x,y,z",
               "date": dt.date(1000, 1, 1), "dt6": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
               "ts": dt.datetime(2038, 1, 19, 3, 14, 7), "time": dt.timedelta(seconds=-MAX_TIME), "year": 2155,
               "bin4": b"\x00\xff\n\x00", "vbin": b"", "blob": bytes(range(256)) * 3,
               "doc": '{"nested": {"a": [1, "two", null, true]}, "q": "\\"quoted\\""}', "naïve ☃": "☃",
               "back\\slash": 0}
    exercise(stream_db, shape, "NEW_AND_OLD_IMAGES",
             [((2**64 - 1, "ключ 😀"), extreme, {name: None for name in extreme}), ((0, " "), extreme, extreme)])
