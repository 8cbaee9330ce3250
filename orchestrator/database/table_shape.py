"""A table's columns and primary key as information_schema describes them: what triggers are generated from.

Pure data; catalog.py reads it from a server.
"""

from __future__ import annotations

from dataclasses import dataclass

INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
EXACT_NUMBER_TYPES = INTEGER_TYPES | {"decimal", "numeric", "year"}
FLOAT_TYPES = frozenset({"float", "double", "real", "double precision"})
TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"})
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
TEMPORAL_TYPES = frozenset({"date", "datetime", "timestamp", "time"})
# Types whose equal values (<=>) are always the same bytes, unlike text under a _ci collation.
BYTE_EXACT_TYPES = INTEGER_TYPES | TEMPORAL_TYPES | {"decimal", "numeric", "year", "bit"}
SPATIAL_TYPES = frozenset({"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                           "multipolygon", "geometrycollection", "geomcollection"})


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # lower case, e.g. "varchar"; MariaDB reports JSON columns as "longtext"
    column_type: str  # e.g. "bigint(20) unsigned", "bit(12)", "enum('a','b')"
    nullable: bool
    charset: str | None
    numeric_precision: int | None  # the width in bits for BIT
    numeric_scale: int | None
    datetime_precision: int | None
    collation: str | None = None  # text columns: values of one collation can be joined without conversion

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()

    @property
    def is_boolean_bit(self) -> bool:
        return self.data_type == "bit" and self.numeric_precision == 1


@dataclass(frozen=True)
class TableShape:
    schema: str
    table: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def key_columns(self) -> tuple[Column, ...]:
        by_name = {c.name: c for c in self.columns}
        return tuple(by_name[name] for name in self.primary_key)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"
