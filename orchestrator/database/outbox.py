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

# The column's definition, for outboxes created before partitions (sql/outbox.sql has the same).
OUTBOX_BUCKET = ("`bucket` TINYINT UNSIGNED AS (MOD(CRC32(CONCAT_WS('|', "
                 "JSON_UNQUOTE(JSON_EXTRACT(`payload`, '$.Records[0].eventSourceARN')), "
                 "JSON_EXTRACT(`payload`, '$.Records[0].dynamodb.Keys'))), 64)) STORED")
BUCKETS = 64
_HAS_BUCKET = ("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'rds_streams' "
               "AND TABLE_NAME = 'outbox' AND COLUMN_NAME = 'bucket'")
_RELAYS = ("INSERT INTO `rds_streams`.`outbox_relays` (`relay`, `current_batch`) VALUES (%s, %s) "
           "ON DUPLICATE KEY UPDATE `current_batch` = LEAST(`current_batch`, VALUES(`current_batch`))")
_EVENT = ("CREATE EVENT IF NOT EXISTS `rds_streams`.`deliver_outbox_{p}` ON SCHEDULE EVERY 1 SECOND "
          "ON COMPLETION PRESERVE ENABLE COMMENT 'rds-streams: relay {p} of the outbox to the consumer Lambda' "
          "DO CALL `rds_streams`.`deliver_outbox`({p}, TRUE)")
_EVENTS = ("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'rds_streams' "
           "AND EVENT_NAME LIKE 'deliver\\_outbox%%'")
_PARTITION_LAG = ("SELECT MOD(`bucket`, %s) AS `relay`, COUNT(*), "
                  "TIMESTAMPDIFF(MICROSECOND, MIN(`created_at`), NOW(6)) / 1e6 FROM `rds_streams`.`outbox` GROUP BY 1")
_STATE = ("INSERT INTO `rds_streams`.`outbox_state` (`id`, `function_arn`, `batch_size`, `max_attempts`, "
          "`current_batch`) VALUES (1, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE `function_arn` = VALUES(`function_arn`), "
          "`batch_size` = VALUES(`batch_size`), `max_attempts` = VALUES(`max_attempts`), "
          "`current_batch` = LEAST(`current_batch`, VALUES(`batch_size`))")
_LAG = ("SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, MIN(`created_at`), NOW(6)) / 1e6 "
        "FROM `rds_streams`.`outbox`")
_DEAD = "SELECT COUNT(*) FROM `rds_streams`.`outbox_dead_letters`"
_INSTALLED = ("SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'rds_streams' "
              "AND ROUTINE_NAME = 'deliver_outbox' AND ROUTINE_TYPE = 'PROCEDURE' AND EXISTS (SELECT 1 FROM "
              "information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = 'rds_streams' AND SPECIFIC_NAME = 'deliver_outbox' "
              "AND PARAMETER_NAME = 'linger')), (SELECT COUNT(*) FROM `rds_streams`.`outbox_relays`)")
_CONFIGURED = ("SELECT COUNT(*) FROM `rds_streams`.`outbox_state` WHERE `id` = 1 AND `function_arn` = %s "
               "AND `batch_size` = %s AND `max_attempts` = %s")


@dataclass(frozen=True)
class PartitionLag:
    relay: int
    waiting: int
    oldest_seconds: float | None


@dataclass(frozen=True)
class OutboxLag:
    waiting: int
    oldest_seconds: float | None
    dead_letters: int
    partitions: tuple[PartitionLag, ...] = ()


def install_outbox(conn: Any, *, function_arn: str, batch_size: int, max_attempts: int, partitions: int = 1) -> None:
    """Tables, procedure and one relay event per partition (idempotent), pointed at the consumer.

    A change of partition count keeps per-key order: a relay takes each bucket under a lock, so a
    key's rows still in an old relay's hands stay there until it lets go (sql/outbox.sql)."""
    if not 1 <= partitions <= BUCKETS:
        raise ValueError(f"relay partitions must be 1 to {BUCKETS}")
    run_sql_file(conn, "outbox.sql")
    with conn.cursor() as cursor:
        cursor.execute(_HAS_BUCKET)
        if not cursor.fetchone()[0]:  # an outbox from before partitions; usually empty, so quick
            cursor.execute(f"ALTER TABLE `rds_streams`.`outbox` ADD COLUMN {OUTBOX_BUCKET}")
        cursor.execute(_STATE, (function_arn, batch_size, max_attempts, batch_size))
        for relay in range(partitions):
            cursor.execute(_RELAYS, (relay, batch_size))
        cursor.execute("DELETE FROM `rds_streams`.`outbox_relays` WHERE `relay` >= %s", (partitions,))
        conn.commit()
        cursor.execute(_EVENTS)
        wanted = {f"deliver_outbox_{p}" for p in range(partitions)}
        for (name,) in cursor.fetchall():
            if name not in wanted:  # the single relay of old, or relays beyond the partition count
                cursor.execute(f"DROP EVENT IF EXISTS `rds_streams`.`{name}`")
        for p in range(partitions):
            cursor.execute(_EVENT.format(p=p))
    conn.commit()


def outbox_installed(conn: Any, *, function_arn: str, batch_size: int, max_attempts: int, partitions: int = 1) -> bool:
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(_INSTALLED)
        except pymysql.err.ProgrammingError:  # no outbox_relays yet
            return False
        routines, relays = cursor.fetchone()
        if not routines or relays != partitions:
            return False
        cursor.execute(_EVENTS)
        if {name for (name,) in cursor.fetchall()} != {f"deliver_outbox_{p}" for p in range(partitions)}:
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
            partitions = ()
            cursor.execute(_HAS_BUCKET)
            if cursor.fetchone()[0]:
                cursor.execute("SELECT COUNT(*) FROM `rds_streams`.`outbox_relays`")
                count = int(cursor.fetchone()[0]) or 1
                cursor.execute(_PARTITION_LAG, (count,))
                found = {int(r): (int(n), float(age) if age is not None else None) for r, n, age in cursor.fetchall()}
                partitions = tuple(PartitionLag(r, *found.get(r, (0, None))) for r in range(count))
    except pymysql.err.ProgrammingError:
        return None
    conn.commit()  # a fresh snapshot for the next look
    return OutboxLag(int(waiting), float(oldest) if oldest is not None else None, int(dead), partitions)


def oldest_waiting_seconds(conn: Any) -> float | None:
    """Age of the oldest row waiting (by id, which follows commit order closely), or None when none
    waits: one index read, cheap enough to sample often (outbox_lag counts, so it reads every row)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT TIMESTAMPDIFF(MICROSECOND, `created_at`, NOW(6)) / 1e6 FROM `rds_streams`.`outbox` "
                       "ORDER BY `id` LIMIT 1")
        row = cursor.fetchone()
    conn.commit()
    return float(row[0]) if row else None


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
        for relay in range(max(1, len(lag.partitions))):
            with conn.cursor() as cursor:
                cursor.execute("CALL `rds_streams`.`deliver_outbox`(%s, FALSE)", (relay,))
            conn.commit()
        time.sleep(0.2)


def require_empty(conn: Any, timeout: float) -> None:
    left = drain_outbox(conn, timeout=timeout)
    if left:
        raise OperationFailed(f"{left} outbox record(s) could not be delivered within {timeout:.0f} s",
                              hint="check `rds-streams status` for the last delivery error, then run `up` again")
