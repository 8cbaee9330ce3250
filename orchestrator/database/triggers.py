"""Change-stream triggers: generated from table shapes (trigger_install.py installs them).

Every streamed table gets three AFTER triggers (INSERT, UPDATE, DELETE), named
`rds_streams_<table>_<insert|update|delete>_<generation>`; every table whose cascading foreign
keys change rows of a streamed table gets BEFORE DELETE/UPDATE triggers
`rds_streams_<table>_cascade_<delete|update>_<generation>` emitting those rows (cascades.py). Each
turns its row change into one DynamoDB Streams record (trigger_sql.py writes the SQL) and delivers
it; `direct` delivery calls Lambda per row, `outbox` delivery inserts it into our outbox in the
writer's transaction (see sql/outbox.sql). Generation is pure: the same shapes and settings always
give the same text, so its digest (the trigger's generation, in its name) tells whether an
installed trigger is up to date.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.config import Dialect
from orchestrator.database import cascades, trigger_sql
from orchestrator.database.catalog import read_table_shape
from orchestrator.database.table_shape import TableShape
from orchestrator.database.trigger_sql import MAX_PAYLOAD_BYTES, TriggerEvent, ViewType

if TYPE_CHECKING:
    from orchestrator.config import Config

PREFIX = "rds_streams_"
EVENTS: tuple[TriggerEvent, ...] = ("INSERT", "UPDATE", "DELETE")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_MAX_IDENTIFIER = 64
GENERATION_ROOM = 9  # "_" and 8 hex digits, appended by trigger_install.generation_of



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


def trigger_name(table: str, event: TriggerEvent, cascade: bool = False, reserve: int = GENERATION_ROOM) -> str:
    """Deterministic and within MySQL's 64 characters with `reserve` left for the generation
    (trigger_install.generation_of); odd or long table names get a hash."""
    suffix = ("_cascade_" if cascade else "_") + event.lower()
    room = _MAX_IDENTIFIER - len(PREFIX) - len(suffix) - reserve
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


def record_spec(settings: StreamSettings, schema: str, table: str) -> trigger_sql.RecordSpec:
    """What every record of `schema`.`table` shares (a backfill's snapshot records too)."""
    return _spec(settings, schema, table)


def rows_delivery(settings: StreamSettings) -> Callable[[str, str], str]:
    """The statement delivering one record per selected row, as the cascade triggers do (a backfill's
    chunks too): one place, so what an outbox row carries is decided once."""
    return _deliver_rows(settings)


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
class WantedTriggers:
    definitions: dict[str, tuple[TriggerDefinition, ...]]  # per table with triggers of ours
    columns: dict[str, tuple[str, ...]]  # per streamed table: the columns its records cover
    paths: list[cascades.CascadePath]


def wanted_definitions(conn: Any, schema: str, tables: Sequence[str], settings: StreamSettings) -> WantedTriggers:
    """Every trigger of ours `schema` should have; refuses (ConfigError) cascades that cannot be emitted."""
    shapes = {table: read_table_shape(conn, schema, table) for table in tables}
    paths = cascades.cascade_paths(cascades.read_foreign_keys(conn, schema), schema, list(tables))
    definitions: dict[str, tuple[TriggerDefinition, ...]] = {t: generate_triggers(shapes[t], settings) for t in tables}
    for start in dict.fromkeys(p.start for p in paths):
        definitions[start] = definitions.get(start, ()) + generate_cascade_triggers(schema, start, paths, shapes, settings)
    return WantedTriggers(definitions, {t: tuple(c.name for c in shapes[t].columns) for t in tables}, paths)
