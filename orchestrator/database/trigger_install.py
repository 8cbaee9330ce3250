"""Installing our triggers: plan, create-before-drop replacement, ownership kept in our bookkeeping.

- Ours are the triggers recorded in `rds_streams`.`triggers`, whatever their names: a trigger we did
  not create is never dropped or replaced; one that takes a name we need is refused by name.
- A trigger's name ends in its generation, a digest of what it does (timing, event, text, definer),
  so "up to date" is a name lookup, never a comparison of trigger text as the server re-renders it.
- A replacement creates the new generation before it drops the old one, so a crash (SIGKILL, a lost
  tunnel) at any point leaves a complete set, at worst two: duplicate records, never a gap. `status`
  reports two generations and the next `up` settles them. A table's work happens under
  LOCK TABLES ... WRITE, so writers never see a half-replaced set.
- Our triggers left on a table that is no longer streamed (dropped from the config, or renamed away
  and re-created) are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from orchestrator.database import trigger_sql
from orchestrator.database.catalog import InstalledTrigger
from orchestrator.database.scripts import run_sql_file
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.triggers import EVENTS, PREFIX, StreamSettings, TriggerDefinition, wanted_definitions
from orchestrator.errors import ConfigError, OperationFailed

Action = Literal["create", "replace", "unchanged", "drop"]
_GENERATION = re.compile(r"^(?P<base>.+)_(?P<generation>[0-9a-f]{8})$")
_MAX_IDENTIFIER = 64

# Two queries, not a join: under LOCK TABLES (a migration's refit) a table may only be named as locked.
_TRIGGERS = """
    SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT, DEFINER
    FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"""
_ALL_NAMES = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
_RECORDED = "SELECT `trigger_name` FROM `rds_streams`.`triggers` WHERE `schema_name` = %s"
_RECORD = """INSERT INTO `rds_streams`.`triggers` (`schema_name`, `trigger_name`, `table_name`, `created_at`)
             VALUES (%s, %s, %s, UTC_TIMESTAMP(6))
             ON DUPLICATE KEY UPDATE `table_name` = VALUES(`table_name`)"""
_FORGET = "DELETE FROM `rds_streams`.`triggers` WHERE `schema_name` = %s AND `trigger_name` = %s"


@dataclass(frozen=True)
class TriggerChange:
    name: str
    event: str
    action: Action
    reason: str  # why, in words, for plan and status
    replaces: str | None = None  # the older generation a "replace" drops once this one exists


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
    missing: tuple[str, ...]  # wanted, not installed
    changed: tuple[str, ...]  # ours, an older generation of a wanted trigger (columns or settings changed since)
    extra: tuple[str, ...]  # ours, but not expected here (or the table is no longer streamed)
    two_generations: bool = False  # old and new side by side: a replacement was interrupted; `up` settles it
    expected: int = 3  # triggers of ours this table should have (3, plus cascade ones; 0 if no longer streamed)

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.changed or self.extra)


def generation_of(definition: TriggerDefinition) -> TriggerDefinition:
    """The definition named for its generation: `<name>_<8 hex digits of what it does>`."""
    what = "\0".join((definition.timing, definition.event, definition.body, definition.definer or ""))
    generation = hashlib.sha256(what.encode("utf-8")).hexdigest()[:8]
    name = definition.name
    if len(name) + 9 > _MAX_IDENTIFIER:
        name = name[: _MAX_IDENTIFIER - 9 - 11] + "_" + hashlib.sha256(name.encode()).hexdigest()[:10]
    return replace(definition, name=f"{name}_{generation}")


def wanted_triggers(conn: Any, schema: str, tables: Sequence[str],
                    settings: StreamSettings) -> tuple[dict[str, tuple[TriggerDefinition, ...]], dict[str, tuple[str, ...]]]:
    """Every trigger of ours `schema` should have, per table, named for its generation; and the columns
    each streamed table's records cover. Refuses (ConfigError) cascades that cannot be emitted."""
    wanted = wanted_definitions(conn, schema, tables, settings)
    return ({table: tuple(generation_of(d) for d in defs) for table, defs in wanted.definitions.items()},
            wanted.columns)


def read_our_triggers(conn: Any, schema: str) -> list[InstalledTrigger]:
    """Our triggers in `schema`, on whatever table they are now (they follow a renamed table)."""
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(_RECORDED, (schema,))
        except pymysql.err.ProgrammingError as err:
            if err.args and err.args[0] in (1049, 1146):  # no bookkeeping yet: nothing is ours
                return []
            raise
        recorded = {row[0] for row in cursor.fetchall()}
        cursor.execute(_TRIGGERS, (schema,))
        return [InstalledTrigger(*row) for row in cursor.fetchall() if row[0] in recorded]


def plan_triggers(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TablePlan]:
    """What install_triggers would do, touching nothing: per table, each trigger's action and why.

    Refuses (exit 2) when a trigger we need to create has the name of one we did not create.
    """
    return _plan_all(conn, schema, tables, settings)[0]


def _plan_all(conn: Any, schema: str, tables: Sequence[str],
              settings: StreamSettings) -> tuple[list[TablePlan], dict[str, tuple[TriggerDefinition, ...]]]:
    definitions, columns = wanted_triggers(conn, schema, tables, settings)
    ours = read_our_triggers(conn, schema)
    foreign = _foreign_names(conn, schema, ours)
    plans = [_plan_drops(schema, table, [t for t in ours if t.table == table])
             for table in sorted({t.table for t in ours} - set(definitions))]
    for table, defs in definitions.items():
        plan = _plan_table(schema, table, defs, columns.get(table, ()), ours)
        for change in plan.changes:
            if change.action in ("create", "replace") and change.name in foreign:
                raise ConfigError(
                    f"{schema}.{foreign[change.name]} has a trigger named {change.name} that rds-streams did not "
                    f"create; it needs that name for {schema}.{table} and never touches a trigger it did not create",
                    hint="rename or drop that trigger yourself, then run `rds-streams up` again")
        plans.append(plan)
    return plans, definitions


def install_triggers(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TablePlan]:
    """Create, replace or drop our triggers so they match `tables`; returns what was done. Idempotent."""
    _ensure_bookkeeping(conn, schema)
    plans, definitions = _plan_all(conn, schema, tables, settings)
    with _creation_session(conn):
        # Tables losing all of ours first: a table renamed away still holds triggers named for its old name.
        for plan in sorted(plans, key=lambda p: p.table in definitions):
            if plan.needs_work:
                _apply(conn, plan, {d.name: d for d in definitions.get(plan.table, ())})
    return plans


def refit_triggers_locked(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings,
                          locked: Sequence[str]) -> list[TablePlan]:
    """Like install_triggers for `tables`, while the caller holds LOCK TABLES ... WRITE on all of them
    and on `rds_streams`.`triggers` (see `lock_for_refit`): `locked` names the tables it may change.

    For a migration: the DDL and the triggers that fit its result happen under one lock, so no write
    sees a trigger naming a column that is gone, and none after the DDL is recorded in the old shape.
    """
    plans, definitions = _plan_all(conn, schema, tables, settings)
    with _creation_session(conn):
        for plan in plans:
            if plan.needs_work and plan.table in definitions and plan.table in locked:
                _apply(conn, plan, {d.name: d for d in definitions[plan.table]}, lock=False)
    return plans


def lock_for_refit(schema: str, tables: Sequence[str]) -> str:
    """The LOCK TABLES statement refit_triggers_locked needs: the tables, and our ownership records."""
    targets = [f"{quote_identifier(schema)}.{quote_identifier(t)} WRITE" for t in tables]
    return "LOCK TABLES " + ", ".join([*targets, "`rds_streams`.`triggers` WRITE"])


def trigger_drift(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> list[TableDrift]:
    """Per table: triggers missing, of an older generation, or ours but unexpected."""
    drift = []
    for plan in plan_triggers(conn, schema, tables, settings):
        missing = tuple(c.name for c in plan.changes if c.action in ("create", "replace"))
        changed = tuple(c.replaces for c in plan.changes if c.action == "replace" and c.replaces)
        extra = tuple(c.name for c in plan.changes if c.action == "drop")
        # A wanted trigger installed beside an older generation of itself: an interrupted replacement.
        unchanged = {_base(c.name) for c in plan.changes if c.action == "unchanged"}
        two = any(_base(name) in unchanged for name in extra)
        expected = len(plan.changes) - len(extra)
        drift.append(TableDrift(schema, plan.table, missing, changed, extra, two, expected))
    return drift


def _plan_table(schema: str, table: str, wanted: Sequence[TriggerDefinition], columns: tuple[str, ...],
                ours: Sequence[InstalledTrigger]) -> TablePlan:
    on_table = {t.name: t for t in ours if t.table == table}
    by_base: dict[str, list[str]] = {}
    for name in on_table:
        by_base.setdefault(_base(name), []).append(name)
    changes = []
    for definition in wanted:
        if definition.name in on_table:
            on_table.pop(definition.name)
            changes.append(TriggerChange(definition.name, definition.event, "unchanged", "matches the generated trigger"))
            continue
        older = [n for n in by_base.get(_base(definition.name), []) if n in on_table]
        if older:
            old = on_table.pop(older[0])
            changes.append(TriggerChange(definition.name, definition.event, "replace",
                                         f"replaces {old.name}: columns or settings changed since it was installed",
                                         replaces=old.name))
        else:
            changes.append(TriggerChange(definition.name, definition.event, "create", "not installed"))
    changes += [TriggerChange(t.name, t.event, "drop", "ours, but not one of the triggers generated for this table")
                for t in on_table.values()]
    return TablePlan(schema, table, columns, tuple(changes))


def _plan_drops(schema: str, table: str, triggers: Sequence[InstalledTrigger]) -> TablePlan:
    return TablePlan(schema, table, (), tuple(TriggerChange(t.name, t.event, "drop", "the table is no longer streamed")
                                              for t in triggers))


def _apply(conn: Any, plan: TablePlan, wanted: dict[str, TriggerDefinition], *, lock: bool = True) -> None:
    """New generation first, recorded as ours before it exists; then the old one goes."""
    with conn.cursor() as cursor:
        if lock:
            cursor.execute(lock_for_refit(plan.schema, [plan.table]))
        try:
            for change in plan.changes:
                if change.action in ("create", "replace"):
                    definition = wanted[change.name]
                    cursor.execute(_RECORD, (plan.schema, definition.name, plan.table))
                    try:
                        cursor.execute(definition.create_sql)
                    except Exception as err:
                        cursor.execute(_FORGET, (plan.schema, definition.name))
                        raise OperationFailed(
                            f"creating trigger {change.name} on {plan.schema}.{plan.table} failed: {err}",
                            hint="the triggers already installed on this table were left as they were",
                        ) from err
            for change in plan.changes:
                old = change.replaces if change.action == "replace" else change.name if change.action == "drop" else None
                if old:
                    cursor.execute(trigger_sql.drop_trigger(plan.schema, old))
                    cursor.execute(_FORGET, (plan.schema, old))
        finally:
            if lock:
                cursor.execute(trigger_sql.UNLOCK_TABLES)


def _ensure_bookkeeping(conn: Any, schema: str) -> None:
    """Our ownership records exist; records of triggers that are gone are pruned; triggers of earlier
    releases (which kept no records) are adopted by their exact old names."""
    run_sql_file(conn, "bookkeeping.sql")
    with conn.cursor() as cursor:
        cursor.execute(_ALL_NAMES, (schema,))
        present = {name: table for name, table in cursor.fetchall()}
        cursor.execute(_RECORDED, (schema,))
        recorded = {row[0] for row in cursor.fetchall()}
        for name in recorded - set(present):
            cursor.execute(_FORGET, (schema, name))
        if not recorded:
            for name, table in present.items():
                if name in _legacy_names(table):
                    cursor.execute(_RECORD, (schema, name, table))
    conn.commit()


def _legacy_names(table: str) -> set[str]:
    """The names releases before ownership records gave a table's triggers."""
    from orchestrator.database.triggers import trigger_name

    return {trigger_name(table, event, reserve=0) for event in EVENTS}


def _foreign_names(conn: Any, schema: str, ours: Sequence[InstalledTrigger]) -> dict[str, str]:
    """Triggers in `schema` that are not ours: name -> table."""
    mine = {t.name for t in ours}
    with conn.cursor() as cursor:
        cursor.execute(_ALL_NAMES, (schema,))
        return {name: table for name, table in cursor.fetchall() if name not in mine}


def _base(name: str) -> str:
    match = _GENERATION.match(name)
    return match["base"] if match and name.startswith(PREFIX) else name


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
