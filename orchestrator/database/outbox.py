"""Outbox delivery, the database side: its tables, the delivering EVENT, and how far behind it is.

The SQL is in sql/outbox.sql; this module installs it, points it at the consumer, drains it on
demand (when leaving outbox mode) and reports lag and dead letters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from orchestrator.database.scripts import run_sql_file
from orchestrator.errors import OperationFailed

OUTBOX_SCHEMA = "rds_streams"
OUTBOX_TABLE = "outbox"

_STATE = ("INSERT INTO `rds_streams`.`outbox_state` (`id`, `function_arn`, `batch_size`, `max_attempts`, "
          "`current_batch`) VALUES (1, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE `function_arn` = VALUES(`function_arn`), "
          "`batch_size` = VALUES(`batch_size`), `max_attempts` = VALUES(`max_attempts`), "
          "`current_batch` = LEAST(`current_batch`, VALUES(`batch_size`))")
_LAG = ("SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, MIN(`created_at`), NOW(6)) / 1e6 "
        "FROM `rds_streams`.`outbox`")
_DEAD = "SELECT COUNT(*) FROM `rds_streams`.`outbox_dead_letters`"
_INSTALLED = ("SELECT (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'rds_streams' "
              "AND EVENT_NAME = 'deliver_outbox'), (SELECT COUNT(*) FROM information_schema.ROUTINES "
              "WHERE ROUTINE_SCHEMA = 'rds_streams' AND ROUTINE_NAME = 'deliver_outbox')")
_CONFIGURED = ("SELECT COUNT(*) FROM `rds_streams`.`outbox_state` WHERE `id` = 1 AND `function_arn` = %s "
               "AND `batch_size` = %s AND `max_attempts` = %s")


@dataclass(frozen=True)
class OutboxLag:
    waiting: int
    oldest_seconds: float | None
    dead_letters: int


def install_outbox(conn: Any, *, function_arn: str, batch_size: int, max_attempts: int) -> None:
    """Tables, procedure and event (idempotent), pointed at the consumer."""
    run_sql_file(conn, "outbox.sql")
    with conn.cursor() as cursor:
        cursor.execute(_STATE, (function_arn, batch_size, max_attempts, batch_size))
    conn.commit()


def outbox_installed(conn: Any, *, function_arn: str, batch_size: int, max_attempts: int) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(_INSTALLED)
        events, routines = cursor.fetchone()
        if not (events and routines):
            return False
        cursor.execute(_CONFIGURED, (function_arn, batch_size, max_attempts))
        return bool(cursor.fetchone()[0])


def outbox_lag(conn: Any) -> OutboxLag | None:
    """None where the outbox was never installed."""
    import pymysql

    try:
        with conn.cursor() as cursor:
            cursor.execute(_LAG)
            waiting, oldest = cursor.fetchone()
            cursor.execute(_DEAD)
            dead = cursor.fetchone()[0]
    except pymysql.err.ProgrammingError:
        return None
    return OutboxLag(int(waiting), float(oldest) if oldest is not None else None, int(dead))


def drain_outbox(conn: Any, *, timeout: float = 120.0) -> int:
    """Deliver what is left now (as the event would), e.g. after switching to direct delivery, where
    the event scheduler may be off. Returns how many rows remain (0 when drained)."""
    deadline = time.monotonic() + timeout
    while True:
        lag = outbox_lag(conn)
        if lag is None or lag.waiting == 0:
            return 0
        if time.monotonic() > deadline:
            return lag.waiting
        with conn.cursor() as cursor:
            cursor.execute("CALL `rds_streams`.`deliver_outbox`()")
        conn.commit()
        time.sleep(0.2)


def require_empty(conn: Any, timeout: float) -> None:
    left = drain_outbox(conn, timeout=timeout)
    if left:
        raise OperationFailed(f"{left} outbox record(s) could not be delivered within {timeout:.0f} s",
                              hint="check `rds-streams status` for the last delivery error, then run `up` again")
