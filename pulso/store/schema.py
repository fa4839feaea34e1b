"""Versioned schema migrations, with DDL generated from the table specs in ``tables``.

``MIGRATIONS`` is append-only: a released version is never edited, a change is a new version.
Each backend's ``migrate()`` calls ``apply_migrations``, which runs every version not yet
recorded in ``schema_migrations``, each in its own transaction.

Secondary indexes are created on PostgreSQL only. DuckDB documents its ART indexes as serving
constraints and point or very selective (< 0.1 %) lookups, held in memory; the time-range
filters pulso runs use the zone maps every DuckDB column has. Here they cost ~10 % of write
throughput (benchmarks/bench_duckdb_store.py) for no read gain. The primary keys exist in
both dialects: they back ON CONFLICT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pulso.errors import StoreError
from pulso.store import tables
from pulso.store.protocol import Dialect, StoreTx
from pulso.store.sql import column_list, quote
from pulso.store.tables import LogicalType, Table

MIGRATIONS_TABLE = "schema_migrations"

_TYPES: dict[LogicalType, tuple[str, str]] = {
    # logical: (duckdb, postgresql)
    "text": ("TEXT", "TEXT"),
    "int": ("INTEGER", "INTEGER"),
    "bigint": ("BIGINT", "BIGINT"),
    "smallint": ("SMALLINT", "SMALLINT"),
    "double": ("DOUBLE", "DOUBLE PRECISION"),
    "bool": ("BOOLEAN", "BOOLEAN"),
    "timestamptz": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
    "bytes": ("BLOB", "BYTEA"),
    "uuid": ("UUID", "UUID"),
    "json": ("JSON", "JSONB"),
    "numeric": ("DECIMAL(14,2)", "NUMERIC(14,2)"),
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Dialect], list[str]]


def column_type(logical: LogicalType, dialect: Dialect) -> str:
    duckdb_type, postgresql_type = _TYPES[logical]
    return duckdb_type if dialect == "duckdb" else postgresql_type


def create_table_sql(table: Table, dialect: Dialect) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one spec, primary key included."""
    columns = [
        f"{quote(c.name)} {column_type(c.type, dialect)}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    ]
    columns.append(f"PRIMARY KEY ({column_list(table.key)})")
    body = ",\n    ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {quote(table.name)} (\n    {body}\n)"


def index_name(table: Table, columns: Sequence[str]) -> str:
    return f"ix_{table.name}_{'_'.join(columns)}"


def create_index_sql(table: Table, dialect: Dialect) -> list[str]:
    """Secondary indexes; none on DuckDB (see the module docstring for why)."""
    if dialect == "duckdb":
        return []
    return [
        f"CREATE INDEX IF NOT EXISTS {quote(index_name(table, cols))}"
        f" ON {quote(table.name)} ({column_list(cols)})"
        for cols in table.indexes
    ]


def migrations_table_sql(dialect: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(MIGRATIONS_TABLE)} (\n"
        "    version INTEGER PRIMARY KEY,\n"
        "    name TEXT NOT NULL,\n"
        f"    applied_at {column_type('timestamptz', dialect)} NOT NULL\n)"
    )


def table_statements(table: Table, dialect: Dialect) -> list[str]:
    return [create_table_sql(table, dialect), *create_index_sql(table, dialect)]


# Version 1 is frozen: a table added later gets its own migration, not a place here.
VERSION_1_TABLES: tuple[Table, ...] = (
    tables.RAW_EVENTS,
    tables.PAYMENTS,
    tables.PAYMENT_MINUTES,
    tables.ORDERS,
    tables.SALES,
    tables.PRODUCT_SNAPSHOTS,
    tables.ALERTS,
    tables.DEADLETTER,
    tables.CHECKPOINTS,
)


def _initial_schema(dialect: Dialect) -> list[str]:
    statements = [migrations_table_sql(dialect)]
    for table in VERSION_1_TABLES:
        statements.extend(table_statements(table, dialect))
    return statements


_VERSION_2_TABLES: tuple[Table, ...] = (
    tables.PIX_CHARGES,
    tables.STORES,
)


def _pix_charges_and_stores(dialect: Dialect) -> list[str]:
    return [s for table in _VERSION_2_TABLES for s in table_statements(table, dialect)]


def _etl_runs(dialect: Dialect) -> list[str]:
    return table_statements(tables.ETL_RUNS, dialect)


def _stream_windows(dialect: Dialect) -> list[str]:
    tables_v4 = (tables.STREAM_WINDOWS, tables.STREAM_LATE_EVENTS)
    return [s for table in tables_v4 for s in table_statements(table, dialect)]


def _alert_dispatch(dialect: Dialect) -> list[str]:
    tables_v6 = (tables.ALERT_NOTICES, tables.ALERT_LINKS, tables.ALERT_DELIVERIES)
    return [s for table in tables_v6 for s in table_statements(table, dialect)]


def _fraud_scores(dialect: Dialect) -> list[str]:
    return table_statements(tables.FRAUD_SCORES, dialect)


def _time_partitions(dialect: Dialect) -> list[str]:
    # Version 9 (pulso/store/partitions.py): PostgreSQL only; imported late (it builds on this
    # module).
    from pulso.store.partitions import migration_v7

    return migration_v7(dialect)


def _stream_state(dialect: Dialect) -> list[str]:
    tables_v8 = (tables.STREAM_LEADER, tables.STREAM_SEEN_EVENTS)
    return [s for table in tables_v8 for s in table_statements(table, dialect)]


MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema", _initial_schema),
    Migration(2, "pix charges and stores", _pix_charges_and_stores),
    Migration(3, "etl runs", _etl_runs),
    Migration(4, "stream windows and late events", _stream_windows),
    Migration(5, "fraud scores", _fraud_scores),
    Migration(6, "alert dispatch state", _alert_dispatch),
    Migration(7, "time partitions of the fact tables (PostgreSQL)", _time_partitions),
    Migration(8, "stream-state runner election and dedupe", _stream_state),
]


class _Migratable(Protocol):
    dialect: Dialect

    def transaction(self) -> AbstractContextManager[StoreTx]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Versions must be positive and strictly increasing, so the order applied is the order
    written."""
    versions = [m.version for m in migrations]
    if any(v < 1 for v in versions) or versions != sorted(set(versions)):
        raise StoreError(f"migration versions must be positive and strictly increasing: {versions}")


def apply_migrations(store: _Migratable, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the versions ``store`` has not recorded yet; return those applied now."""
    check_migrations(migrations)
    with store.transaction() as tx:
        tx.execute(migrations_table_sql(store.dialect))
    recorded = {int(row[0]) for row in store.query(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    _refuse_newer_schema(recorded, migrations)
    applied: list[int] = []
    for migration in migrations:
        if migration.version not in recorded:
            _apply_one(store, migration)
            applied.append(migration.version)
    return applied


def _refuse_newer_schema(recorded: set[int], migrations: Sequence[Migration]) -> None:
    known = {m.version for m in migrations}
    unknown = sorted(recorded - known)
    if unknown:
        raise StoreError(
            f"the database has schema version {unknown[-1]}, newer than this pulso knows "
            f"({max(known, default=0)}); upgrade pulso or point PULSO_STORE_URL elsewhere"
        )


def _apply_one(store: _Migratable, migration: Migration) -> None:
    with store.transaction() as tx:
        for statement in migration.statements(store.dialect):
            tx.execute(statement)
        tx.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at)"
            " VALUES (%s, %s, CURRENT_TIMESTAMP)",
            (migration.version, migration.name),
        )
