"""PostgreSQL time partitions (migration v9) against the plain tables, in the same run.

Run: .venv/bin/python benchmarks/bench_partitions.py [--days 60] [--per-day 2000] [--batch 5000]

Two throwaway schemas of database ``test`` (PULSO_TEST_POSTGRES_URL overrides the server):
``plain`` stops at the migrations before 9 (plain tables), ``partitioned`` has them all
(daily partitions, created before timing: the steady state, as the pipeline runs). Each gets
the same rows:
  - write: ``raw_events`` through the pipeline's path (``insert_new``: COPY into a staging
    table, ``INSERT ... ON CONFLICT DO NOTHING``) and ``payment_minutes`` (``upsert``), one
    transaction per batch; events/s;
  - read: dashboard-style time-range queries, one day and the last 7 days out of ``--days``
    (count by type over ``raw_events``; money per store over ``payment_minutes``); the median
    of 7 runs after a warm-up.
Prints each figure beside the plain tables' and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from pulso.store import partitions
from pulso.store.postgres import PostgresStore
from pulso.store.schema import MIGRATIONS, apply_migrations
from pulso.store.tables import PAYMENT_MINUTES, RAW_EVENTS, ColumnBatch

SERVER = os.environ.get("PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
STORES = 20


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def event_batches(days: int, per_day: int, batch: int, end: datetime) -> list[ColumnBatch]:
    start = end - timedelta(days=days)
    step = timedelta(days=days) / (days * per_day)
    times = [start + i * step for i in range(days * per_day)]
    out: list[ColumnBatch] = []
    for i in range(0, len(times), batch):
        chunk = times[i : i + batch]
        out.append(
            {
                "event_id": [uuid.uuid4() for _ in chunk],
                "type": [
                    ("payment.created", "payment.confirmed")[j % 2] for j in range(len(chunk))
                ],
                "topic": ["payments"] * len(chunk),
                "occurred_at": chunk,
                "source": ["bench"] * len(chunk),
                "key": [f"c{j}" for j in range(len(chunk))],
                "payload": [b'{"amount_cents": 1234}'] * len(chunk),
                "received_at": chunk,
            }
        )
    return out


def minute_batches(days: int, batch: int, end: datetime) -> list[ColumnBatch]:
    start = end - timedelta(days=days)
    rows = [
        (f"loja-{s}", start + timedelta(minutes=15 * m))
        for m in range(days * 96)
        for s in range(STORES)
    ]
    out: list[ColumnBatch] = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        n = len(chunk)
        out.append(
            {
                "store_id": [r[0] for r in chunk],
                "minute": [r[1] for r in chunk],
                "city": ["Recife"] * n,
                "uf": ["PE"] * n,
                "charges": [3] * n,
                "confirmed": [2] * n,
                "amount_cents": [4500] * n,
                "confirmed_cents": [3000] * n,
                "confirmation_seconds_sum": [12.5] * n,
            }
        )
    return out


def write(store: PostgresStore, events: list[ColumnBatch], minutes: list[ColumnBatch]) -> float:
    """Rows per second over both tables."""
    rows = 0
    t0 = time.perf_counter()
    for batch in events:
        with store.transaction() as tx:
            rows += tx.insert_new(RAW_EVENTS, batch)
    for batch in minutes:
        with store.transaction() as tx:
            tx.upsert(PAYMENT_MINUTES, batch)
        rows += len(batch["minute"])
    return rows / (time.perf_counter() - t0)


def timed(run: Callable[[], Any], repeats: int = 7) -> float:
    run()  # warm-up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


QUERIES = {
    "raw_events by type, 1 day": (
        "SELECT type, count(*) FROM raw_events WHERE occurred_at >= %s AND occurred_at < %s"
        " GROUP BY type",
        1,
    ),
    "raw_events by type, 7 days": (
        "SELECT type, count(*) FROM raw_events WHERE occurred_at >= %s AND occurred_at < %s"
        " GROUP BY type",
        7,
    ),
    "payment_minutes per store, 1 day": (
        "SELECT store_id, sum(amount_cents), sum(confirmed_cents) FROM payment_minutes"
        " WHERE minute >= %s AND minute < %s GROUP BY store_id",
        1,
    ),
    "payment_minutes per store, 7 days": (
        "SELECT store_id, sum(amount_cents), sum(confirmed_cents) FROM payment_minutes"
        " WHERE minute >= %s AND minute < %s GROUP BY store_id",
        7,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    events = event_batches(args.days, args.per_day, args.batch, end)
    minutes = minute_batches(args.days, args.batch, end)
    n_events = sum(len(b["occurred_at"]) for b in events)
    n_minutes = sum(len(b["minute"]) for b in minutes)
    schemas = {"plain": f"bench_plain_{uuid.uuid4().hex[:8]}"}
    schemas["partitioned"] = f"bench_part_{uuid.uuid4().hex[:8]}"
    print(
        f"{n_events:,} raw_events and {n_minutes:,} payment_minutes over {args.days} days,"
        f" batches of {args.batch:,}; load: {os.getloadavg()[0]:.2f} (1 min)"
    )
    results: dict[str, dict[str, float]] = {}
    with psycopg.connect(SERVER, autocommit=True) as admin:
        for schema in schemas.values():
            admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            for kind, schema in schemas.items():
                store = PostgresStore(with_schema(SERVER, schema))
                try:
                    if kind == "plain":
                        apply_migrations(store, [m for m in MIGRATIONS if m.version < 9])
                    else:
                        store.migrate()
                        partitions.ensure_partitions(store, since=end - timedelta(days=args.days))
                        store.migrate()  # re-reads the covered days
                    figures = {"write rows/s": write(store, events, minutes)}
                    store.query("ANALYZE raw_events")
                    store.query("ANALYZE payment_minutes")
                    for name, (sql, days) in QUERIES.items():
                        lo = end - timedelta(days=days + 3)
                        params = (lo, lo + timedelta(days=days))
                        figures[name] = timed(partial(store.query, sql, params))
                    results[kind] = figures
                finally:
                    store.close()
        finally:
            for schema in schemas.values():
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    plain, part = results["plain"], results["partitioned"]
    print(f"{'':36} {'plain':>12} {'partitioned':>12} {'ratio':>8}")
    w0, w1 = plain["write rows/s"], part["write rows/s"]
    print(f"{'write (rows/s, higher is better)':36} {w0:>12,.0f} {w1:>12,.0f} {w1 / w0:>7.2f}x")
    for name in QUERIES:
        q0, q1 = plain[name] * 1000, part[name] * 1000
        print(f"{name + ' (ms)':36} {q0:>12.2f} {q1:>12.2f} {q0 / q1:>7.2f}x faster")
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
