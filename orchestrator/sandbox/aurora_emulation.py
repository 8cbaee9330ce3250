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

from collections.abc import Collection, Sequence
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


def waiting_sync_calls(conn: Any) -> set[int]:
    """Ids of the lambda_sync calls still queued (a call goes once its caller has read the answer).
    READ UNCOMMITTED: each is inserted by a statement still running (lambda_sync waits inside it)."""
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        cursor.execute(f"SELECT `id` FROM `{SANDBOX_SCHEMA}`.`lambda_sync_calls`")
        return {row[0] for row in cursor.fetchall()}


def fetch_sync_calls(conn: Any, limit: int = 100, skip: Collection[int] = ()) -> list[LambdaCall]:
    """lambda_sync calls waiting for an answer, oldest first, but those in `skip` and those whose
    payload is still being written (READ UNCOMMITTED sees a long payload's pages arrive)."""
    import zlib

    with conn.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        cursor.execute(f"SELECT `id` FROM `{SANDBOX_SCHEMA}`.`lambda_sync_calls` ORDER BY `id` LIMIT %s", (limit,))
        wanted = [row[0] for row in cursor.fetchall() if row[0] not in skip]
        calls = []
        for call_id in wanted:
            cursor.execute(
                f"SELECT `id`, 'RequestResponse', `function_arn`, `payload`, `caller`, `called_at`, `payload_crc` "
                f"FROM `{SANDBOX_SCHEMA}`.`lambda_sync_calls` WHERE `id` = %s", (call_id,))
            row = cursor.fetchone()
            if row and zlib.crc32(row[3].encode("utf-8")) == row[6]:
                calls.append(LambdaCall(*row[:6]))
        return calls


ANSWER_LOCK = "rds_streams_sandbox_ok_{}"
ERROR_TABLE = "lambda_error_{}"
RESULT_TABLE = "lambda_result_{}"
COMMENT_LIMIT = 2048


class SyncAnswers:
    """The runner's answers to lambda_sync calls, through what a running statement sees at once (see
    lambda_queue.sql, await_lambda_result): a user lock held for a success (after a table whose comment
    is the function's response, when it fits), a table whose comment is the error document for a
    failure. Each answer is withdrawn once its call is gone."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.answered: dict[int, str] = {}
        self.settle(waiting_sync_calls(conn), stale_tables=True)

    def answer(self, call_id: int, error_document: str | None, response: str | None = None) -> None:
        with self.conn.cursor() as cursor:
            if error_document is None:
                if response is not None and len(response) <= COMMENT_LIMIT:
                    self._comment_table(cursor, RESULT_TABLE.format(call_id), response)
                cursor.execute("SELECT GET_LOCK(%s, 0)", (ANSWER_LOCK.format(call_id),))
                self.answered[call_id] = "lock"
            else:
                self._comment_table(cursor, ERROR_TABLE.format(call_id), _fit_comment(error_document))
                self.answered[call_id] = "table"
        self.conn.commit()

    @staticmethod
    def _comment_table(cursor: Any, table: str, comment: str) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS `{SANDBOX_SCHEMA}`.`{table}`")
        cursor.execute(f"CREATE TABLE `{SANDBOX_SCHEMA}`.`{table}` (`unused` INT) ENGINE = MyISAM COMMENT = %s",
                       (comment,))

    def settle(self, waiting: set[int], stale_tables: bool = False) -> None:
        """Withdraw the answers whose call is gone (`waiting`: the ids still queued)."""
        with self.conn.cursor() as cursor:
            for call_id in [i for i in self.answered if i not in waiting]:
                if self.answered.pop(call_id) == "lock":
                    cursor.execute("SELECT RELEASE_LOCK(%s)", (ANSWER_LOCK.format(call_id),))
                    cursor.execute(f"DROP TABLE IF EXISTS `{SANDBOX_SCHEMA}`.`{RESULT_TABLE.format(call_id)}`")
                else:
                    cursor.execute(f"DROP TABLE IF EXISTS `{SANDBOX_SCHEMA}`.`{ERROR_TABLE.format(call_id)}`")
            if stale_tables:  # left by a runner that stopped
                cursor.execute("SELECT `TABLE_NAME` FROM information_schema.TABLES WHERE `TABLE_SCHEMA` = %s "
                               "AND (`TABLE_NAME` LIKE 'lambda\\_error\\_%%' OR `TABLE_NAME` LIKE 'lambda\\_result\\_%%')",
                               (SANDBOX_SCHEMA,))
                for (table,) in cursor.fetchall():
                    if int(table.rsplit("_", 1)[1]) not in waiting:
                        cursor.execute(f"DROP TABLE IF EXISTS `{SANDBOX_SCHEMA}`.`{table}`")
        self.conn.commit()


def _fit_comment(document: str) -> str:
    """A table comment holds 2,048 characters; the error document is cut to fit, still as JSON."""
    import json

    if len(document) <= COMMENT_LIMIT:
        return document
    try:
        error = json.loads(document)
        return json.dumps({"errorMessage": str(error.get("errorMessage"))[:1800], "errorType": error.get("errorType")})
    except (json.JSONDecodeError, AttributeError):
        return document[:2048]


def set_latency(conn: Any, lambda_ms: int) -> None:
    """The latency model: every lambda_async/lambda_sync call costs `lambda_ms` (Aurora: about 35 ms).
    Read on every call, so it applies at once to sessions already open."""
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE `{SANDBOX_SCHEMA}`.`lambda_settings` SET `lambda_ms` = %s WHERE `id` = 1", (lambda_ms,))
    conn.commit()


def latency(conn: Any) -> int:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT `lambda_ms` FROM `{SANDBOX_SCHEMA}`.`lambda_settings` WHERE `id` = 1")
        return int(cursor.fetchone()[0])


FAULT_TRIGGERS = (f"`{SANDBOX_SCHEMA}`.`lambda_calls_fault_switch`", f"`{SANDBOX_SCHEMA}`.`lambda_sync_calls_fault_switch`")


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
            for trigger in FAULT_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    if faults:
        run_script(conn, sql_text("sandbox/lambda_faults_trigger.sql"))
