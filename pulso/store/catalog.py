"""What a live store holds, read from its own catalog: tables, columns, logical types, keys.

Backups and retention enumerate tables here rather than from a list in code, so a table a
later migration adds is covered the day it exists. On PostgreSQL the partitions of a
partitioned table are not listed (their parent is, and reading it reads them all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from pulso.errors import StoreError
from pulso.store.protocol import Dialect
from pulso.store.sql import quote
from pulso.store.tables import Column, LogicalType, Table

Fetch = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""``Store.query`` or ``StoreTx.fetch``."""

_LOGICAL: Final[dict[str, LogicalType]] = {
    "text": "text",
    "varchar": "text",
    "character varying": "text",
    "integer": "int",
    "int": "int",
    "bigint": "bigint",
    "smallint": "smallint",
    "double": "double",
    "double precision": "double",
    "boolean": "bool",
    "timestamp with time zone": "timestamptz",
    "blob": "bytes",
    "bytea": "bytes",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "decimal": "numeric",
    "numeric": "numeric",
}
_PARENS: Final = re.compile(r"\(.*\)$")

_TABLES_SQL: Final[dict[Dialect, str]] = {
    "duckdb": (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_catalog = current_database() AND table_type = 'BASE TABLE'"
        " ORDER BY table_name"
    ),
    "postgresql": (
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition ORDER BY c.relname"
    ),
}
_COLUMNS_SQL: Final = (
    "SELECT table_name, column_name, data_type, is_nullable, numeric_precision, numeric_scale"
    " FROM information_schema.columns WHERE table_schema = current_schema()"
    " ORDER BY table_name, ordinal_position"
)
_KEYS_SQL: Final[dict[Dialect, str]] = {
    "duckdb": (
        "SELECT table_name, constraint_column_names FROM duckdb_constraints()"
        " WHERE schema_name = current_schema() AND database_name = current_database()"
        " AND constraint_type = 'PRIMARY KEY'"
    ),
    "postgresql": (
        "SELECT c.relname, array_agg(a.attname ORDER BY k.ord)"
        " FROM pg_constraint x JOIN pg_class c ON c.oid = x.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL unnest(x.conkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE n.nspname = current_schema() AND x.contype = 'p' GROUP BY c.relname"
    ),
}


@dataclass(frozen=True, slots=True)
class StoredColumn:
    name: str
    type: LogicalType
    nullable: bool
    precision: int | None = None
    scale: int | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type, self.precision, self.scale)


@dataclass(frozen=True, slots=True)
class StoredTable:
    name: str
    columns: tuple[StoredColumn, ...]
    key: tuple[str, ...]

    @property
    def spec(self) -> Table:
        """The table as a spec the bulk writers accept (merge rules unused: appends only)."""
        return Table(
            self.name, tuple(Column(c.name, c.type, c.nullable) for c in self.columns), self.key
        )

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    def column(self, name: str) -> StoredColumn | None:
        return next((c for c in self.columns if c.name == name), None)


def arrow_type(logical: LogicalType, precision: int | None = None, scale: int | None = None) -> Any:
    """How a logical type is kept in Arrow and Parquet (backups, archive)."""
    simple: dict[str, Any] = {
        "text": pa.string(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "smallint": pa.int16(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "bytes": pa.binary(),
        "uuid": pa.uuid(),
        "json": pa.string(),
    }
    if logical == "numeric":
        return pa.decimal128(precision or 14, 2 if scale is None else scale)
    return simple[logical]


def stored_tables(dialect: Dialect, fetch: Fetch) -> list[StoredTable]:
    """Every table of the store's schema, by name, with its columns in order."""
    names = [str(row[0]) for row in fetch(_TABLES_SQL[dialect], ())]
    keys = {str(row[0]): tuple(str(c) for c in row[1]) for row in fetch(_KEYS_SQL[dialect], ())}
    columns: dict[str, list[StoredColumn]] = {}
    for table, column, data_type, nullable, precision, scale in fetch(_COLUMNS_SQL, ()):
        if table in names:
            logical = logical_type(str(table), str(column), str(data_type))
            columns.setdefault(str(table), []).append(
                StoredColumn(
                    str(column),
                    logical,
                    str(nullable).upper() == "YES",
                    int(precision) if logical == "numeric" and precision is not None else None,
                    int(scale) if logical == "numeric" and scale is not None else None,
                )
            )
    return [StoredTable(n, tuple(columns.get(n, ())), keys.get(n, ())) for n in names]


def logical_type(table: str, column: str, data_type: str) -> LogicalType:
    base = _PARENS.sub("", data_type.strip().lower()).strip()
    logical = _LOGICAL.get(base)
    if logical is None:
        raise StoreError(
            f"{table}.{column} has type {data_type}, which pulso cannot back up; "
            "add it to pulso/store/catalog.py"
        )
    return logical


def export_select(table: StoredTable, dialect: Dialect) -> str:
    """``SELECT`` of a whole table in the forms ``fetch_arrow`` turns into the Arrow types:
    uuid as its 16 bytes, json as text."""
    parts = []
    for c in table.columns:
        name = quote(c.name)
        if c.type == "uuid":
            expr = (
                f"from_hex(replace(CAST({name} AS VARCHAR), '-', ''))"
                if dialect == "duckdb"
                else f"uuid_send({name})"
            )
        elif c.type == "timestamptz" and dialect == "postgresql":
            # Exact (EXTRACT gives numeric since PG 14) and a plain integer to read.
            expr = f"CAST(EXTRACT(EPOCH FROM {name}) * 1000000 AS BIGINT)"
        elif c.type == "json":
            expr = f"CAST({name} AS {'VARCHAR' if dialect == 'duckdb' else 'TEXT'})"
        else:
            expr = name
        parts.append(f"{expr} AS {name}")
    return f"SELECT {', '.join(parts)} FROM {quote(table.name)}"


def transport_schema(table: StoredTable, dialect: Dialect) -> pa.Schema:
    """The Arrow schema ``export_select`` rows arrive in: uuid as binary, and PostgreSQL's
    timestamps as epoch microseconds; cast to ``arrow_schema`` afterwards."""

    def transport(c: StoredColumn) -> pa.DataType:
        if c.type == "uuid":
            return pa.binary()
        if c.type == "timestamptz" and dialect == "postgresql":
            return pa.int64()
        return c.arrow_type

    return pa.schema([pa.field(c.name, transport(c), c.nullable) for c in table.columns])
