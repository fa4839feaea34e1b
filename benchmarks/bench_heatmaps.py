"""All 34 heatmap grids over a generated week of payments, on DuckDB.

Inserts ``--payments`` confirmed payments (seeded; business-hours curve, lognormal amounts)
spread over ``--stores`` stores in ``--cities`` cities for one week, then computes every grid
for the week. Baselines in the same run, on the same file: ``SELECT count(*) FROM payments``
and one full-scan aggregate (``GROUP BY store_id`` summing the amounts); printed as ratios.

    python benchmarks/bench_heatmaps.py [--payments 1000000] [--stores 200] [--cities 20]
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pulso.analytics.heatmaps import HEATMAPS, heatmap
from pulso.store.duckdb import DuckDBStore
from pulso.store.tables import PAYMENTS, ColumnBatch

WEEK_START = date(2026, 11, 16)  # a Monday
WEEK_START_UTC_US = int(datetime(2026, 11, 16, 3, tzinfo=UTC).timestamp()) * 1_000_000
HOUR_WEIGHTS = [0.2] * 7 + [1, 3, 5, 6, 8, 9, 8, 6, 6, 7, 8, 9, 7, 4, 2, 1] + [0.3]
BATCH_ROWS = 100_000
MINUTE_US = 60_000_000


def _batches(payments: int, stores: int, cities: int, seed: int) -> Iterator[ColumnBatch]:
    rng = random.Random(seed)
    store_city = [rng.randrange(cities) for _ in range(stores)]
    for first in range(0, payments, BATCH_ROWS):
        yield _batch(rng, first, min(BATCH_ROWS, payments - first), store_city)


def _batch(rng: random.Random, first: int, size: int, store_city: list[int]) -> ColumnBatch:
    days = [rng.randrange(7) for _ in range(size)]
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=size)
    created_us = [
        WEEK_START_UTC_US + (d * 24 + h) * 60 * MINUTE_US + rng.randrange(60 * MINUTE_US)
        for d, h in zip(days, hours, strict=True)
    ]
    store_ids = [rng.randrange(len(store_city)) for _ in range(size)]
    cents = [max(100, int(math.exp(rng.gauss(8.5, 0.9)))) for _ in range(size)]
    seconds = [rng.uniform(0.5, 20.0) for _ in range(size)]
    batch: ColumnBatch = {name: [None] * size for name in PAYMENTS.column_names}
    batch.update(
        charge_id=[f"ch-{first + i}" for i in range(size)],
        store_id=[f"loja-{s:03d}" for s in store_ids],
        city=[f"cidade-{store_city[s]:02d}" for s in store_ids],
        uf=["SP"] * size,
        amount_cents=cents,
        paid_cents=cents,
        status=["confirmed"] * size,
        status_rank=[3] * size,
        created_at=created_us,
        confirmed_at=[c + int(s * 1_000_000) for c, s in zip(created_us, seconds, strict=True)],
        confirmation_seconds=seconds,
        updated_at=created_us,
    )
    return batch


def _timed(action: Callable[[], Any], repeats: int = 3) -> float:
    """Best of ``repeats`` wall times, in seconds."""
    best_s = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best_s = min(best_s, time.perf_counter() - started)
    return best_s


def _all_grids(store: DuckDBStore) -> None:
    end = WEEK_START + timedelta(days=6)
    for name in HEATMAPS:
        heatmap(store, name, start=WEEK_START, end=end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--cities", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = DuckDBStore(Path(folder) / "pulso.duckdb")
        try:
            _run(store, args)
        finally:
            store.close()


def _run(store: DuckDBStore, args: argparse.Namespace) -> None:
    store.migrate()
    started = time.perf_counter()
    for batch in _batches(args.payments, args.stores, args.cities, args.seed):
        with store.transaction() as tx:
            tx.insert_new(PAYMENTS, batch)
    print(f"loaded {args.payments:,} payments in {time.perf_counter() - started:.1f} s")
    count_s = _timed(lambda: store.query("SELECT count(*) FROM payments"))
    scan_s = _timed(
        lambda: store.query("SELECT store_id, sum(paid_cents) FROM payments GROUP BY 1")
    )
    grids_s = _timed(lambda: _all_grids(store), repeats=2)
    print(f"baseline count(*):             {count_s * 1000:8.1f} ms")
    print(f"baseline one GROUP BY scan:    {scan_s * 1000:8.1f} ms")
    print(f"all {len(HEATMAPS)} heatmap grids:          {grids_s * 1000:8.1f} ms")
    print(f"ratio grids / count(*):        {grids_s / count_s:8.1f}x")
    print(f"ratio grids / GROUP BY scan:   {grids_s / scan_s:8.1f}x")
    print(f"per grid / GROUP BY scan:      {grids_s / len(HEATMAPS) / scan_s:8.1f}x")


if __name__ == "__main__":
    main()
