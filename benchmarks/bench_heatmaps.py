"""All 34 heatmap grids over 10 million generated payments: DuckDB beside pandas and PostgreSQL.

Generates ``--payments`` payments with numpy (seeded; business-hours curve, lognormal amounts,
3 % not confirmed, in time order as a live store receives them) for ``--stores`` stores in
``--cities`` cities over ``--days`` days, loads them into a DuckDB store (the real schema,
``INSERT ... SELECT`` from Arrow), then times, best of ``--repeats``, in the same run:

- ``all_heatmaps``: every grid from one shared pass in DuckDB (default 10th-percentile low-price
  threshold included);
- pandas ``groupby`` computing the same 34 grids from the same rows, loaded into a DataFrame once
  outside the timing (store and city as categoricals, the kindest layout for pandas), every grid
  honestly: local time, idle minutes, low prices — and checked against DuckDB cell by cell;
- the per-grid path (``heatmap()`` 34 times, one scan each), once;
- PostgreSQL (``--postgres-payments``, default 1,000,000 of the same kind, COPY'd into a fresh
  schema of ``--postgres-url``, dropped afterwards): ``all_heatmaps`` and the per-grid path
  with the server's JIT setting, then ``all_heatmaps`` again with ``jit=off`` for the session
  (PostgreSQL's JIT spends seconds compiling these queries).

The DuckDB line also gives the first call on the freshly opened store (cold caches), what a
one-off ``pulso report`` pays. The machine is shared: the load average is printed beside the
figures.

    python benchmarks/bench_heatmaps.py [--payments 10000000] [--postgres-payments 1000000]
        [--stores 200] [--cities 20] [--days 7] [--repeats 3] [--no-postgres] [--no-pandas]
        [--no-per-grid]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd  # noqa: TID251 - the baseline, in a benchmark only
import psycopg
import pyarrow as pa

from pulso.analytics.heatmap_defs import WEEKDAY_LABELS, Axis
from pulso.analytics.heatmaps import HEATMAPS, HeatmapGrid, all_heatmaps, heatmap
from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore

T = TypeVar("T")

FIRST_DAY = date(2026, 11, 16)  # a Monday
FIRST_MIDNIGHT_UTC = datetime(2026, 11, 16, 3, tzinfo=UTC)  # 00:00 in São Paulo (UTC-3)
LOCAL_ZONE = "America/Sao_Paulo"
HOUR_WEIGHTS = [0.2] * 7 + [1, 3, 5, 6, 8, 9, 8, 6, 6, 7, 8, 9, 7, 4, 2, 1] + [0.3]
HOUR_US = 3_600_000_000
CONFIRMED_SHARE = 0.97
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

_INSERT_SQL = """
INSERT INTO payments (charge_id, store_id, city, uf, amount_cents, paid_cents, status,
                      status_rank, created_at, confirmed_at, confirmation_seconds, updated_at)
SELECT 'ch-' || charge_no, store_id, city, 'SP', amount_cents, paid_cents, status,
       CASE status WHEN 'confirmed' THEN 3 ELSE 2 END, created_at,
       created_at + to_microseconds(CAST(confirmation_seconds * 1e6 AS BIGINT)),
       confirmation_seconds, created_at
FROM {source}"""
_CSV_SQL = """
COPY (
    SELECT 'ch-' || charge_no, store_id, city, 'SP', amount_cents, paid_cents, status,
           CASE status WHEN 'confirmed' THEN 3 ELSE 2 END, created_at,
           created_at + to_microseconds(CAST(confirmation_seconds * 1e6 AS BIGINT)),
           confirmation_seconds, created_at
    FROM staged
) TO '{path}' (FORMAT csv, HEADER false)"""
_PG_COPY = (
    "COPY payments (charge_id, store_id, city, uf, amount_cents, paid_cents, status, status_rank,"
    " created_at, confirmed_at, confirmation_seconds, updated_at) FROM STDIN (FORMAT csv)"
)


# --------------------------------------------------------------------------- data


def generate(payments: int, stores: int, cities: int, days: int, seed: int) -> pa.Table:
    """Payments as an Arrow table (vectorised: 10 million rows in a few seconds)."""
    rng = np.random.default_rng(seed)
    weights = np.array(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)
    day = rng.integers(0, days, payments)
    hour = rng.choice(24, payments, p=weights)
    created_us = np.sort(  # stored as they happen: in time order
        int(FIRST_MIDNIGHT_UTC.timestamp()) * 1_000_000
        + (day * 24 + hour) * HOUR_US
        + rng.integers(0, HOUR_US, payments)
    )
    store = rng.integers(0, stores, payments).astype(np.int32)
    store_city = rng.integers(0, cities, stores).astype(np.int32)
    cents = np.maximum(100, np.exp(rng.normal(8.5, 0.9, payments))).astype(np.int64)
    confirmed = rng.random(payments) < CONFIRMED_SHARE
    seconds = rng.uniform(0.5, 20.0, payments)
    store_names = pa.array([f"loja-{s:03d}" for s in range(stores)])
    city_names = pa.array([f"cidade-{c:02d}" for c in range(cities)])
    return pa.table(
        {
            "charge_no": np.arange(payments, dtype=np.int64),
            "store_id": pa.DictionaryArray.from_arrays(store, store_names),
            "city": pa.DictionaryArray.from_arrays(store_city[store], city_names),
            "amount_cents": cents,
            "paid_cents": pa.array(cents, mask=~confirmed),
            "status": pa.DictionaryArray.from_arrays(
                np.where(confirmed, 0, 1).astype(np.int8), pa.array(["confirmed", "failed"])
            ),
            "created_at": pa.array(created_us, pa.timestamp("us", tz="UTC")),
            "confirmation_seconds": pa.array(seconds, mask=~confirmed),
        }
    )


def load_duckdb(path: Path, payments: pa.Table) -> None:
    """Create the schema through the store, then bulk-insert with a plain DuckDB connection."""
    store = DuckDBStore(path)
    try:
        store.migrate()
    finally:
        store.close()
    connection = duckdb.connect(str(path))
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("staged", payments)
        connection.execute(_INSERT_SQL.format(source="staged"))
    finally:
        connection.close()


@contextmanager
def postgres_schema(url: str, payments: pa.Table, folder: Path) -> Iterator[str]:
    """A fresh schema holding ``payments`` (CSV COPY), dropped afterwards; yields its name."""
    schema = f"bench_heatmaps_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            store = PostgresStore(_in_schema(url, schema))
            try:
                store.migrate()
                csv = folder / "payments.csv"
                with duckdb.connect() as connection:
                    connection.execute("SET TimeZone = 'UTC'")
                    connection.register("staged", payments)
                    connection.execute(_CSV_SQL.format(path=csv))
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'SET search_path = "{schema}"')
                    with (
                        conn.cursor() as cursor,
                        cursor.copy(_PG_COPY) as copy,
                        csv.open("rb") as f,
                    ):
                        while chunk := f.read(1 << 20):
                            copy.write(chunk)
                    conn.execute("ANALYZE payments")
                csv.unlink()
            finally:
                store.close()
            yield schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _in_schema(url: str, schema: str, *options: str) -> str:
    sep = "&" if "?" in url else "?"
    settings = "%20".join([f"-csearch_path%3D{schema}", *options])
    return f"{url}{sep}options={settings}"


# --------------------------------------------------------------------------- pandas


_LABELS: dict[str, Callable[[Any], str]] = {
    "weekday": lambda k: WEEKDAY_LABELS[int(k) - 1],
    "hour": lambda k: str(int(k)),
    "date": lambda k: f"{pd.Timestamp(k):%d/%m}",
    "store": str,
    "city": str,
}
_PANDAS_KEYS: dict[Axis, str] = {
    "weekday": "wd",
    "hour": "h",
    "date": "d",
    "store": "store_id",
    "city": "city",
}
PandasGrids = dict[str, "pd.Series[Any]"]


def pandas_frame(payments: pa.Table) -> pd.DataFrame:
    """The rows as the DataFrame a pandas user would start from (not timed)."""
    return payments.to_pandas()  # dictionary columns arrive as categoricals


def pandas_grids(frame: pd.DataFrame, start: date, end: date) -> PandasGrids:
    """The 34 grids' cells as Series indexed by (row key, column key), blanks absent."""
    start_utc = pd.Timestamp(datetime.combine(start, datetime.min.time())).tz_localize(LOCAL_ZONE)
    end_utc = pd.Timestamp(
        datetime.combine(end + timedelta(days=1), datetime.min.time())
    ).tz_localize(LOCAL_ZONE)
    created = frame["created_at"]
    kept = frame[(frame["status"] == "confirmed") & (created >= start_utc) & (created < end_utc)]
    local = kept["created_at"].dt.tz_convert(LOCAL_ZONE).dt.tz_localize(None)
    paid = kept["paid_cents"]
    threshold = round(float(paid.quantile(0.10)), 4)  # percentile_cont, rounded like pulso
    p = pd.DataFrame(
        {
            "store_id": kept["store_id"],
            "city": kept["city"],
            "paid": paid,
            "cs": kept["confirmation_seconds"],
            "low": (paid < threshold).astype(np.int64),
            "wd": local.dt.day_of_week + 1,
            "h": local.dt.hour,
            "d": local.dt.normalize(),
            "minute": (local - pd.Timestamp(0)) // pd.Timedelta(minutes=1),
        }
    )
    grids: PandasGrids = {}
    pairs = {
        (spec.rows, spec.columns)
        for spec in HEATMAPS.values()
        if spec.statistic not in ("idle_per_hour", "idle_per_day")
    }
    parts = {
        pair: p.groupby([_PANDAS_KEYS[pair[0]], _PANDAS_KEYS[pair[1]]], observed=True).agg(
            n=("paid", "size"),
            s=("paid", "sum"),
            mn=("paid", "min"),
            mx=("paid", "max"),
            cs=("cs", "sum"),
            cn=("cs", "count"),
            low=("low", "sum"),
        )
        for pair in pairs
    }
    days = {
        axis: p.groupby(_PANDAS_KEYS[axis], observed=True)["d"].nunique()
        for axis in ("store", "city")
    }
    active = _active_minutes(p)
    for name, spec in HEATMAPS.items():
        if spec.statistic == "idle_per_hour":
            grids[name] = _idle_per_hour(active, days["store"])
            continue
        if spec.statistic == "idle_per_day":
            grids[name] = _idle_per_day(active)
            continue
        cells = parts[spec.rows, spec.columns]
        grids[name] = _pandas_statistic(spec.statistic, cells, days.get(spec.rows))
    return grids


def _pandas_statistic(
    statistic: str, cells: pd.DataFrame, days: pd.Series[Any] | None
) -> pd.Series[Any]:
    if statistic == "mean":
        return (cells["s"] / cells["n"]).round() / 100  # half even, like pulso's Decimal
    if statistic == "confirmation_mean":
        return (cells["cs"] / cells["cn"])[cells["cn"] > 0]
    if statistic == "payments_per_day":
        assert days is not None
        rows = cells.index.get_level_values(0)
        return cells["n"] / days.reindex(rows).to_numpy()
    column = {"count": "n", "sum": "s", "min": "mn", "max": "mx", "low_price_count": "low"}
    values = cells[column[statistic]]
    return values / 100 if statistic in ("sum", "min", "max") else values


def _active_minutes(p: pd.DataFrame) -> pd.DataFrame:
    """One row per store and minute with a payment (wall clock), with its date and hour."""
    minutes = p[["store_id", "minute", "d", "h"]].drop_duplicates(["store_id", "minute"])
    return minutes


def _idle_per_hour(active: pd.DataFrame, days: pd.Series[Any]) -> pd.Series[Any]:
    per_hour = active.groupby(["store_id", "h"], observed=True).size()
    full = pd.MultiIndex.from_product([days.index, range(24)], names=["store_id", "h"])
    per_hour = per_hour.reindex(full, fill_value=0)
    return 60 - per_hour / days.reindex(per_hour.index.get_level_values(0)).to_numpy()


def _idle_per_day(active: pd.DataFrame) -> pd.Series[Any]:
    spans = active.groupby(["store_id", "d"], observed=True)["minute"].agg(["min", "max", "size"])
    return (spans["max"] - spans["min"] + 1 - spans["size"]).astype(float)


def compare(grids: dict[str, HeatmapGrid], pandas: PandasGrids) -> list[str]:
    """Cells where pandas and pulso disagree (or one of them is blank), by grid."""
    problems: list[str] = []
    for name, grid in grids.items():
        spec = grid.spec
        row_label, column_label = _LABELS[spec.rows], _LABELS[spec.columns]
        theirs = {
            (row_label(r), column_label(c)): float(v)
            for (r, c), v in pandas[name].items()
            if not pd.isna(v)
        }
        ours = {
            (row, column): float(v)
            for row, values in zip(grid.rows, grid.values, strict=True)
            for column, v in zip(grid.columns, values, strict=True)
            if v is not None
        }
        bad = [
            k
            for k in ours.keys() | theirs.keys()
            if k not in ours
            or k not in theirs
            or not math.isclose(ours[k], theirs[k], rel_tol=1e-9, abs_tol=1e-9)
        ]
        if bad:
            problems.append(f"{name}: {len(bad)} cells differ, e.g. {sorted(bad)[:3]}")
    return problems


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True, slots=True)
class Timed:
    first_s: float
    best_s: float
    cpu_s: float
    """CPU time of this process (all its threads), least of the runs: steadier than wall
    time when other work shares the cores; meaningless for PostgreSQL (the server works)."""
    result: Any


def timed(action: Callable[[], T], repeats: int) -> Timed:
    """The first and the best of ``repeats`` wall times, in seconds, with the last result."""
    times: list[float] = []
    cpu: list[float] = []
    result = None
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = action()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return Timed(times[0], min(times), min(cpu), result)


def _per_grid(store: Any, start: date, end: date) -> dict[str, HeatmapGrid]:
    return {name: heatmap(store, name, start=start, end=end) for name in HEATMAPS}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--postgres-payments", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--cities", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--no-per-grid", action="store_true", help="skip the 34-scan path")
    args = parser.parse_args()
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    print(_load())
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        payments = generate(args.payments, args.stores, args.cities, args.days, args.seed)
        print(f"generated {args.payments:,} payments in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        load_duckdb(folder / "pulso.duckdb", payments)
        print(f"loaded them into DuckDB in {time.perf_counter() - started:.1f} s")
        store = DuckDBStore(folder / "pulso.duckdb")
        try:
            shared = timed(lambda: all_heatmaps(store, start=start, end=end), args.repeats)
            print(
                f"DuckDB all_heatmaps, {len(HEATMAPS)} grids:   {shared.best_s:8.2f} s"
                f"  ({args.payments / shared.best_s / 1e6:.1f} M payments/s;"
                f" first call on the freshly opened store {shared.first_s:.2f} s;"
                f" CPU {shared.cpu_s:.2f} s)"
            )
            if not args.no_per_grid:
                single = timed(lambda: _per_grid(store, start, end), 1)
                print(
                    f"DuckDB heatmap() x {len(HEATMAPS)} (one scan each): {single.best_s:8.2f} s"
                    f"  -> shared pass is {single.best_s / shared.best_s:.1f}x faster"
                )
        finally:
            store.close()
        if not args.no_pandas:
            _pandas(payments, shared, start, end, args.repeats)
        del payments
        if not args.no_postgres:
            _postgres(args, folder, start, end)
    print(_load())


def _pandas(payments: pa.Table, shared: Timed, start: date, end: date, repeats: int) -> None:
    started = time.perf_counter()
    frame = pandas_frame(payments)
    print(f"pandas DataFrame built in {time.perf_counter() - started:.1f} s (not timed)")
    result = timed(lambda: pandas_grids(frame, start, end), repeats)
    print(
        f"pandas groupby, {len(HEATMAPS)} grids:        {result.best_s:8.2f} s"
        f"  -> DuckDB is {result.best_s / shared.best_s:.1f}x faster"
        f" (CPU {result.cpu_s:.2f} s: {result.cpu_s / shared.cpu_s:.1f}x DuckDB's)"
    )
    problems = compare(shared.result, result.result)
    if problems:
        print("pandas and DuckDB DISAGREE:", *problems, sep="\n  ")
    else:
        print(f"pandas and DuckDB agree on every cell of the {len(HEATMAPS)} grids")


def _postgres(args: argparse.Namespace, folder: Path, start: date, end: date) -> None:
    count = args.postgres_payments
    payments = generate(count, args.stores, args.cities, args.days, args.seed)
    started = time.perf_counter()
    with postgres_schema(args.postgres_url, payments, folder) as schema:
        print(f"loaded {count:,} payments into PostgreSQL in {time.perf_counter() - started:.1f} s")
        # The server's default compiles big queries with JIT: seconds of LLVM work for a query
        # that runs in about as long. Both settings, on the same rows.
        for label, options in (("JIT as configured", ()), ("jit=off", ("-cjit%3Doff",))):
            store = PostgresStore(_in_schema(args.postgres_url, schema, *options))
            try:
                [(jit,)] = store.query("SHOW jit")
                label = f"{label}: jit {jit}"
                shared = timed(lambda s=store: all_heatmaps(s, start=start, end=end), args.repeats)
                print(
                    f"PostgreSQL ({label}) all_heatmaps: {shared.best_s:8.2f} s"
                    f"  ({count / shared.best_s / 1e6:.2f} M payments/s)"
                )
                if not args.no_per_grid and not options:
                    single = timed(lambda s=store: _per_grid(s, start, end), 1)
                    print(
                        f"PostgreSQL ({label}) heatmap() x {len(HEATMAPS)}: {single.best_s:8.2f} s"
                        f"  -> shared pass is {single.best_s / shared.best_s:.1f}x faster"
                    )
            finally:
                store.close()


if __name__ == "__main__":
    main()
