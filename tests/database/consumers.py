"""Every record a test sees goes through consumers nobody here wrote, as a Lambda would receive it.

aws-lambda-powertools: the parser's DynamoDBStreamModel, DynamoDBStreamRecordModel and the
DynamoDB envelope, and the DynamoDBStreamEvent data class with every property read (it decodes the
images itself); boto3's TypeDeserializer after base64-decoding B values, as for a real Lambda event.
Any of them raising fails the test that produced the record.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.parser.envelopes import DynamoDBStreamEnvelope
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, DynamoDBStreamRecordModel
from boto3.dynamodb.types import TypeDeserializer
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tests.database.conftest import StreamDb

_DESERIALIZER = TypeDeserializer()
KEY_TYPES = frozenset({"S", "N", "B"})


class _AnyImage(BaseModel):
    model_config = ConfigDict(extra="allow")


def from_lambda_json(value: Any) -> Any:
    """A typed attribute value as boto3 wants it: B (and BS) as bytes, not their base64 text."""
    (kind, payload), = value.items()
    if kind == "B":
        return {"B": base64.b64decode(payload, validate=True)}
    if kind == "BS":
        return {"BS": [base64.b64decode(p, validate=True) for p in payload]}
    if kind == "M":
        return {"M": {k: from_lambda_json(v) for k, v in payload.items()}}
    if kind == "L":
        return {"L": [from_lambda_json(v) for v in payload]}
    return value


def deserialize(image: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(from_lambda_json(value)) for name, value in image.items()}


def consume(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate `record` with every consumer; its Keys/NewImage/OldImage as boto3 decodes them."""
    event = {"Records": [record]}
    DynamoDBStreamModel.model_validate(event)
    DynamoDBStreamRecordModel.model_validate(record)
    DynamoDBStreamEnvelope().parse(data=event, model=_AnyImage)
    for item in DynamoDBStreamEvent(event).records:
        for name in ("aws_region", "event_id", "event_name", "event_source", "event_source_arn", "event_version",
                     "user_identity"):
            getattr(item, name)
        stream = item.dynamodb
        assert stream is not None
        for name in ("approximate_creation_date_time", "keys", "new_image", "old_image", "sequence_number",
                     "size_bytes", "stream_view_type"):
            getattr(stream, name)
    ddb = record["dynamodb"]
    keys = ddb["Keys"]
    assert keys and all(len(v) == 1 and next(iter(v)) in KEY_TYPES for v in keys.values()), keys
    assert all(next(iter(v.values())) != "" for v in keys.values()), f"an empty key value: {keys}"
    return {name: deserialize(ddb[name]) for name in ("Keys", "NewImage", "OldImage") if name in ddb}


def create_outbox_table(db: StreamDb) -> bool:
    """The outbox table (sql/outbox.sql's), without the event that would deliver from it.

    True when this made the `rds_streams` schema, which drop_outbox_table then removes again
    (other tests expect a whole one or none).
    """
    created = not db.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'rds_streams'")
    db.execute("CREATE DATABASE IF NOT EXISTS rds_streams CHARACTER SET utf8mb4")
    db.execute("CREATE TABLE IF NOT EXISTS rds_streams.outbox (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT "
               "PRIMARY KEY, payload LONGTEXT CHARACTER SET utf8mb4 NOT NULL, created_at DATETIME(6) NOT NULL "
               "DEFAULT CURRENT_TIMESTAMP(6)) ENGINE = InnoDB")
    return created


def drop_outbox_table(db: StreamDb, created: bool) -> None:
    if created:
        db.execute("DROP DATABASE IF EXISTS rds_streams")


def outbox_records(db: StreamDb) -> list[dict[str, Any]]:
    """Records the triggers put in the outbox for `db`'s schema, in outbox order (and taken out), consumed."""
    rows = db.query("SELECT id, payload FROM rds_streams.outbox WHERE payload LIKE %s ORDER BY id",
                    (f"%/{db.schema}/%",))
    if rows:
        db.execute(f"DELETE FROM rds_streams.outbox WHERE id IN ({', '.join(str(r['id']) for r in rows)})")
    records = []
    for row in rows:
        [record] = json.loads(row["payload"])["Records"]
        consume(record)
        records.append(record)
    return records
