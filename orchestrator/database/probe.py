"""A direct `lambda_async` call with a unique marker, and finding what the consumer logged for it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Dialect

# The payload is built by the database's JSON functions, never by string concatenation.
PROBE_SQL = {
    Dialect.V3: "SELECT lambda_async(%s, JSON_OBJECT('rds_streams_probe', %s))",
    # v2 has the native function too (2.06 and later); the procedure is deprecated.
    Dialect.V2: "SELECT lambda_async(%s, JSON_OBJECT('rds_streams_probe', %s))",
}


def new_marker(kind: str = "probe") -> str:
    return f"rds-streams-{kind}-{uuid.uuid4().hex[:16]}"


def call_lambda_async(conn: Any, dialect: Dialect, function_arn: str, marker: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(PROBE_SQL[dialect], (function_arn, marker))
        cursor.fetchall()


def find_in_logs(logs: Any, group: str, text: str, *, since_ms: int, timeout: float,
                 cancel: CancelToken) -> list[dict[str, Any]]:
    """Log events containing `text` (as a quoted phrase, the filter both CloudWatch and moto honour),
    waiting with backoff up to `timeout`; [] when it never showed up."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        events = filter_events(logs, group, f'"{text}"', since_ms)
        if events or time.monotonic() > deadline:
            return events
        if cancel.wait(delay):
            cancel.raise_if_cancelled("stopped waiting for the consumer's log")
        delay = min(delay * 1.5, 2.0)


def filter_events(logs: Any, group: str, pattern: str | None, since_ms: int) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
    if pattern:
        kwargs["filterPattern"] = pattern
    events: list[dict[str, Any]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            events += page.get("events", [])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    return events
