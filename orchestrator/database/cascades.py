"""Rows a cascading foreign key changes: found from the catalog, emitted from the parent's triggers.

MySQL fires no trigger for a row changed by ON DELETE CASCADE, ON UPDATE CASCADE or SET NULL
(FACTS.md). So every table from which such a chain of keys reaches a streamed table gets BEFORE
DELETE / BEFORE UPDATE triggers: before the cascade happens they still see the child rows (through
every level of the chain), and emit for each the record a direct change would have given: REMOVE
for a deleted row, MODIFY for a changed one, REMOVE then INSERT when its primary key changes.
What cannot be emitted exactly (a cycle, a row reachable by two paths, a parent in another
schema) is refused with the foreign key named, before anything is installed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.database import trigger_sql as sql
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.table_shape import TableShape
from orchestrator.errors import ConfigError

FOREIGN_KEYS_QUERY = """
SELECT rc.CONSTRAINT_NAME, rc.TABLE_NAME, kcu.REFERENCED_TABLE_SCHEMA, rc.REFERENCED_TABLE_NAME,
       rc.UPDATE_RULE, rc.DELETE_RULE, kcu.COLUMN_NAME, kcu.REFERENCED_COLUMN_NAME
FROM information_schema.REFERENTIAL_CONSTRAINTS rc
JOIN information_schema.KEY_COLUMN_USAGE kcu
  ON kcu.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND kcu.CONSTRAINT_NAME = rc.CONSTRAINT_NAME
 AND kcu.TABLE_NAME = rc.TABLE_NAME
WHERE rc.CONSTRAINT_SCHEMA = %s
ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, kcu.ORDINAL_POSITION"""
CASCADING = ("CASCADE", "SET NULL")


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str  # the child, whose rows change
    parent_schema: str
    parent: str
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]
    on_update: str  # CASCADE | SET NULL | RESTRICT | NO ACTION
    on_delete: str

    def describe(self, event: str) -> str:
        rule = self.on_delete if event == "DELETE" else self.on_update
        return f"{self.parent} -> {self.table} ({self.name}, ON {event} {rule})"


@dataclass(frozen=True)
class CascadePath:
    """A chain of cascading keys from the table whose row the user changes to a streamed table."""

    event: str  # DELETE | UPDATE: what the user does to the first table's row
    keys: tuple[ForeignKey, ...]
    # None: the last table's rows are deleted; else its columns set, to NEW.`c` of the first table or NULL
    sets: Mapping[str, str] | None = field(default=None)

    @property
    def start(self) -> str:
        return self.keys[0].parent

    @property
    def end(self) -> str:
        return self.keys[-1].table

    def describe(self) -> str:
        steps, event = [], self.event
        for key in self.keys:
            steps.append(key.describe(event))
            deleted = event == "DELETE" and key.on_delete == "CASCADE"
            event = "DELETE" if deleted else "UPDATE"
        return " then ".join(steps)


def read_foreign_keys(conn: Any, schema: str) -> list[ForeignKey]:
    with conn.cursor() as cursor:
        cursor.execute(FOREIGN_KEYS_QUERY, (schema,))
        rows = cursor.fetchall()
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        grouped[(row[1], row[0])].append(row)
    return [ForeignKey(name, table, parts[0][2], parts[0][3], tuple(p[6] for p in parts), tuple(p[7] for p in parts),
                       parts[0][4], parts[0][5]) for (table, name), parts in grouped.items()]


def cascade_paths_covered(conn: Any, schema: str, tables: Sequence[str]) -> list[str]:
    """The cascade paths the triggers emit, in words, for `status` and `verify`."""
    return [path.describe() for path in cascade_paths(read_foreign_keys(conn, schema), schema, list(tables))]


def cascade_paths(keys: Sequence[ForeignKey], schema: str, streamed: Sequence[str]) -> list[CascadePath]:
    """Every chain of cascading keys that changes rows of a streamed table; refuses what cannot be emitted."""
    for key in keys:
        if key.table in streamed and key.parent_schema != schema and _cascades(key):
            raise _refusal(key, f"its parent table {key.parent_schema}.{key.parent} is in another schema, whose "
                                "triggers rds-streams does not manage")
    by_parent: dict[str, list[ForeignKey]] = defaultdict(list)
    for key in keys:
        if key.parent_schema == schema and _cascades(key):
            by_parent[key.parent].append(key)
    paths: list[CascadePath] = []
    for start in sorted(by_parent):
        for event in ("DELETE", "UPDATE"):
            found: list[CascadePath] = []
            _walk(start, event, None if event == "DELETE" else {}, (), by_parent, set(streamed), found)
            _refuse_two_ways(found)
            paths += found
    return paths


def _cascades(key: ForeignKey) -> bool:
    return key.on_delete in CASCADING or key.on_update in CASCADING


def _walk(table: str, event: str, changed: dict[str, str] | None, trail: tuple[ForeignKey, ...],
          by_parent: Mapping[str, list[ForeignKey]], streamed: set[str], found: list[CascadePath]) -> None:
    """Follow the keys `table`'s change (deleted rows: changed None; else its changed columns) cascades through."""
    for key in by_parent.get(table, ()):
        if changed is None:
            rule = key.on_delete
        elif not trail:  # the user's UPDATE may change any column of the first table
            rule = key.on_update
        elif set(key.parent_columns) & set(changed):
            rule = key.on_update
        else:
            continue
        if rule not in CASCADING:
            continue
        if rule == "SET NULL":
            sets: dict[str, str] | None = {column: "NULL" for column in key.columns}
        elif changed is None:
            sets = None
        else:
            sets = {c: changed.get(p, f"NEW.{quote_identifier(p)}") if not trail else changed[p]
                    for c, p in zip(key.columns, key.parent_columns, strict=True) if not trail or p in changed}
        path = (*trail, key)
        if key.table in {k.parent for k in path}:
            if _reaches(key.table, by_parent, streamed):
                raise _refusal(key, f"it closes a cycle of cascading keys ({' -> '.join(k.parent for k in path)} -> "
                                    f"{key.table}) whose depth no trigger can follow")
            continue
        if key.table in streamed:
            found.append(CascadePath(event, path, sets))
        _walk(key.table, event, sets, path, by_parent, streamed, found)


def _reaches(table: str, by_parent: Mapping[str, list[ForeignKey]], streamed: set[str]) -> bool:
    seen, todo = set(), [table]
    while todo:
        current = todo.pop()
        if current in streamed:
            return True
        if current not in seen:
            seen.add(current)
            todo += [k.table for k in by_parent.get(current, ())]
    return False


def _refuse_two_ways(found: Sequence[CascadePath]) -> None:
    first: dict[str, CascadePath] = {}
    for path in found:
        if path.end in first:
            raise _refusal(path.keys[-1], f"{path.end} is reached from {path.start} by two chains of cascading keys "
                                          f"({first[path.end].describe()}; {path.describe()}); a row both reach "
                                          "would be emitted twice")
        first[path.end] = path


def _refusal(key: ForeignKey, why: str) -> ConfigError:
    return ConfigError(f"foreign key {key.name} on table {key.table} cascades changes that rds-streams cannot emit "
                       f"exactly: {why}",
                       hint=f"change {key.name} to ON DELETE/UPDATE RESTRICT (and cascade in the application), "
                            f"or stop streaming {key.table}")


def path_rows(path: CascadePath) -> tuple[str, str]:
    """FROM ... WHERE ... selecting the rows of the path's last table the user's change cascades to.

    Each level is an EXISTS on the level above, so a row is selected once however its parent's key
    is indexed; the first level compares with the trigger's OLD row, as the cascade itself does.
    """
    count = len(path.keys)

    def alias(level: int) -> str:
        return "OLD" if level == 0 else quote_identifier(f"rds_streams_r{level}")

    def matches(level: int) -> str:
        key = path.keys[level - 1]
        pairs = " AND ".join(f"{alias(level)}.{quote_identifier(c)} = {alias(level - 1)}.{quote_identifier(p)}"
                             for c, p in zip(key.columns, key.parent_columns, strict=True))
        if level == 1:
            return pairs
        return (f"EXISTS (SELECT 1 FROM {quote_identifier(key.parent)} AS {alias(level - 1)} "
                f"WHERE {pairs} AND {matches(level - 1)})")

    return f"FROM {quote_identifier(path.end)} AS {alias(count)}", f"WHERE {matches(count)}"


def path_changes(path: CascadePath, shape: TableShape) -> tuple[list[sql.RowChange], str]:
    """The records of one selected row (one, or REMOVE and INSERT for a key change), and a filter.

    The filter keeps only rows whose bytes the cascade changes (as DynamoDB emits nothing for an
    update that changes nothing).
    """
    row = sql.row_refs(shape.columns, quote_identifier(f"rds_streams_r{len(path.keys)}"))
    if path.sets is None:
        return [sql.RowChange("REMOVE", None, row)], ""
    new = {**row, **path.sets}
    changed = [c for c in shape.columns if c.name in path.sets]
    still = f" AND NOT ({sql.unchanged_condition(changed, '', new=new, old=row)})"
    if set(path.sets) & set(shape.primary_key):
        return [sql.RowChange("REMOVE", None, row), sql.RowChange("INSERT", new, None)], still
    return [sql.RowChange("MODIFY", new, row)], still


def cascade_body(event: str, paths: Sequence[CascadePath], shapes: Mapping[str, TableShape],
                 spec_for: Callable[[str], sql.RecordSpec], deliver_rows: Callable[[str, str], str]) -> str:
    """BEGIN ... END of the BEFORE `event` trigger emitting every path's rows.

    One set-based statement per path and event name (`deliver_rows(record, "FROM ... WHERE ...")`):
    no cursor, whose rows MariaDB would keep in an on-disk temporary table. A record over the
    Lambda payload limit is sent keys-only (it is built again to say so: only cascaded rows pay that).
    A key change sends every row's REMOVE, then every row's INSERT.
    """
    statements = []
    for path in paths:
        shape, spec = shapes[path.end], spec_for(path.end)
        changes, still = path_changes(path, shape)
        source, where = path_rows(path)
        sends, rows = [], f"{source}\n    {where}{still}"
        for change in changes:
            record = sql.record_expression(shape, change, spec, indent="      ")
            if sql.images_for(change.event_name, spec.view_type):
                record = (f"IF(LENGTH({record}) > {spec.size_limit},\n      {sql.keys_only(record, spec, '      ')},\n"
                          f"      {record})")
            sends.append(f"  {deliver_rows(record, rows)};\n")
        block = "".join(sends)
        if event == "UPDATE":
            first = path.keys[0]
            tests = " AND ".join(f"CAST(OLD.{quote_identifier(p)} AS BINARY) <=> CAST(NEW.{quote_identifier(p)} AS BINARY)"
                                 for p in first.parent_columns)
            block = f"  IF NOT ({tests}) THEN\n{block}  END IF;\n"
        statements.append(block)
    return f"BEGIN\n{''.join(statements)}END"
