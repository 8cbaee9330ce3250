"""Records are what DynamoDB Streams consumers accept, exact for every MySQL type, in every view type and
both deliveries: each value as boto3's TypeDeserializer decodes it equals what a SELECT returns, per the
README's mapping (written out again here, as data, independently of the code under test)."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.database.catalog import read_table_shape
from orchestrator.database.table_shape import Column
from orchestrator.database.trigger_sql import VIEW_TYPES
from tests.database.conftest import StreamDb
from tests.database.consumers import consume, create_outbox_table, drop_outbox_table, outbox_records
from tests.database.test_records import DB_SETTINGS, LATIN1, MAX_TIME

EVERY_TYPE_SQL = """
CREATE TABLE every_type (
    id     BIGINT UNSIGNED NOT NULL,
    kbit   BIT(1) NOT NULL,
    ti     TINYINT NULL, si SMALLINT NULL, mi MEDIUMINT UNSIGNED NULL, i INT NULL, bi BIGINT NULL,
    ubi    BIGINT UNSIGNED NULL,
    d65    DECIMAL(65, 30) NULL,
    d38    DECIMAL(38, 10) NULL,
    fl     FLOAT NULL,
    dbl    DOUBLE NULL,
    b1     BIT(1) NULL,
    b64    BIT(64) NULL,
    dte    DATE NULL,
    dtm    DATETIME(6) NULL,
    ts     TIMESTAMP(6) NULL,
    tm     TIME NULL,
    yr     YEAR NULL,
    c1     CHAR(10) CHARACTER SET latin1 NULL,
    vc     VARCHAR(64) CHARACTER SET utf8mb4 NULL,
    tx     TEXT CHARACTER SET latin1 NULL,
    bn     BINARY(4) NULL,
    vb     VARBINARY(300) NULL,
    bl     BLOB NULL,
    js     JSON NULL,
    en     ENUM('a', 'ç', '😀') CHARACTER SET utf8mb4 NULL,
    st     SET('x', 'y') NULL,
    PRIMARY KEY (id, kbit)
) ENGINE = InnoDB DEFAULT CHARSET = latin1"""

# The README's record reference: MySQL type -> attribute type, for this table's columns.
DOCUMENTED_TYPE = {"id": "N", "kbit": "N", "ti": "N", "si": "N", "mi": "N", "i": "N", "bi": "N", "ubi": "N",
                   "d65": "S", "d38": "N", "fl": "N", "dbl": "S", "b1": "BOOL", "b64": "N", "dte": "S", "dtm": "S",
                   "ts": "S", "tm": "S", "yr": "N", "c1": "S", "vc": "S", "tx": "S", "bn": "B", "vb": "B",
                   "bl": "B", "js": "S", "en": "S", "st": "S"}
DOUBLE_EXTREMES = [1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, -0.0, 0.1]
FLOAT_EXTREMES = [3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, 123456792.0, 0.1]


def extreme(values: list[Any], strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.sampled_from(values) | strategy


def float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "ti": extreme([-128, 127], st.integers(-128, 127)),
    "si": extreme([-32768, 32767], st.integers(-32768, 32767)),
    "mi": extreme([0, 2**24 - 1], st.integers(0, 2**24 - 1)),
    "i": extreme([-(2**31), 2**31 - 1], st.integers(-(2**31), 2**31 - 1)),
    "bi": extreme([-(2**63), 2**63 - 1], st.integers(-(2**63), 2**63 - 1)),
    "ubi": extreme([2**64 - 1, 0], st.integers(0, 2**64 - 1)),
    "d65": extreme([Decimal("-" + "9" * 35 + "." + "9" * 30), Decimal("0." + "0" * 29 + "1"), Decimal("1" + "0" * 34)],
                   st.decimals(min_value=Decimal("-1e34"), max_value=Decimal("1e34"), places=30, allow_nan=False)),
    "d38": extreme([Decimal("9" * 28 + "." + "9" * 10), Decimal("-0.0000000001"), Decimal("100.5000000000")],
                   st.decimals(min_value=Decimal("-1e27"), max_value=Decimal("1e27"), places=10, allow_nan=False)),
    "fl": extreme(FLOAT_EXTREMES, st.floats(width=32, allow_nan=False, allow_infinity=False)),
    "dbl": extreme(DOUBLE_EXTREMES, st.floats(allow_nan=False, allow_infinity=False)),
    "b1": extreme([0, 1], st.integers(0, 1)),
    "b64": extreme([2**64 - 1, 0], st.integers(0, 2**64 - 1)),
    "dte": extreme(["0000-00-00", "2024-00-00", "1000-01-01", "9999-12-31"], st.dates().map(str)),
    "dtm": extreme(["0000-00-00 00:00:00", "9999-12-31 23:59:59.999999"],
                   st.datetimes(dt.datetime(1000, 1, 1)).map(str)),
    "ts": extreme(["0000-00-00 00:00:00", "1970-01-01 00:00:01", "2038-01-19 03:14:07.999999"],
                  st.datetimes(dt.datetime(1970, 1, 2), dt.datetime(2038, 1, 18)).map(str)),
    "tm": extreme([dt.timedelta(seconds=-MAX_TIME), dt.timedelta(seconds=MAX_TIME)],
                  st.integers(-MAX_TIME, MAX_TIME).map(lambda s: dt.timedelta(seconds=s))),
    "yr": extreme([0, 1901, 2155], st.integers(1901, 2155)),
    "c1": extreme(["ÿé", ""], st.text(LATIN1, max_size=10).map(str.rstrip)),
    "vc": extreme(["😀👍🏽", "e\u0301", "\x00"], st.text(st.characters(exclude_categories=["Cs"]), max_size=64)),
    "tx": extreme(["".join(chr(c) for c in range(0xA0, 0x100))], st.text(LATIN1, max_size=40)),
    "bn": extreme([b"\x00\x00\x00\x00", b"\xff\xfe\x00\x01"], st.binary(min_size=4, max_size=4)),
    "vb": extreme([bytes(range(256)), b""], st.binary(max_size=300)),
    "bl": extreme([bytes(range(256)) * 4], st.binary(max_size=600)),
    "js": extreme(['{"a": [1, "😀", null, true]}', "[]"], st.just('{"k": 1}')),
    "en": extreme(["a", "ç", "😀"], st.sampled_from(["a", "ç"])),
    "st": extreme(["", "x,y"], st.sampled_from(["x", "y"])),
}
KEYS = st.tuples(st.sampled_from([2**64 - 1, 0]) | st.integers(0, 2**64 - 1), st.integers(0, 1))


def mysql_time(value: dt.timedelta) -> str:
    seconds = int(abs(value).total_seconds())
    return f"{'-' if value < dt.timedelta(0) else ''}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def documented(column: Column, value: Any, in_key: bool) -> Any:
    """What boto3 decodes from the record, per the README, given what a SELECT returns (in a +00:00 session)."""
    kind = column.data_type
    if value is None:
        return None
    if kind == "bit":
        number = int.from_bytes(value, "big")
        return bool(number) if column.numeric_precision == 1 and not in_key else Decimal(number)
    if kind in ("tinyint", "smallint", "mediumint", "int", "bigint", "year"):
        return Decimal(value)
    if kind == "decimal":
        return Decimal(value) if (column.numeric_precision or 0) <= 38 else f"{value:f}"
    if kind == "float":
        return Decimal(repr(value))
    if kind == "double":
        return repr(value) if value != int(value) or abs(value) >= 1e16 else str(int(value))
    if kind == "date":
        return str(value)
    if kind in ("datetime", "timestamp"):
        text = value.isoformat(timespec="microseconds") if isinstance(value, dt.datetime) else value.replace(" ", "T")
        return text + "Z" if kind == "timestamp" and isinstance(value, dt.datetime) else text
    if kind == "time":
        return mysql_time(value)
    return value


def check_value(name: str, column: Column, raw: dict[str, Any], decoded: Any, selected: Any, in_key: bool) -> None:
    assert next(iter(raw)) == ("NULL" if selected is None else DOCUMENTED_TYPE[name]), (name, raw)
    expected = documented(column, selected, in_key)
    if column.data_type == "double" and selected is not None:
        assert float(decoded) == selected and str(float(decoded)) == str(selected), (name, decoded, selected)
    elif column.data_type == "float" and selected is not None:
        assert decoded == expected and float32(float(decoded)) == float(decoded), (name, decoded, selected)
    elif column.data_type in ("binary", "varbinary", "blob") and selected is not None:
        assert decoded.value == selected, name
    else:
        assert decoded == expected, (name, decoded, selected, raw)
    if DOCUMENTED_TYPE[name] == "N" and selected is not None:
        text = raw["N"]
        assert not (("." in text and text.endswith("0")) or text.endswith(".")), (name, text)  # normalised


def select_row(db: StreamDb, key: tuple[int, int]) -> dict[str, Any] | None:
    db.execute("SET time_zone = '+00:00'")
    rows = db.query("SELECT *, CAST(fl AS DOUBLE) AS fl FROM every_type WHERE id = %s AND kbit = %s", key)
    return rows[0] if rows else None


@pytest.fixture(params=["direct", "outbox"])
def delivery(request: pytest.FixtureRequest, stream_db: StreamDb) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    if request.param == "outbox":
        created = create_outbox_table(stream_db)
        yield "outbox", lambda: outbox_records(stream_db)
        drop_outbox_table(stream_db, created)
    else:
        yield "direct", stream_db.new_records


@pytest.fixture
def zero_dates(stream_db: StreamDb) -> Iterator[None]:
    stream_db.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")  # zero dates and '2024-00-00' allowed
    yield


@pytest.mark.parametrize("view_type", VIEW_TYPES)
def test_every_column_type_decodes_to_what_select_returns(stream_db: StreamDb, delivery: Any, zero_dates: None,
                                                          view_type: str) -> None:
    mode, read = delivery
    stream_db.execute(EVERY_TYPE_SQL)
    stream_db.install(["every_type"], view_type, delivery=mode)
    shape = read_table_shape(stream_db.conn, stream_db.schema, "every_type")
    columns = {c.name: c for c in shape.columns}
    names = list(VALUES)

    @settings(DB_SETTINGS, max_examples=12)
    @given(key=KEYS, first=st.fixed_dictionaries(VALUES), second=st.fixed_dictionaries(VALUES))
    def check(key: tuple[int, int], first: dict[str, Any], second: dict[str, Any]) -> None:
        stream_db.execute("DELETE FROM every_type")
        read()
        expected: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
        stream_db.execute(f"INSERT INTO every_type (id, kbit, {', '.join(names)}) "
                          f"VALUES (%s, %s, {', '.join(['%s'] * len(names))})", [*key, *(first[n] for n in names)])
        expected.append(("INSERT", select_row(stream_db, key), None))
        before = expected[-1][1]
        stream_db.execute(f"UPDATE every_type SET {', '.join(f'{n} = %s' for n in names)} WHERE id = %s AND kbit = %s",
                          [*(second[n] for n in names), *key])
        after = select_row(stream_db, key)
        if after != before:
            expected.append(("MODIFY", after, before))
        stream_db.execute("DELETE FROM every_type")
        expected.append(("REMOVE", None, after))
        records = read()
        assert [r["eventName"] for r in records] == [e[0] for e in expected]
        for record, (_, new, old) in zip(records, expected, strict=True):
            decoded, ddb = consume(record), record["dynamodb"]
            for image, row in (("NewImage", new), ("OldImage", old), ("Keys", new or old)):
                if image not in decoded:
                    assert image != "Keys" and (row is None or view_type == "KEYS_ONLY"
                                                or ("New" in image) != ("NEW" in view_type or "AND" in view_type)
                                                or ("Old" in image) != ("OLD" in view_type or "AND" in view_type))
                    continue
                assert row is not None
                assert set(decoded[image]) == (set(shape.primary_key) if image == "Keys" else set(columns))
                for name, value in decoded[image].items():
                    check_value(name, columns[name], ddb[image][name], value, row[name], name in shape.primary_key)

    check()


@pytest.mark.parametrize("zone, written", [("+05:30", "2024-01-01 05:30:00.250000"), ("-08:00", "2023-12-31 16:00:00.25"),
                                           ("+00:00", "2024-01-01 00:00:00.25")])
def test_a_timestamp_is_the_same_utc_instant_from_any_session_zone(stream_db: StreamDb, zone: str, written: str) -> None:
    stream_db.execute(EVERY_TYPE_SQL)
    stream_db.install(["every_type"])
    writer = stream_db.connect()
    with writer.cursor() as cursor:
        cursor.execute("SET time_zone = %s", (zone,))
        cursor.execute("INSERT INTO every_type (id, kbit, ts) VALUES (1, 0, %s)", (written,))
        cursor.execute("UPDATE every_type SET ts = ts + INTERVAL 1 HOUR")
        cursor.execute("DELETE FROM every_type")
    inserted, modified, removed = stream_db.new_records()
    assert inserted["dynamodb"]["NewImage"]["ts"] == {"S": "2024-01-01T00:00:00.250000Z"}
    assert modified["dynamodb"]["OldImage"]["ts"] == {"S": "2024-01-01T00:00:00.250000Z"}
    assert modified["dynamodb"]["NewImage"]["ts"] == removed["dynamodb"]["OldImage"]["ts"] == {
        "S": "2024-01-01T01:00:00.250000Z"}


@pytest.mark.parametrize("view_type", ["KEYS_ONLY", "NEW_AND_OLD_IMAGES"])
def test_a_key_update_is_remove_of_the_old_key_then_insert_of_the_new(stream_db: StreamDb, delivery: Any,
                                                                       view_type: str) -> None:
    mode, read = delivery
    stream_db.execute(EVERY_TYPE_SQL)
    stream_db.install(["every_type"], view_type, delivery=mode)
    stream_db.execute("INSERT INTO every_type (id, kbit, vc) VALUES (1, 0, 'one'), (2, 1, 'two')")
    read()
    writer = stream_db.connect()
    writer.begin()
    with writer.cursor() as cursor:  # one transaction: two key changes and a plain change between them
        cursor.execute("UPDATE every_type SET id = 10 WHERE id = 1")
        cursor.execute("UPDATE every_type SET vc = 'TWO' WHERE id = 2")
        cursor.execute("UPDATE every_type SET kbit = 0, vc = 'moved' WHERE id = 2")
    writer.commit()
    records = read()
    events = [(r["eventName"], r["dynamodb"]["Keys"]) for r in records]
    assert events == [("REMOVE", {"id": {"N": "1"}, "kbit": {"N": "0"}}), ("INSERT", {"id": {"N": "10"}, "kbit": {"N": "0"}}),
                      ("MODIFY", {"id": {"N": "2"}, "kbit": {"N": "1"}}),
                      ("REMOVE", {"id": {"N": "2"}, "kbit": {"N": "1"}}), ("INSERT", {"id": {"N": "2"}, "kbit": {"N": "0"}})]
    images = [sorted(k for k in r["dynamodb"] if k.endswith("Image")) for r in records]
    if view_type == "KEYS_ONLY":
        assert images == [[]] * 5
    else:
        assert images == [["OldImage"], ["NewImage"], ["NewImage", "OldImage"], ["OldImage"], ["NewImage"]]
        assert records[3]["dynamodb"]["OldImage"]["vc"] == {"S": "TWO"}
        assert records[4]["dynamodb"]["NewImage"]["vc"] == {"S": "moved"}
