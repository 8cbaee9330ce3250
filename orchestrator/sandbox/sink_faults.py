"""A sink that throttles for a while, in the sandbox: moto has no fault injection for Kinesis, SQS or
EventBridge, so the Lambda worker patches botocore's client (the one place every boto3 call passes).

A test writes {"calls": N} to the file the runner names (`.rds-streams/sink_faults.json`): the next N
PutRecords / SendMessageBatch / PutEvents calls of the function store only the entries at even
positions and report the others refused as throttled, as the real services do under load. With
{"calls": N, "error": "AccessDeniedException"} those calls fail whole with that error code instead.
The count is kept in the file, so a restarted worker continues it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SINK_CALLS = {"PutRecords": "Records", "SendMessageBatch": "Entries", "PutEvents": "Entries"}


def write_faults(path: Path, calls: int, error: str | None = None) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"calls": calls, "error": error}))
    partial.replace(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def faults_left(path: Path) -> int:
    return int(_read(path).get("calls", 0))


def _take_one(path: Path) -> tuple[bool, str | None]:
    faults = _read(path)
    left = int(faults.get("calls", 0))
    if left <= 0:
        return False, None
    write_faults(path, left - 1, faults.get("error"))
    return True, faults.get("error")


def refused_reply(operation: str, entries: list[Any], stored: dict[str, Any], kept: list[int]) -> dict[str, Any]:
    """The service's reply for `entries` when only those at positions `kept` were stored (`stored` is the
    real reply for them)."""
    if operation == "SendMessageBatch":
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "RequestThrottled",
                   "Message": "sandbox fault: request throttled"} for i, e in enumerate(entries) if i not in kept]
        return {**stored, "Successful": stored.get("Successful", []), "Failed": stored.get("Failed", []) + failed}
    key, code = ("Records", "ProvisionedThroughputExceededException") if operation == "PutRecords" else (
        "Entries", "ThrottlingException")
    real = iter(stored.get(key, []))
    merged = [next(real) if i in kept else {"ErrorCode": code, "ErrorMessage": "sandbox fault: rate exceeded"}
              for i in range(len(entries))]
    count = sum(1 for m in merged if m.get("ErrorCode"))
    return {**stored, key: merged, "FailedRecordCount" if key == "Records" else "FailedEntryCount": count}


def install(path_text: str) -> None:
    from botocore.client import BaseClient

    path = Path(path_text)
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        key = SINK_CALLS.get(operation_name)
        faulty, error = _take_one(path) if key is not None else (False, None)
        if not faulty:
            return original(self, operation_name, api_params)
        if error:  # the whole call refused, e.g. AccessDeniedException: a failure no retry clears
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": error, "Message": "sandbox fault"}}, operation_name)
        entries = list(api_params.get(key, []))
        kept = [i for i in range(len(entries)) if i % 2 == 0]
        stored = original(self, operation_name, {**api_params, key: [entries[i] for i in kept]})
        return refused_reply(operation_name, entries, stored, kept)

    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
