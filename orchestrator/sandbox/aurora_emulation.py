"""Aurora MySQL's Lambda integration emulated inside the sandbox's MariaDB (DESIGN.md, "The local sandbox").

The SQL lives in sql/sandbox/: `lambda_queue.sql` (once per server: the queue, the fault switch, the
AWS_LAMBDA_ACCESS role, v2's `mysql.lambda_async`), `lambda_functions.sql` (per streamed schema:
v3's `lambda_async`/`lambda_sync`) and `lambda_faults_trigger.sql` (present only while a fault is
injected). This module installs it, reads the queue (for tests and the sandbox's Lambda runner)
and flips the fault switch.

The privilege check is Aurora MySQL 3's: in a session's own context every role granted to the
user counts (the cluster's activate_all_roles_on_login), but in a definer context (a trigger fired
by another user's write) only the definer's default role does, so a role granted but not default
fails the app user's writes with Aurora's 1227 here as on Aurora (`has_lambda_access`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from orchestrator.database.scripts import run_script
from orchestrator.resources import sql_text

SANDBOX_SCHEMA = "rds_streams_sandbox"
LAMBDA_ROLE = "AWS_LAMBDA_ACCESS"
# Aurora's text for the failure seen when the cluster cannot reach Lambda.
DEFAULT_FAULT_REASON = "Network Connection. Unable to connect to endpoint"



@dataclass(frozen=True)
class LambdaCall:
    """One emulated `lambda_async`/`lambda_sync`/`mysql.lambda_async` call, as queued."""

    id: int
    invocation_type: Literal["Event", "RequestResponse"]
    function_arn: str
    payload: str
    caller: str  # user@host whose Lambda privilege was checked (a trigger's DEFINER)
    called_at: datetime


def install_emulation(conn: Any, schemas: Sequence[str]) -> None:
    """Install the emulation (idempotent); `schemas` get `lambda_async`/`lambda_sync`. Run as root."""
    run_script(conn, sql_text("sandbox/lambda_queue.sql"))
    _sync_fault_trigger(conn)
    functions = sql_text("sandbox/lambda_functions.sql")
    with conn.cursor() as cursor:
        cursor.execute("SELECT DATABASE()")
        previous = cursor.fetchone()[0]
    try:
        for schema in schemas:
            conn.select_db(schema)
            run_script(conn, functions)
    finally:
        if previous:
            conn.select_db(previous)


def fetch_calls(conn: Any, after_id: int = 0, limit: int = 1000) -> list[LambdaCall]:
    """Queued calls with id > `after_id`, oldest first; pass the last id back to page on."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT `id`, `invocation_type`, `function_arn`, `payload`, `caller`, `called_at` "
            f"FROM `{SANDBOX_SCHEMA}`.`lambda_calls` WHERE `id` > %s ORDER BY `id` LIMIT %s",
            (after_id, limit),
        )
        return [LambdaCall(*row) for row in cursor.fetchall()]


def delete_calls(conn: Any, up_to_id: int) -> int:
    """Drop handled calls (id <= `up_to_id`); returns how many went."""
    with conn.cursor() as cursor:
        count = cursor.execute(f"DELETE FROM `{SANDBOX_SCHEMA}`.`lambda_calls` WHERE `id` <= %s", (up_to_id,))
    conn.commit()
    return count


FAULT_TRIGGER = f"`{SANDBOX_SCHEMA}`.`lambda_calls_fault_switch`"


def inject_fault(conn: Any, *, reason: str = DEFAULT_FAULT_REASON, function_arn: str | None = None,
                 payload_contains: str | None = None) -> int:
    """Make matching calls fail with Aurora's ERROR 1873 "Lambda API returned error: <reason>".

    None matches every call. Returns the fault's id, for `clear_faults(conn, fault_id)`.
    """
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO `{SANDBOX_SCHEMA}`.`lambda_faults` (`function_arn`, `payload_contains`, `reason`) "
            "VALUES (%s, %s, %s)",
            (function_arn, payload_contains, reason),
        )
        fault_id = cursor.lastrowid
    conn.commit()
    _sync_fault_trigger(conn)
    return fault_id


def clear_faults(conn: Any, fault_id: int | None = None) -> None:
    """Remove one injected fault, or all of them."""
    with conn.cursor() as cursor:
        if fault_id is None:
            cursor.execute(f"DELETE FROM `{SANDBOX_SCHEMA}`.`lambda_faults`")
        else:
            cursor.execute(f"DELETE FROM `{SANDBOX_SCHEMA}`.`lambda_faults` WHERE `id` = %s", (fault_id,))
    conn.commit()
    _sync_fault_trigger(conn)


def _sync_fault_trigger(conn: Any) -> None:
    """The trigger enforcing faults exists exactly while there are faults (calls stay cheap otherwise)."""
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM `{SANDBOX_SCHEMA}`.`lambda_faults`")
        faults = cursor.fetchone()[0]
        if not faults:
            cursor.execute(f"DROP TRIGGER IF EXISTS {FAULT_TRIGGER}")
    if faults:
        run_script(conn, sql_text("sandbox/lambda_faults_trigger.sql"))
