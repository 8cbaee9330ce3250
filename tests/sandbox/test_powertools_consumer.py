"""A consumer written only with aws-lambda-powertools (the README's example) processes the records a
sandbox stream delivered to the consumer Lambda, without a single failure, while a writer keeps writing."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel

from tests.sandbox.conftest import logged_records, root_connection, wait_for

# The README's consumer, verbatim but for collecting what it saw.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)
seen: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []


def record_handler(record: DynamoDBStreamRecordModel) -> None:
    change = record.dynamodb
    assert change is not None
    seen.append((record.eventName, change.Keys, change.NewImage))  # type: ignore[arg-type]


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def test_a_powertools_consumer_processes_a_sandbox_stream_without_a_failure(local_sandbox, cli) -> None:
    code, out = cli("up", "--config", str(local_sandbox), "--yes")
    assert code == 0, out
    token = "pt" + uuid.uuid4().hex[:8]
    conn = root_connection(local_sandbox)
    stop, written = threading.Event(), []
    writer_conn = root_connection(local_sandbox)

    def write() -> None:
        with writer_conn.cursor() as cursor:
            while not stop.is_set() and len(written) < 200:
                cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `operator`, `group`, "
                               "`carrierCode`) VALUES ('WRT', %s, 'op', 'grp', 'W')", (f"w{len(written)}",))
                written.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO `flights`.`routes` (`airportFrom`, `airportTo`, `newRoute`, `operator`, `group`, "
                           "`carrierCode`, `tags`) VALUES (%s, 'LHR', 1, 'op', 'grp', 'LO', 'é ÿ')", (token,))
            cursor.execute("UPDATE `flights`.`routes` SET `carrierCode` = 'BA' WHERE `airportFrom` = %s", (token,))
            cursor.execute("UPDATE `flights`.`routes` SET `airportTo` = 'LGW' WHERE `airportFrom` = %s", (token,))
            cursor.execute("DELETE FROM `flights`.`routes` WHERE `airportFrom` = %s", (token,))
    finally:
        stop.set()
        writer.join()
    records = wait_for(lambda: (found := logged_records(local_sandbox, token)) and len(found) >= 5 and found,
                       60, "the five records of the marker row")
    records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))

    seen.clear()
    result = lambda_handler({"Records": records}, None)

    assert result == {"batchItemFailures": []}
    assert [(name, keys["airportTo"]) for name, keys, _ in seen] == [
        ("INSERT", "LHR"), ("MODIFY", "LHR"), ("REMOVE", "LHR"), ("INSERT", "LGW"), ("REMOVE", "LGW")]
    inserted = seen[0][2]
    assert inserted is not None and inserted["tags"] == "é ÿ" and inserted["newRoute"] is True
    assert seen[1][2] is not None and seen[1][2]["carrierCode"] == "BA"
    assert written, "the writer wrote throughout"
