"""What counts as a change, and records too large for Lambda."""

from __future__ import annotations

import pytest

from tests.database.conftest import StreamDb

TABLE = """
CREATE TABLE `notes` (
    `id`    INT NOT NULL PRIMARY KEY,
    `title` VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
    `body`  VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
    `big`   LONGBLOB NULL
)"""


@pytest.fixture
def notes(stream_db: StreamDb) -> StreamDb:
    stream_db.execute(TABLE)
    stream_db.install(["notes"])
    stream_db.execute("INSERT INTO notes (id, title, body) VALUES (1, 'abc', 'resume')")
    assert [r["eventName"] for r in stream_db.new_records()] == ["INSERT"]
    return stream_db


def test_noop_update_emits_no_event(notes: StreamDb) -> None:
    notes.execute("UPDATE notes SET title = 'abc', body = 'resume' WHERE id = 1")
    notes.execute("UPDATE notes SET title = title WHERE id = 1")
    assert notes.new_records() == []


@pytest.mark.parametrize("column, value", [
    ("title", "ABC"),  # case only
    ("title", "abc "),  # trailing space only
    ("body", "résumé"),  # accents only
    ("body", "RESUME"),
    ("title", None),
])
def test_update_equal_under_the_collation_still_emits(notes: StreamDb, column: str, value: str | None) -> None:
    notes.execute(f"UPDATE notes SET `{column}` = %s WHERE id = 1", (value,))
    [record] = notes.new_records()
    assert record["eventName"] == "MODIFY"
    new = record["dynamodb"]["NewImage"][column]
    assert new == ({"NULL": True} if value is None else {"S": value})


def test_record_over_a_megabyte_degrades_to_keys_and_the_write_succeeds(notes: StreamDb) -> None:
    notes.execute("INSERT INTO notes (id, big) VALUES (2, %s)", (b"\xab" * 900_000,))  # base64: 1.2 MB
    notes.execute("UPDATE notes SET body = 'changed' WHERE id = 2")
    notes.execute("DELETE FROM notes WHERE id = 2")
    records = notes.new_records()
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    for record in records:
        ddb = record["dynamodb"]
        assert ddb["Keys"] == {"id": {"N": "2"}}
        assert "NewImage" not in ddb and "OldImage" not in ddb
        assert ddb["rdsStreamsImagesOmitted"] is True
        assert "Lambda async payload" in ddb["rdsStreamsOmittedReason"]
        assert ddb["SizeBytes"] > 900_000
    assert notes.query("SELECT COUNT(*) AS n FROM notes WHERE id = 2") == [{"n": 0}]


def test_record_just_under_the_limit_keeps_its_images(notes: StreamDb) -> None:
    notes.execute("INSERT INTO notes (id, big) VALUES (3, %s)", (b"\x01" * 700_000,))  # base64: 933 KB
    [record] = notes.new_records()
    assert len(record["dynamodb"]["NewImage"]["big"]["B"]) == 933_336
    assert "rdsStreamsImagesOmitted" not in record["dynamodb"]
