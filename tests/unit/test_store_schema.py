"""DDL and statement generation for both dialects, without a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import duckdb
import pytest

from pulso.errors import StoreError
from pulso.store.protocol import Dialect
from pulso.store.schema import (
    MIGRATIONS,
    VERSION_1_TABLES,
    Migration,
    check_migrations,
    column_type,
    create_index_sql,
    create_table_sql,
    migrations_table_sql,
)
from pulso.store.sql import (
    batch_columns,
    insert_new_sql,
    merge_expression,
    merge_rule,
    quote,
    to_qmark,
    upsert_sql,
)
from pulso.store.tables import (
    ALERTS,
    CHECKPOINTS,
    DEADLETTER,
    ETL_RUNS,
    PAYMENT_MINUTES,
    PAYMENTS,
    PRODUCT_SNAPSHOTS,
    RAW_EVENTS,
    TABLES,
    Column,
    ColumnBatch,
    LogicalType,
    Table,
)

DIALECTS: tuple[Dialect, ...] = ("duckdb", "postgresql")

SMALL = Table(
    "small",
    (Column("id", "uuid", nullable=False), Column("at", "timestamptz"), Column("n", "numeric")),
    key=("id",),
    indexes=(("at",),),
)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_logical_type_has_a_column_type(dialect: Dialect) -> None:
    for logical in get_args(LogicalType):
        assert column_type(logical, dialect)


@pytest.mark.parametrize(
    ("logical", "duckdb_type", "postgresql_type"),
    [
        ("double", "DOUBLE", "DOUBLE PRECISION"),
        ("bytes", "BLOB", "BYTEA"),
        ("json", "JSON", "JSONB"),
        ("numeric", "DECIMAL(14,2)", "NUMERIC(14,2)"),
        ("timestamptz", "TIMESTAMPTZ", "TIMESTAMPTZ"),
    ],
)
def test_types_differ_where_the_dialects_do(
    logical: LogicalType, duckdb_type: str, postgresql_type: str
) -> None:
    assert column_type(logical, "duckdb") == duckdb_type
    assert column_type(logical, "postgresql") == postgresql_type


def test_create_table_lists_columns_nullability_and_key() -> None:
    assert create_table_sql(SMALL, "postgresql") == (
        'CREATE TABLE IF NOT EXISTS "small" (\n'
        '    "id" UUID NOT NULL,\n'
        '    "at" TIMESTAMPTZ,\n'
        '    "n" NUMERIC(14,2),\n'
        '    PRIMARY KEY ("id")\n'
        ")"
    )


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (DEADLETTER, '"offset" BIGINT NOT NULL'),
        (DEADLETTER, '"partition" INTEGER NOT NULL'),
        (PAYMENT_MINUTES, '"minute" TIMESTAMPTZ NOT NULL'),
        (ALERTS, '"count" INTEGER NOT NULL'),
        (PRODUCT_SNAPSHOTS, '"position" INTEGER'),
        (RAW_EVENTS, '"key" TEXT NOT NULL'),
        (CHECKPOINTS, '"value" BYTEA NOT NULL'),
        (PAYMENT_MINUTES, 'PRIMARY KEY ("store_id", "minute")'),
    ],
)
def test_reserved_words_are_quoted(table: Table, fragment: str) -> None:
    assert fragment in create_table_sql(table, "postgresql")


def test_quote_escapes_embedded_quotes() -> None:
    assert quote('we"ird') == '"we""ird"'


def test_indexes_are_created_on_postgresql_only() -> None:
    assert create_index_sql(PAYMENTS, "postgresql") == [
        'CREATE INDEX IF NOT EXISTS "ix_payments_created_at" ON "payments" ("created_at")',
        'CREATE INDEX IF NOT EXISTS "ix_payments_store_id_created_at"'
        ' ON "payments" ("store_id", "created_at")',
    ]
    assert create_index_sql(PAYMENTS, "duckdb") == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_version_one_creates_the_migrations_table_and_every_table(dialect: Dialect) -> None:
    first = MIGRATIONS[0]
    assert first.version == 1
    statements = first.statements(dialect)
    assert migrations_table_sql(dialect) in statements
    for table in VERSION_1_TABLES:
        assert create_table_sql(table, dialect) in statements
        for index in create_index_sql(table, dialect):
            assert index in statements


def test_version_one_runs_on_duckdb_and_is_repeatable() -> None:
    conn = duckdb.connect()
    for _ in range(2):  # IF NOT EXISTS everywhere: a half-applied version can be rerun
        for statement in MIGRATIONS[0].statements("duckdb"):
            conn.execute(statement)
    tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {t.name for t in VERSION_1_TABLES} | {"schema_migrations"}


def test_all_versions_together_create_every_table() -> None:
    conn = duckdb.connect()
    for migration in MIGRATIONS:
        for statement in migration.statements("duckdb"):
            conn.execute(statement)
    tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {t.name for t in TABLES} | {"schema_migrations"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_version_three_creates_only_the_etl_runs_table(dialect: Dialect) -> None:
    third = MIGRATIONS[2]
    assert (third.version, third.name) == (3, "etl runs")
    assert third.statements(dialect) == [
        create_table_sql(ETL_RUNS, dialect),
        *create_index_sql(ETL_RUNS, dialect),
    ]
    assert ETL_RUNS not in VERSION_1_TABLES


def test_etl_runs_has_its_key_not_null_columns_and_postgresql_indexes() -> None:
    ddl = create_table_sql(ETL_RUNS, "postgresql")
    for fragment in (
        '"run_id" TEXT NOT NULL',
        '"status" TEXT NOT NULL',
        '"started_at" TIMESTAMPTZ NOT NULL',
        '"rows_loaded" BIGINT NOT NULL',
        '"checksum" TEXT,',
        'PRIMARY KEY ("run_id")',
    ):
        assert fragment in ddl
    assert create_index_sql(ETL_RUNS, "postgresql") == [
        'CREATE INDEX IF NOT EXISTS "ix_etl_runs_checksum" ON "etl_runs" ("checksum")',
        'CREATE INDEX IF NOT EXISTS "ix_etl_runs_started_at" ON "etl_runs" ("started_at")',
    ]


def test_versions_one_and_two_are_unchanged_by_version_three() -> None:
    conn = duckdb.connect()
    for migration in MIGRATIONS[:2]:
        for statement in migration.statements("duckdb"):
            conn.execute(statement)
    tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "etl_runs" not in tables
    for statement in MIGRATIONS[2].statements("duckdb"):
        conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM etl_runs").fetchall() == [(0,)]


def test_the_shipped_migrations_are_in_order() -> None:
    check_migrations(MIGRATIONS)


@pytest.mark.parametrize("versions", [[1, 1], [2, 1], [0, 1], [1, 3, 2]])
def test_migrations_out_of_order_are_refused(versions: list[int]) -> None:
    migrations = [Migration(v, f"v{v}", lambda dialect: []) for v in versions]
    with pytest.raises(StoreError, match="strictly increasing"):
        check_migrations(migrations)


# --- merge rules and bulk statements ----------------------------------------------------


@pytest.mark.parametrize(
    ("merge", "expression"),
    [
        ("replace", 'excluded."v"'),
        ("latest", 'COALESCE(excluded."v", cur."v")'),
        ("first", 'COALESCE(cur."v", excluded."v")'),
        ("max", 'GREATEST(cur."v", excluded."v")'),
        (
            "rank:r",
            'CASE WHEN cur."r" IS NULL OR excluded."r" >= cur."r"'
            ' THEN excluded."v" ELSE cur."v" END',
        ),
    ],
)
def test_merge_expressions(merge: str, expression: str) -> None:
    column = Column("v", "text", merge=merge)
    table = Table("t", (Column("k", "text", False), column, Column("r", "int")), key=("k",))
    assert merge_expression(table, column) == expression


@pytest.mark.parametrize("merge", ["newest", "max:x", "rank:nope", "rank:", ""])
def test_unknown_merge_rules_are_refused(merge: str) -> None:
    column = Column("v", "text", merge=merge)
    table = Table("t", (Column("k", "text", False), column), key=("k",))
    with pytest.raises(StoreError, match="merge rule"):
        merge_rule(table, column)


def test_every_shipped_column_has_a_valid_merge_rule() -> None:
    for table in TABLES:
        for column in table.columns:
            merge_rule(table, column)


def test_upsert_updates_only_non_key_columns_of_the_batch() -> None:
    sql = upsert_sql(PAYMENT_MINUTES, ("store_id", "minute", "charges"), "staged")
    assert sql == (
        'INSERT INTO "payment_minutes" AS cur ("store_id", "minute", "charges")'
        ' SELECT "store_id", "minute", "charges" FROM staged'
        ' ON CONFLICT ("store_id", "minute") DO UPDATE SET "charges" = excluded."charges"'
    )


def test_upsert_of_key_columns_only_does_nothing_on_conflict() -> None:
    assert upsert_sql(CHECKPOINTS, ("name",), "s").endswith('ON CONFLICT ("name") DO NOTHING')


def test_insert_new_skips_conflicts() -> None:
    assert insert_new_sql(CHECKPOINTS, ("name", "value", "updated_at"), "s") == (
        'INSERT INTO "checkpoints" ("name", "value", "updated_at")'
        ' SELECT "name", "value", "updated_at" FROM s ON CONFLICT ("name") DO NOTHING'
    )


def test_batch_columns_come_back_in_table_order_with_the_row_count() -> None:
    rows: ColumnBatch = {"updated_at": [None] * 2, "name": ["a", "b"], "value": [b"", b""]}
    assert batch_columns(CHECKPOINTS, rows) == (("name", "value", "updated_at"), 2)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT %s, %s", "SELECT ?, ?"),
        ("WHERE a LIKE 'x%%'", "WHERE a LIKE 'x%'"),
        ("SELECT '%%s', %s", "SELECT '%s', ?"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholders_become_duckdb_style(sql: str, expected: str) -> None:
    assert to_qmark(sql) == expected


def test_open_store_imports_only_the_chosen_driver(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pulso.config import load_settings\n"
        "from pulso.store import open_store\n"
        "assert 'duckdb' not in sys.modules and 'psycopg' not in sys.modules\n"
        f"store = open_store(load_settings(data_dir={str(tmp_path)!r}))\n"
        "store.close()\n"
        "print('duckdb' in sys.modules, 'psycopg' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert (tmp_path / "pulso.duckdb").exists()
