"""Change-stream triggers: generate them from a table's shape, plan, install (no unrecorded window), detect drift.

Every streamed table gets three AFTER triggers (INSERT, UPDATE, DELETE), named
`rds_streams_<table>_<insert|update|delete>`; every table whose cascading foreign keys change rows
of a streamed table gets BEFORE DELETE/UPDATE triggers `rds_streams_<table>_cascade_<delete|update>`
emitting those rows (cascades.py). Each turns its row change into one DynamoDB Streams
record (trigger_sql.py writes the SQL) and delivers it; `direct` delivery calls Lambda per row,
`outbox` delivery inserts it into our outbox in the writer's transaction (see sql/outbox.sql).
Whether a trigger is up to date is decided by comparing its installed text with what would be
generated now, so a column added since shows up as drift and `install_triggers` is idempotent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.config import Dialect
from orchestrator.database import cascades, trigger_sql
from orchestrator.database.catalog import InstalledTrigger, read_our_triggers, read_table_shape
from orchestrator.database.table_shape import TableShape
from orchestrator.database.trigger_sql import MAX_PAYLOAD_BYTES, TriggerEvent, ViewType
from orchestrator.errors import OperationFailed

if TYPE_CHECKING:
    from orchestrator.config import Config

PREFIX = "rds_streams_"
EVENTS: tuple[TriggerEvent, ...] = ("INSERT", "UPDATE", "DELETE")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_MAX_IDENTIFIER = 64

Action = Literal["create", "replace", "unchanged", "drop"]


@dataclass(frozen=True)
class StreamSettings:
    """What the triggers are generated for; one set for all streamed tables of a database."""

    function_arn: str
    region: str
    # "{schema}" and "{table}" in it are replaced per table, as each DynamoDB table has its own stream ARN.
    event_source_arn: str
    view_type: ViewType = "NEW_AND_OLD_IMAGES"
    dialect: Dialect = Dialect.V3
    delivery: Literal["direct", "outbox"] = "direct"
    # user@host the triggers run as (it needs the Lambda privilege); None: whoever installs them.
    definer: str | None = None
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    event_source: str = trigger_sql.EVENT_SOURCE

    @classmethod
    def from_config(cls, config: Config, *, function_arn: str, event_source_arn: str,
                    definer: str | None = None) -> StreamSettings:
        return cls(function_arn=function_arn, region=config.project.region, event_source_arn=event_source_arn,
                   view_type=config.stream.view_type, dialect=config.database.dialect,
                   delivery=config.stream.delivery, definer=definer, event_source=config.stream.event_source)

    def source_arn_for(self, schema: str, table: str) -> str:
        return self.event_source_arn.replace("{schema}", schema).replace("{table}", table)


@dataclass(frozen=True)
class TriggerDefinition:
    schema: str
    table: str
    name: str
    event: TriggerEvent
    body: str  # BEGIN ... END, exactly as information_schema.TRIGGERS.ACTION_STATEMENT will show it
    definer: str | None
    timing: str = "AFTER"

    @property
    def create_sql(self) -> str:
        return trigger_sql.create_trigger(self.schema, self.name, self.table, self.event, self.body, self.definer,
                                          self.timing)


@dataclass(frozen=True)
class TriggerChange:
    name: str
    event: str
    action: Action
    reason: str  # why, in words, for plan and status


@dataclass(frozen=True)
class TablePlan:
    """What install_triggers does (or did) to one table's triggers."""

    schema: str
    table: str
    columns: tuple[str, ...]  # the columns the records cover; () for a table that is no longer streamed
    changes: tuple[TriggerChange, ...]

    @property
    def needs_work(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)


@dataclass(frozen=True)
class TableDrift:
    """Installed triggers versus what would be generated now, for `status` and `verify`."""

    schema: str
    table: str
    missing: tuple[str, ...]
    changed: tuple[str, ...]  # body or definer differs: e.g. a column was added or dropped since
    extra: tuple[str, ...]  # ours, but not expected here (or the table is no longer streamed)
    expected: int = 3  # triggers of ours this table should have (3, plus cascade ones; 0 if no longer streamed)

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.changed or self.extra)


def trigger_name(table: str, event: TriggerEvent, cascade: bool = False) -> str:
    """Deterministic and within MySQL's 64 characters; odd or long table names get a hash."""
    suffix = ("_cascade_" if cascade else "_") + event.lower()
    room = _MAX_IDENTIFIER - len(PREFIX) - len(suffix)
    if _PLAIN_NAME.match(table) and len(table) <= room:
        base = table
    else:
        digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:10]
        base = re.sub(r"[^A-Za-z0-9_]", "_", table)[: room - len(digest) - 1] + "_" + digest
    return PREFIX + base + suffix


def outbox_delivery(record: str) -> str:
    """Into the outbox, inside the writer's transaction: a rollback takes the record with it.

    Handed over in a user variable: MariaDB copies (and escapes) every local variable a statement
    names into its logged text on every row, a local SET does not.
    """
    return f"SET @rds_streams_outbox = {record};\n  INSERT INTO `rds_streams`.`outbox` (`payload`) VALUES (@rds_streams_outbox)"


def _spec(settings: StreamSettings, schema: str, table: str) -> trigger_sql.RecordSpec:
    return trigger_sql.RecordSpec(view_type=settings.view_type, region=settings.region,
                                  event_source_arn=settings.source_arn_for(schema, table),
                                  max_payload_bytes=settings.max_payload_bytes, event_source=settings.event_source)


def _deliver(settings: StreamSettings) -> Callable[[str], str]:
    def deliver(record: str) -> str:
        if settings.delivery == "outbox":
            return outbox_delivery(record)
        return trigger_sql.direct_delivery(settings.dialect is Dialect.V2, settings.function_arn, record)
    return deliver


def _deliver_rows(settings: StreamSettings) -> Callable[[str, str], str]:
    def deliver_rows(record: str, rows: str) -> str:
        if settings.delivery == "outbox":
            return f"INSERT INTO `rds_streams`.`outbox` (`payload`)\n    SELECT {record}\n    {rows}"
        return trigger_sql.direct_delivery_rows(settings.function_arn, record, rows)
    return deliver_rows


def generate_triggers(shape: TableShape, settings: StreamSettings) -> tuple[TriggerDefinition, ...]:
    """The three triggers for `shape`, pure: the same inputs always give the same text."""
    spec, deliver = _spec(settings, shape.schema, shape.table), _deliver(settings)
    definitions = []
    for event in EVENTS:
        body = trigger_sql.trigger_body(shape, event, spec, deliver)
        definitions.append(TriggerDefinition(shape.schema, shape.table, trigger_name(shape.table, event), event,
                                             body, settings.definer))
    return tuple(definitions)


def generate_cascade_triggers(schema: str, table: str, paths: Sequence[cascades.CascadePath],
                              shapes: dict[str, TableShape], settings: StreamSettings) -> tuple[TriggerDefinition, ...]:
    """BEFORE DELETE/UPDATE triggers on `table` emitting the rows its cascading keys change, pure."""
    definitions = []
    events: tuple[TriggerEvent, ...] = ("DELETE", "UPDATE")
    for event in events:
        mine = [p for p in paths if p.start == table and p.event == event]
        if mine:
            body = cascades.cascade_body(event, mine, shapes, lambda end: _spec(settings, schema, end),
                                         _deliver_rows(settings))
            definitions.append(TriggerDefinition(schema, table, trigger_name(table, event, cascade=True),
                                                 event, body, settings.definer, "BEFORE"))
    return tuple(definitions)


@dataclass(frozen=True)
class _Wanted:
    definitions: dict[str, tuple[TriggerDefinition, ...]]  # per table with triggers of ours
    columns: dict[str, tuple[str, ...]]  # per streamed table: the columns its records cover
    paths: list[cascades.CascadePath]


def _wanted(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> _Wanted:
    """Every trigger of ours `schema` should have; refuses (ConfigError) cascades that cannot be emitted."""
    shapes = {table: read_table_shape(conn, schema, table) for table in tables}
    paths = cascades.cascade_paths(cascades.read_foreign_keys(conn, schema), schema, list(tables))
    definitions: dict[str, tuple[TriggerDefinition, ...]] = {t: generate_triggers(shapes[t], settings) for t in tables}
    for start in dict.fromkeys(p.start for p in paths):
        definitions[start] = definitions.get(start, ()) + generate_cascade_triggers(schema, start, paths, shapes, settings)
    return _Wanted(definitions, {t: tuple(c.name for c in shapes[t].columns) for t in tables}, paths)


def plan_triggers(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TablePlan]:
    """What install_triggers would do, touching nothing: per table, each trigger's action and why."""
    return _plan(conn, schema, _wanted(conn, schema, tables, settings))


def _plan(conn: Any, schema: str, wanted: _Wanted) -> list[TablePlan]:
    installed = read_our_triggers(conn, schema)
    plans = [_plan_table(schema, table, definitions, wanted.columns.get(table, ()), installed)
             for table, definitions in wanted.definitions.items()]
    for table in sorted({t.table for t in installed} - set(wanted.definitions)):
        drops = tuple(TriggerChange(t.name, t.event, "drop", "the table is no longer in [[stream.tables]]")
                      for t in installed if t.table == table)
        plans.append(TablePlan(schema, table, (), drops))
    return plans


def install_triggers(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TablePlan]:
    """Create, replace or drop our triggers so they match `tables`; returns what was done.

    Idempotent: a table whose triggers are already as generated is not touched. A table's changes
    happen under LOCK TABLES ... WRITE, so no row change can slip between the old triggers being
    dropped and the new ones created (MySQL 8 has no CREATE OR REPLACE TRIGGER).
    """
    wanted = _wanted(conn, schema, tables, settings)
    plans = _plan(conn, schema, wanted)
    installed = {t.name: t for t in read_our_triggers(conn, schema)}
    with _creation_session(conn):
        for plan in plans:
            if plan.needs_work:
                _apply(conn, plan, {d.name: d for d in wanted.definitions.get(plan.table, ())}, installed)
    return plans


def trigger_drift(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TableDrift]:
    """Per table: triggers missing, differing from what would be generated now, or ours but unexpected."""
    drift = []
    for plan in plan_triggers(conn, schema, tables, settings):
        def named(action: Action, plan: TablePlan = plan) -> tuple[str, ...]:
            return tuple(c.name for c in plan.changes if c.action == action)
        drift.append(TableDrift(schema, plan.table, named("create"), named("replace"), named("drop"),
                                len(plan.changes) - len(named("drop"))))
    return drift


def _plan_table(schema: str, table: str, wanted: Sequence[TriggerDefinition], columns: tuple[str, ...],
                installed: Sequence[InstalledTrigger]) -> TablePlan:
    on_table = {t.name: t for t in installed if t.table == table}
    changes = []
    for definition in wanted:
        current = on_table.pop(definition.name, None)
        if current is None:
            changes.append(TriggerChange(definition.name, definition.event, "create", "not installed"))
        else:
            reason = _difference(current, definition)
            changes.append(TriggerChange(definition.name, definition.event, "replace" if reason else "unchanged",
                                         reason or "matches the generated trigger"))
    changes += [TriggerChange(t.name, t.event, "drop", "ours, but not one of the triggers generated for this table")
                for t in on_table.values()]
    return TablePlan(schema, table, columns, tuple(changes))


def _difference(current: InstalledTrigger, wanted: TriggerDefinition) -> str | None:
    if current.event != wanted.event or current.timing != wanted.timing:
        return f"fires {current.timing} {current.event}, should fire {wanted.timing} {wanted.event}"
    if current.body != wanted.body:
        return "its text differs from the generated one (columns or settings changed since it was installed)"
    if wanted.definer and current.definer != wanted.definer:
        return f"runs as {current.definer}, should run as {wanted.definer}"
    return None


def _apply(conn: Any, plan: TablePlan, wanted: dict[str, TriggerDefinition],
           installed: dict[str, InstalledTrigger]) -> None:
    with conn.cursor() as cursor:
        cursor.execute(trigger_sql.lock_table(plan.schema, plan.table))
        try:
            for change in plan.changes:
                if change.action in ("replace", "drop"):
                    cursor.execute(trigger_sql.drop_trigger(plan.schema, change.name))
                if change.action in ("create", "replace"):
                    try:
                        cursor.execute(wanted[change.name].create_sql)
                    except Exception as err:
                        _restore(cursor, plan, installed.get(change.name))
                        raise OperationFailed(
                            f"creating trigger {change.name} on {plan.schema}.{plan.table} failed: {err}",
                            hint="the previous trigger was put back; nothing else was changed on this table",
                        ) from err
        finally:
            cursor.execute(trigger_sql.UNLOCK_TABLES)


def _restore(cursor: Any, plan: TablePlan, previous: InstalledTrigger | None) -> None:
    if previous is not None:
        cursor.execute(trigger_sql.create_trigger(plan.schema, previous.name, plan.table, previous.event,  # type: ignore[arg-type]
                                                  previous.body, previous.definer, previous.timing))


@contextmanager
def _creation_session(conn: Any) -> Iterator[None]:
    """Create triggers under CREATE_SQL_MODE and utf8mb4 (they keep both), then restore the session."""
    with conn.cursor() as cursor:
        cursor.execute(trigger_sql.SESSION_SQL_MODE_QUERY)
        saved_mode = cursor.fetchone()[0]
        cursor.execute(trigger_sql.SET_SESSION_SQL_MODE, (trigger_sql.CREATE_SQL_MODE,))
        cursor.execute(trigger_sql.SET_NAMES_UTF8MB4)
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute(trigger_sql.SET_SESSION_SQL_MODE, (saved_mode,))
        conn.set_character_set(conn.charset, getattr(conn, "collation", None))
