"""Keeps a DynamoDB table in step with an Aurora table: each change record applied by key.

INSERT and MODIFY put the record's NewImage, REMOVE deletes its Keys; a key change arrives as a
REMOVE of the old key and an INSERT of the new one. The records are DynamoDB Streams records, so the
images are already in DynamoDB's typed form and go to the low-level client as they are (B values
arrive as base64 text, as from DynamoDB Streams, and are decoded first).

Each item carries the SequenceNumber of the change that wrote it, and a write only applies if it is
newer: a retried or duplicated record (at-least-once delivery) never rolls an item back. A delete
leaves nothing to compare a late, older put with, so use `delivery = "outbox"` (per-key order, and
rolled-back writes are never emitted) for an exact replica.

The replica of each table named in $REPLICA_TABLES (comma-separated) is the DynamoDB table
`$REPLICA_TABLE_PREFIX<table>`, whose key schema is the Aurora table's primary key
(create_replica_table.py makes it). Records of other tables (rds-streams' own canary, which `up` and
`verify` write) are skipped. Each record is logged whole, one line, with what became of it.
"""

import base64
import json
import os

import boto3
from botocore.exceptions import ClientError

SEQUENCE = "rds_streams_sequence"
NEWER = "attribute_not_exists(#seq) OR #seq < :seq"

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    if "Records" not in event:  # `rds-streams verify`'s lambda_async probe: logged, as it looks for it
        print(json.dumps(event))
        return {"records": 0}
    for record in event["Records"]:
        outcome = apply(record)
        # the record whole, one line, as the shipped consumer logs it: `rds-streams logs` shows it, and
        # `up`'s smoke test and `verify` find the canary's records there
        print(json.dumps({**record, "replica": outcome}, separators=(",", ":")))
    return {"records": len(event["Records"])}


def apply(record):
    """What became of `record`: applied, stale (a newer change is already there) or skipped."""
    change = record["dynamodb"]
    table = replica_table(record["eventSourceARN"])
    if table is None:
        return "skipped"
    # SequenceNumbers are 21 to 40 digits: padded, they compare as strings in DynamoDB as numbers do
    guard = {"ConditionExpression": NEWER, "ExpressionAttributeNames": {"#seq": SEQUENCE},
             "ExpressionAttributeValues": {":seq": {"S": change["SequenceNumber"].zfill(40)}}}
    try:
        if record["eventName"] == "REMOVE":
            dynamodb.delete_item(TableName=table, Key=typed(change["Keys"]), **guard)
        elif "NewImage" in change:
            item = {**typed(change["NewImage"]), SEQUENCE: {"S": change["SequenceNumber"].zfill(40)}}
            dynamodb.put_item(TableName=table, Item=item, **guard)
        else:
            raise ValueError("a replica needs the new image: set [stream] view_type to NEW_IMAGE or NEW_AND_OLD_IMAGES")
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise  # the invocation fails, and the stream retries it
        return "stale"
    return "applied"


def replica_table(event_source_arn):
    """arn:aws:rds:<region>:<account>:cluster:<id>/stream/<schema>.<table> -> the replica's name, or
    None when the table is not replicated."""
    table = event_source_arn.rsplit("/stream/", 1)[1].split(".", 1)[1]
    if table not in os.environ.get("REPLICA_TABLES", "").split(","):
        return None
    return os.environ.get("REPLICA_TABLE_PREFIX", "replica-") + table


def typed(image):
    """A record's image as boto3's low-level client takes it: binary values as bytes."""
    return {name: _value(value) for name, value in image.items()}


def _value(value):
    (kind, payload), = value.items()
    if kind == "B":
        return {"B": base64.b64decode(payload)}
    if kind == "BS":
        return {"BS": [base64.b64decode(p) for p in payload]}
    if kind == "M":
        return {"M": typed(payload)}
    if kind == "L":
        return {"L": [_value(v) for v in payload]}
    return value
