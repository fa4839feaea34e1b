"""PostgreSQL payments upsert: the store's binary COPY path against row-by-row INSERTs.

Run: .venv/bin/python benchmarks/bench_postgres_copy.py [--batches 10] [--batch-size 20000]

Every variant writes the same rows into an empty ``payments`` table, one transaction per batch,
in a throwaway schema of database ``test`` (PULSO_TEST_POSTGRES_URL overrides the server),
dropped afterwards:
  - store: PostgresStore.upsert (binary COPY into a temp table, one INSERT ... ON CONFLICT);
  - text COPY: the same staging with COPY's text format (why the store uses binary);
  - baseline: executemany of a single-row INSERT ... ON CONFLICT with the same merge rules.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from bench_duckdb_store import make_batches

from pulso.store.postgres import PostgresStore, staging_table_sql
from pulso.store.sql import column_list, merge_expression, quote, upsert_sql
from pulso.store.tables import PAYMENTS, ColumnBatch

SERVER = os.environ.get("PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = PAYMENTS.column_names


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def rows_of(batch: ColumnBatch) -> list[tuple[Any, ...]]:
    return list(zip(*(batch[name] for name in COLUMNS), strict=True))


def store_upsert(store: PostgresStore, batch: ColumnBatch) -> None:
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, batch)


def text_copy(conn: psycopg.Connection[Any], batch: ColumnBatch) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(staging_table_sql('"stage"', PAYMENTS, COLUMNS))
        with cursor.copy(f'COPY "stage" ({column_list(COLUMNS)}) FROM STDIN') as copy:
            for row in rows_of(batch):
                copy.write_row(row)
        cursor.execute(upsert_sql(PAYMENTS, COLUMNS, '"stage"'))


def row_by_row_sql() -> str:
    updates = ", ".join(
        f"{quote(c.name)} = {merge_expression(PAYMENTS, c)}" for c in PAYMENTS.columns[1:]
    )
    marks = ", ".join("%s" for _ in COLUMNS)
    return (
        f"INSERT INTO payments AS cur ({column_list(COLUMNS)}) VALUES ({marks})"
        f" ON CONFLICT (charge_id) DO UPDATE SET {updates}"
    )


def row_by_row(conn: psycopg.Connection[Any], batch: ColumnBatch) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(row_by_row_sql(), rows_of(batch))


def timed(
    label: str,
    conn: psycopg.Connection[Any],
    batches: list[ColumnBatch],
    write: Callable[[ColumnBatch], None],
) -> float:
    conn.execute("TRUNCATE payments")
    started = time.perf_counter()
    for batch in batches:
        write(batch)
    seconds = time.perf_counter() - started
    rows = sum(len(b["charge_id"]) for b in batches)
    (stored,) = conn.execute("SELECT count(*) FROM payments").fetchone() or (0,)
    print(f"{label:<40} {rows / seconds:>10,.0f} rows/s   ({stored:,} charges stored)")
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args()
    batches = [
        b.payments
        for b in make_batches(args.batches, args.batch_size, datetime(2024, 5, 17, tzinfo=UTC))
    ]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = with_schema(SERVER, schema)
    print(f"PostgreSQL payments upsert, {args.batches} batches of {args.batch_size:,} rows")
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            run_all(url, batches)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_all(url: str, batches: list[ColumnBatch]) -> None:
    with PostgresStore(url) as store, psycopg.connect(url, autocommit=True) as conn:
        store.migrate()
        copy = timed("store: binary COPY + INSERT ON CONFLICT", conn, batches, _bind(store))
        text = timed("text COPY + INSERT ON CONFLICT", conn, batches, lambda b: text_copy(conn, b))
        baseline = timed(
            "baseline: executemany row by row", conn, batches, lambda b: row_by_row(conn, b)
        )
    print(f"ratio binary COPY / row-by-row: {copy / baseline:.1f}x   (target: >= 30,000 rows/s)")
    print(f"ratio binary COPY / text COPY:  {copy / text:.1f}x")


def _bind(store: PostgresStore) -> Callable[[ColumnBatch], None]:
    return lambda batch: store_upsert(store, batch)


if __name__ == "__main__":
    main()
