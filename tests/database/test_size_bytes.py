"""SizeBytes is measured in few SQL calls (trigger_sql.size_expression) yet adds up exactly as one
IFNULL(LENGTH(value), 1) per variable-length value would, whatever the charsets and NULLs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.database.catalog import read_table_shape
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.trigger_sql import size_bytes, size_expression
from tests.database.conftest import StreamDb
from tests.database.test_records import ALL_TYPES_KEY, ALL_TYPES_SQL, ALL_TYPES_VALUES, DB_SETTINGS


@settings(DB_SETTINGS, max_examples=40)
@given(rows=st.lists(st.tuples(ALL_TYPES_KEY, st.fixed_dictionaries(ALL_TYPES_VALUES)), min_size=1, max_size=4,
                     unique_by=lambda row: tuple(str(k).casefold().rstrip() for k in row[0])))
def test_size_bytes_adds_up_like_one_length_per_value(stream_db: StreamDb, rows: list[Any]) -> None:
    stream_db.execute("DROP TABLE IF EXISTS `all types`")
    stream_db.execute(ALL_TYPES_SQL)
    shape = read_table_shape(stream_db.conn, stream_db.schema, "all types")
    names = [c.name for c in shape.columns]
    for key, values in rows:
        row = dict(zip(shape.primary_key, key, strict=True)) | values
        stream_db.execute(f"INSERT INTO `all types` ({', '.join(map(quote_identifier, names))}) "
                          f"VALUES ({', '.join(['%s'] * len(names))})", [row[n] for n in names])
    constant, measured = size_bytes(shape.columns, "NEW")
    # Each value three times over, as Keys plus two images would, and past one CONCAT_WS group.
    on_table = [(column, quote_identifier(column.name)) for column, _ in measured] * 3
    reference = " + ".join([str(constant), *(f"IFNULL(LENGTH({ref}), 1)" for _, ref in on_table)])
    sizes = stream_db.query(f"SELECT {size_expression(constant, on_table)} AS fast, {reference} AS reference "
                            "FROM `all types`")
    assert len(sizes) == len(rows)
    assert all(size["fast"] == size["reference"] for size in sizes), sizes
