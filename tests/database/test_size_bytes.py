"""SizeBytes follows DynamoDB's item-size rules (README, "SizeBytes") for the record's Keys and images,
computed here independently from each record as a consumer receives it."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.database.catalog import read_table_shape
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import TableShape
from tests.database.conftest import StreamDb
from tests.database.test_records import ALL_TYPES_KEY, ALL_TYPES_SQL, ALL_TYPES_VALUES, DB_SETTINGS

# The most significant digits each numeric type of ALL_TYPES_SQL can hold (N: 1 + ceil(digits / 2)).
N_DIGITS = {"order": 20, "tiny": 3, "small": 5, "medium": 8, "int": 10, "big": 19, "dec": 20, "fl": 17,
            "bits": 4, "flag": 1, "year": 4, "back\\slash": 10}


def value_size(name: str, value: dict[str, Any]) -> int:
    (kind, payload), = value.items()
    if kind in ("NULL", "BOOL"):
        return 1
    if kind == "N":
        return 1 + (N_DIGITS[name] + 1) // 2
    if kind == "B":
        return len(base64.b64decode(payload))
    return len(payload.encode("utf-8"))


def dynamodb_size(record: dict[str, Any]) -> int:
    ddb = record["dynamodb"]
    return sum(len(name.encode("utf-8")) + value_size(name, value)
               for image in ("Keys", "NewImage", "OldImage") if image in ddb for name, value in ddb[image].items())


def insert(db: StreamDb, shape: TableShape, row: dict[str, Any]) -> None:
    names = [c.name for c in shape.columns]
    db.execute(f"INSERT INTO `all types` ({', '.join(map(quote_identifier, names))}) "
               f"VALUES ({', '.join(['%s'] * len(names))})", [row.get(n) for n in names])


@settings(DB_SETTINGS, max_examples=40)
@given(rows=st.lists(st.tuples(ALL_TYPES_KEY, st.fixed_dictionaries(ALL_TYPES_VALUES)), min_size=1, max_size=4,
                     unique_by=lambda row: tuple(str(k).casefold().rstrip() for k in row[0])))
def test_size_bytes_follows_the_item_size_rules(stream_db: StreamDb, rows: list[Any]) -> None:
    stream_db.execute("DROP TABLE IF EXISTS `all types`")
    stream_db.execute(ALL_TYPES_SQL)
    stream_db.install(["all types"])
    shape = read_table_shape(stream_db.conn, stream_db.schema, "all types")
    for key, values in rows:
        insert(stream_db, shape, dict(zip(shape.primary_key, key, strict=True)) | values)
    stream_db.execute("UPDATE `all types` SET `tiny` = IFNULL(`tiny`, 0) + 1 WHERE `tiny` IS NULL OR `tiny` < 100")
    stream_db.execute("DELETE FROM `all types`")
    records = stream_db.new_records()
    assert len(records) >= 2 * len(rows)
    for record in records:
        assert record["dynamodb"]["SizeBytes"] == dynamodb_size(record), record["dynamodb"]


def test_an_all_null_row_counts_one_byte_per_null(stream_db: StreamDb) -> None:
    stream_db.execute(ALL_TYPES_SQL)
    stream_db.install(["all types"], "NEW_IMAGE")
    shape = read_table_shape(stream_db.conn, stream_db.schema, "all types")
    insert(stream_db, shape, {"order": 1, "key part": "k"})
    [record] = stream_db.new_records()
    names = [c.name for c in shape.columns]
    # Keys: order (N, 20 digits: 11 bytes) and "k"; the image adds one byte per NULL.
    keys = len("order") + 11 + len("key part") + 1
    expected = 2 * keys + sum(len(n.encode("utf-8")) + 1 for n in names if n not in ("order", "key part"))
    assert record["dynamodb"]["SizeBytes"] == expected == dynamodb_size(record)
