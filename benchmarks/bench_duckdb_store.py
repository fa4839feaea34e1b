"""DuckDB store write path: raw_events insert_new + payments upsert, one transaction per batch.

Run: .venv/bin/python benchmarks/bench_duckdb_store.py [--batches 40] [--batch-size 20000]

Prints rows/s (raw_events + payments rows) and events/s for:
  - the store as shipped (Arrow staging, checkpoint threshold 256 MB);
  - the same with timestamps given as epoch microseconds (the other accepted form);
  - the same with DuckDB's default 16 MB checkpoint threshold;
  - the same with the secondary indexes PostgreSQL gets (why DuckDB has none);
Each figure includes the checkpoint at close. Beside them, a row-by-row baseline
(one single-row INSERT ... ON CONFLICT per row), as a ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pulso.store.duckdb import DuckDBStore
from pulso.store.sql import column_list, merge_expression, quote
from pulso.store.tables import PAYMENTS, RAW_EVENTS, ColumnBatch, Table

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAYLOAD = b'{"charge_id":"...","amount":"123.45","store_id":"loja-017","city":"Recife"}' * 4


@dataclass
class Batch:
    raw: ColumnBatch
    payments: ColumnBatch


def make_batches(count: int, size: int, start: datetime) -> list[Batch]:
    """Half of each batch creates charges, half confirms the previous batch's charges."""
    batches: list[Batch] = []
    for b in range(count):
        at = [start + timedelta(seconds=b, microseconds=i * 37) for i in range(size)]
        batches.append(Batch(_raw(at), _payments(b, at)))
    return batches


def _raw(at: list[datetime]) -> ColumnBatch:
    size = len(at)
    received = at[-1] + timedelta(milliseconds=5)
    return {
        "event_id": [uuid.uuid4() for _ in range(size)],
        "type": ["pix.charge.created"] * size,
        "topic": ["payments"] * size,
        "occurred_at": at,
        "source": ["generator"] * size,
        "key": [f"loja-{i % 200:03d}" for i in range(size)],
        "payload": [PAYLOAD] * size,
        "received_at": [received] * size,
    }


def _payments(b: int, at: list[datetime]) -> ColumnBatch:
    size = len(at)
    confirm = [b > 0 and i % 2 == 1 for i in range(size)]
    rows: ColumnBatch = {name: [None] * size for name in PAYMENTS.column_names}
    rows["charge_id"] = [f"ch-{b - 1 if c else b}-{i}" for i, c in enumerate(confirm)]
    rows["status"] = ["confirmed" if c else "pending" for c in confirm]
    rows["status_rank"] = [3 if c else 0 for c in confirm]
    rows["updated_at"] = at
    for name, value in (("store_id", "loja-017"), ("city", "Recife"), ("uf", "PE")):
        rows[name] = [None if c else value for c in confirm]
    rows["amount_cents"] = [None if c else 12_345 + i for i, c in enumerate(confirm)]
    rows["paid_cents"] = [12_345 + i if c else None for i, c in enumerate(confirm)]
    rows["created_at"] = [None if c else t for c, t in zip(confirm, at, strict=True)]
    rows["confirmed_at"] = [t if c else None for c, t in zip(confirm, at, strict=True)]
    rows["txid"] = [None if c else f"tx{b}x{i}" for i, c in enumerate(confirm)]
    return rows


def as_epoch_us(batch: ColumnBatch, table: Table) -> ColumnBatch:
    one_us = timedelta(microseconds=1)
    out = dict(batch)
    for column in table.columns:
        if column.type == "timestamptz" and column.name in out:
            out[column.name] = [
                None if v is None else (v - EPOCH) // one_us for v in out[column.name]
            ]
    return out


def run(store: DuckDBStore, batches: list[Batch]) -> tuple[float, list[float]]:
    """Seconds for all batches, and each commit's seconds."""
    commits: list[float] = []
    started = time.perf_counter()
    for batch in batches:
        with store.transaction() as tx:
            new = tx.insert_new(RAW_EVENTS, batch.raw)
            tx.upsert(PAYMENTS, batch.payments)
            commit_started = time.perf_counter()
        commits.append(time.perf_counter() - commit_started)
        assert new == len(batch.raw["event_id"])
    return time.perf_counter() - started, commits


def row_by_row(store: DuckDBStore, batch: Batch, rows: int) -> float:
    """Seconds to write ``rows`` events with one single-row INSERT ... ON CONFLICT each."""
    raw_sql = _single_row_sql(RAW_EVENTS, "DO NOTHING")
    updates = ", ".join(
        f"{quote(c.name)} = {merge_expression(PAYMENTS, c)}" for c in PAYMENTS.columns[1:]
    )
    pay_sql = _single_row_sql(PAYMENTS, f"DO UPDATE SET {updates}")
    raw_rows = zip(*(batch.raw[n][:rows] for n in RAW_EVENTS.column_names), strict=True)
    pay_rows = zip(*(batch.payments[n][:rows] for n in PAYMENTS.column_names), strict=True)
    started = time.perf_counter()
    with store.transaction() as tx:
        for raw, payment in zip(raw_rows, pay_rows, strict=True):
            tx.execute(raw_sql, raw)
            tx.execute(pay_sql, payment)
    return time.perf_counter() - started


def _single_row_sql(table: Table, action: str) -> str:
    marks = ", ".join("%s" for _ in table.columns)
    return (
        f"INSERT INTO {quote(table.name)} AS cur ({column_list(table.column_names)})"
        f" VALUES ({marks}) ON CONFLICT ({column_list(table.key)}) {action}"
    )


def add_secondary_indexes(store: DuckDBStore) -> None:
    with store.transaction() as tx:
        for table in (RAW_EVENTS, PAYMENTS):
            for i, columns in enumerate(table.indexes):
                tx.execute(
                    f"CREATE INDEX ix_{table.name}_{i} ON {table.name} ({', '.join(columns)})"
                )


def measure(
    label: str,
    folder: Path,
    batches: list[Batch],
    *,
    threshold_mb: int | None = None,
    prepare: Callable[[DuckDBStore], Any] | None = None,
) -> float:
    path = folder / f"{label.replace(' ', '_')}.duckdb"
    kwargs = {} if threshold_mb is None else {"checkpoint_threshold_mb": threshold_mb}
    store = DuckDBStore(path, **kwargs)
    store.migrate()
    if prepare:
        prepare(store)
    seconds, commits = run(store, batches)
    closing_started = time.perf_counter()
    store.close()  # checkpoints what the WAL still holds: counted, so thresholds compare fairly
    seconds += time.perf_counter() - closing_started
    events = sum(len(b.raw["event_id"]) for b in batches)
    rows = events + sum(len(b.payments["charge_id"]) for b in batches)
    commits.sort()
    print(
        f"{label:<34} {rows / seconds:>10,.0f} rows/s {events / seconds:>10,.0f} events/s"
        f"   commit p50 {commits[len(commits) // 2] * 1000:5.0f} ms,"
        f" max {commits[-1] * 1000:5.0f} ms"
    )
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=500)
    args = parser.parse_args()
    print(
        f"DuckDB store, {args.batches} batches of {args.batch_size:,} events,"
        f" {os.cpu_count()} cores"
    )
    batches = make_batches(args.batches, args.batch_size, datetime(2024, 5, 17, tzinfo=UTC))
    fast = [
        Batch(as_epoch_us(b.raw, RAW_EVENTS), as_epoch_us(b.payments, PAYMENTS)) for b in batches
    ]
    with tempfile.TemporaryDirectory(prefix="pulso-bench-") as tmp:
        folder = Path(tmp)
        shipped = measure("store (datetimes)", folder, batches)
        measure("store (epoch microseconds)", folder, fast)
        measure("store, 16 MB checkpoint threshold", folder, batches, threshold_mb=16)
        measure("store + secondary indexes", folder, batches, prepare=add_secondary_indexes)
        with DuckDBStore(folder / "baseline.duckdb") as store:
            store.migrate()
            seconds = row_by_row(store, batches[0], args.baseline_rows)
        baseline = 2 * args.baseline_rows / seconds
        print(f"{'baseline: row by row':<34} {baseline:>10,.0f} rows/s")
    print(f"ratio store / row-by-row: {shipped / baseline:,.1f}x   (target: >= 150,000 rows/s)")


if __name__ == "__main__":
    main()
