"""All SQL text of a backfill (`rds-streams backfill`): the one generator module for it, no I/O here.

A chunk is two statements in one REPEATABLE READ transaction (backfill.py runs them):

1. `lock_keys`: the next `n` primary keys after the last one emitted, in key order, read with a
   shared lock that does not wait (NOWAIT): the chunk's rows, and the gaps between them, are then
   held for share until COMMIT. Not waiting means the backfill never sits in a lock queue behind a
   writer, so it can never be the other half of a deadlock that InnoDB would break by failing a
   user's write: on a conflict the chunk is simply tried again.
2. `emit`: the same rows, read again (already locked, nothing in the range can have changed), each
   turned into an INSERT record by the same generator as the INSERT trigger (trigger_sql.py), marked
   as a snapshot, and delivered by the same statement builder as the cascade triggers
   (triggers.rows_delivery): into the outbox in this transaction, or to Lambda (direct) at statement time.

The record is built once per row inside a derived table (its LIMIT keeps it from being merged, and
keeps its key order), then replaced by its keys-only form if too large for Lambda, as a trigger does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.database.attributes import row_refs
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import TableShape
from orchestrator.database.trigger_sql import RecordSpec, RowChange, images_for, keys_only, quote_literal, record_expression

ALIAS = "s"
SNAPSHOT_FIELD = "rdsStreamsSnapshot"
# MySQL 8's error for a NOWAIT read meeting a lock; MariaDB (and a wait that timed out) say 1205; 1213 deadlock;
# 1467: InnoDB's AUTO-INC lock (the outbox's) not had in time. The chunk is rolled back and tried again.
LOCK_CONFLICT_ERRORS = frozenset({3572, 1205, 1213, 1467})

SESSION_SETUP = (
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",  # the gaps between a chunk's keys locked too
    "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",  # as the triggers run: trigger_sql.CREATE_SQL_MODE
    "SET NAMES utf8mb4",
    # Only our own waits: a backfill gives way to writers, never the other way round. Table locks too
    # (lock_wait_timeout): a writer waiting for a chunk's rows may already hold one our next statement
    # needs (the sandbox's MyISAM Lambda queue, which a trigger locks when its statement starts), a
    # wait InnoDB cannot see as a deadlock; we give up after 1 s, roll back, and the writer goes on.
    "SET SESSION innodb_lock_wait_timeout = 1",
    "SET SESSION lock_wait_timeout = 1",
)
VERSION_QUERY = "SELECT VERSION()"
START = "START TRANSACTION"


@dataclass(frozen=True)
class Locking:
    """The server's clause for a shared row lock, and whether it can refuse to wait."""

    share: str
    nowait: bool

    @classmethod
    def for_version(cls, version: str) -> Locking:
        if "mariadb" in version.lower():
            return cls("LOCK IN SHARE MODE", True)  # MariaDB 10.3+: NOWAIT; it has no FOR SHARE
        if int(version.split(".", 1)[0]) >= 8:
            return cls("FOR SHARE", True)  # MySQL 8.0 (Aurora MySQL 3)
        return cls("LOCK IN SHARE MODE", False)  # MySQL 5.7 (Aurora MySQL 2): a 1 s lock wait timeout instead

    @property
    def clause(self) -> str:
        return self.share + (" NOWAIT" if self.nowait else "")


def key_after(shape: TableShape, literals: Sequence[str] | None) -> str:
    """Rows whose primary key sorts after the key given as SQL literals (all rows for None).

    Written out as (a > x) OR (a = x AND b > y) ...: both servers' range optimizers use the primary
    key for it, which they do not for a row constructor comparison on every version.
    """
    if literals is None:
        return "TRUE"
    columns = [f"{quote_identifier(ALIAS)}.{quote_identifier(c)}" for c in shape.primary_key]
    terms = []
    for i, column in enumerate(columns):
        equal = [f"{columns[j]} = {literals[j]}" for j in range(i)]
        terms.append("(" + " AND ".join([*equal, f"{column} > {literals[i]}"]) + ")")
    return "(" + " OR ".join(terms) + ")"


@dataclass(frozen=True)
class ChunkSql:
    """The statements of one table's backfill."""

    shape: TableShape
    spec: RecordSpec
    locking: Locking
    run_id: str
    row_filter: str | None = None  # the user's --where, a boolean SQL expression over the table's columns

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.shape.schema)}.{quote_identifier(self.shape.table)}"

    @property
    def order(self) -> str:
        return ", ".join(f"{quote_identifier(ALIAS)}.{quote_identifier(c)}" for c in self.shape.primary_key)

    def _rows(self, after: Sequence[str] | None, limit: int, lock: str) -> str:
        where = key_after(self.shape, after) + (f" AND ({self.row_filter})" if self.row_filter else "")
        return (f"FROM {self.table} AS {quote_identifier(ALIAS)} WHERE {where} ORDER BY {self.order} LIMIT {int(limit)} "
                f"{lock}")

    def lock_keys(self, after: Sequence[str] | None, limit: int) -> str:
        return f"SELECT {self.order} {self._rows(after, limit, self.locking.clause)}"

    def record(self, chunk: int, indent: str = "      ") -> str:
        """The INSERT record of one row of the table, as the INSERT trigger builds it, marked as a snapshot."""
        marker = (f"{quote_literal(SNAPSHOT_FIELD)}, JSON_OBJECT('backfill', {quote_literal(self.run_id)}, "
                  f"'chunk', {int(chunk)})")
        change = RowChange("INSERT", row_refs(self.shape.columns, quote_identifier(ALIAS)), None)
        return record_expression(self.shape, change, self.spec, indent=indent, extra=[marker])

    def emit(self, after: Sequence[str] | None, limit: int, chunk: int,
             deliver_rows: Callable[[str, str], str]) -> str:
        built = "`chunk`.`r`"
        if images_for("INSERT", self.spec.view_type):
            built = f"IF(LENGTH({built}) > {self.spec.size_limit}, {keys_only(built, self.spec, '  ')}, {built})"
        # The rows are ours already (lock_keys); no NOWAIT here: on MariaDB it would also refuse to wait a
        # moment for the outbox's AUTO-INC lock, which an INSERT ... SELECT takes (error 1467).
        rows = f"FROM (SELECT {self.record(chunk)} AS `r`\n    {self._rows(after, limit, self.locking.share)}) AS `chunk`"
        return deliver_rows(built, rows)


def count_rows(shape: TableShape, row_filter: str | None) -> str:
    where = f" WHERE ({row_filter})" if row_filter else ""
    table = f"{quote_identifier(shape.schema)}.{quote_identifier(shape.table)}"
    return f"SELECT COUNT(*) FROM {table} AS {quote_identifier(ALIAS)}{where}"


# --- bookkeeping (sql/backfill.sql) --------------------------------------------------------------------
READ_STATE = ("SELECT `run_id`, `row_filter`, `last_key`, `chunks_done`, `rows_done`, `rows_total`, `started_at`, "
              "`updated_at`, `finished_at` FROM `rds_streams`.`backfills` WHERE `schema_name` = %s AND `table_name` = %s")
READ_ALL = ("SELECT `schema_name`, `table_name`, `run_id`, `row_filter`, `chunks_done`, `rows_done`, `rows_total`, "
            "`started_at`, `updated_at`, `finished_at` FROM `rds_streams`.`backfills` ORDER BY `schema_name`, `table_name`")
BEGIN_RUN = ("REPLACE INTO `rds_streams`.`backfills` (`schema_name`, `table_name`, `run_id`, `row_filter`, `last_key`, "
             "`chunks_done`, `rows_done`, `rows_total`, `started_at`, `updated_at`, `finished_at`) "
             "VALUES (%s, %s, %s, %s, NULL, 0, 0, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), NULL)")
ADVANCE = ("UPDATE `rds_streams`.`backfills` SET `last_key` = %s, `chunks_done` = `chunks_done` + 1, "
           "`rows_done` = `rows_done` + %s, `updated_at` = UTC_TIMESTAMP(6) "
           "WHERE `schema_name` = %s AND `table_name` = %s AND `run_id` = %s")
FINISH = ("UPDATE `rds_streams`.`backfills` SET `finished_at` = UTC_TIMESTAMP(6), `updated_at` = UTC_TIMESTAMP(6) "
          "WHERE `schema_name` = %s AND `table_name` = %s AND `run_id` = %s")
