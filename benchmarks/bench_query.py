"""``pulso query top-products`` over millions of orders, and the CLI's start-up, each beside a
baseline measured in the same run.

1. Query time: ``run_query(store, "top-products", limit=10)`` on DuckDB (the embedded store)
   over ``--orders`` orders (default 5,000,000, made by the orders generator and loaded in
   bulk), median of ``--repeats`` after one warm-up run. Goal: <= 0.5 s.
2. The seed's approach, same data: its query tool asked PostgreSQL through psycopg — here the
   same query on ``PostgresStore`` (the same SQL, bound parameters) over the same rows copied
   into a fresh schema — and a pandas ``groupby`` over the rows already in a DataFrame (the
   load is not counted).
3. CLI start-up: ``pulso query --help`` and a real ``pulso query top-products --limit 10`` on the
   DuckDB file (process start, settings, opening the store, the query, the table), beside
   ``python -c pass``. Goal: <= 1 s.

    python benchmarks/bench_query.py [--orders 5000000] [--repeats 5] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from pulso.analytics.order_queries import QUERIES, run_query
from pulso.sources.orders_generator import OrdersConfig, orders_table, store_rows
from pulso.store.protocol import Store
from pulso.store.tables import ORDERS

POSTGRES_URL = os.environ.get(
    "PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
QUERY_GOAL_S = 0.5
STARTUP_GOAL_S = 1.0


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (2 cores, shared)"


def median_s(run: Callable[[], object], repeats: int, *, warm: bool = True) -> float:
    if warm:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_rows(orders: int) -> pa.Table:
    lines = round(orders * 1.332)  # about one line in four is a status change
    config = OrdersConfig(start=date(2025, 1, 1), days=365, rows=lines, seed=1)
    started = time.perf_counter()
    rows = store_rows(orders_table(config))
    print(f"generated {rows.num_rows:,} orders ({lines:,} lines) in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    return rows


def load_store(store: Store, rows: pa.Table, label: str) -> None:
    store.migrate()
    started = time.perf_counter()
    with store.transaction() as tx:
        tx.append_arrow(ORDERS, rows)
    print(f"loaded {label} in {time.perf_counter() - started:.1f} s")


def query_times(store: Store, repeats: int) -> dict[str, float]:
    return {
        name: median_s(lambda name=name: run_query(store, name, limit=10), repeats)  # type: ignore[misc]
        for name in QUERIES
    }


def duckdb_figures(rows: pa.Table, folder: Path, repeats: int) -> tuple[dict[str, float], Path]:
    from pulso.store.duckdb import DuckDBStore

    path = folder / "pulso.duckdb"
    store = DuckDBStore(path)
    load_store(store, rows, "DuckDB")
    store.close()
    store = DuckDBStore(path)  # a fresh process's view: nothing cached in the connection
    try:
        return query_times(store, repeats), path
    finally:
        store.close()


def postgres_figures(rows: pa.Table, repeats: int) -> dict[str, float]:
    import psycopg

    from pulso.store.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            store = PostgresStore(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
            try:
                load_store(store, rows, "PostgreSQL")
                with store.transaction() as tx:
                    tx.execute("ANALYZE orders")
                return query_times(store, repeats)
            finally:
                store.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pandas_top_products(rows: pa.Table, repeats: int) -> float:
    frame = rows.select(["product", "category", "quantity", "total_cents", "status"]).to_pandas()

    def top() -> Any:
        paid = frame[frame["status"] == "Pago"]
        grouped = paid.groupby(["product", "category"]).agg(
            orders=("quantity", "size"),
            quantity=("quantity", "sum"),
            revenue=("total_cents", "sum"),
        )
        return grouped.sort_values(["quantity", "revenue"], ascending=False).head(10)

    return median_s(top, repeats)


def command_s(args: list[str], repeats: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of a command. On a machine shared
    with other work the wall time includes waiting for a core; the CPU time does not."""

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    subprocess.run(args, env=env, check=True, capture_output=True)  # warm the file cache
    walls, cpus = [], []
    for _ in range(repeats):
        cpu_before, started = cpu_s(), time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_s() - cpu_before)
    return statistics.median(walls), statistics.median(cpus)


def startup_figures(duckdb_file: Path, repeats: int) -> dict[str, tuple[float, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env["PULSO_STORE_URL"] = f"duckdb:///{duckdb_file.as_posix()}"
    env["PULSO_DATA_DIR"] = str(duckdb_file.parent)
    pulso = [sys.executable, "-m", "pulso"]
    return {
        "python -c pass": command_s([sys.executable, "-c", "pass"], repeats, env),
        "pulso query --help": command_s([*pulso, "query", "--help"], repeats, env),
        "pulso query top-products": command_s(
            [*pulso, "query", "top-products", "--limit", "10"], repeats, env
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(load())
    rows = make_rows(args.orders)
    with tempfile.TemporaryDirectory() as folder:
        duck, duckdb_file = duckdb_figures(rows, Path(folder), args.repeats)
        postgres = None if args.no_postgres else postgres_figures(rows, args.repeats)
        pandas_s = pandas_top_products(rows, args.repeats)
        startup = startup_figures(duckdb_file, args.repeats)
    top = duck["top-products"]
    print(f"\n{load()}")
    print(f"top-products over {args.orders:,} orders, median of {args.repeats}:")
    print(f"  DuckDB (pulso)            {top * 1000:8.1f} ms   goal <= {QUERY_GOAL_S * 1000:.0f} ms"
          f"  {'met' if top <= QUERY_GOAL_S else 'NOT met'}")  # fmt: skip
    if postgres is not None:
        pg = postgres["top-products"]
        print(f"  PostgreSQL (seed's way)   {pg * 1000:8.1f} ms   DuckDB is {pg / top:.1f}x faster")
    print(f"  pandas groupby (in RAM)   {pandas_s * 1000:8.1f} ms   DuckDB is "
          f"{pandas_s / top:.1f}x faster")  # fmt: skip
    print("every query (ms, DuckDB | PostgreSQL):")
    for name, seconds in duck.items():
        pg_text = f"{postgres[name] * 1000:8.1f}" if postgres is not None else "       -"
        print(f"  {name:<24} {seconds * 1000:8.1f} | {pg_text}")
    base_wall, base_cpu = startup["python -c pass"]
    print(f"CLI start-up, median of {args.repeats} (goal <= {STARTUP_GOAL_S:.0f} s):")
    print(f"  {'':<26} {'wall':>7} {'CPU':>7}   ratios to python -c pass (wall, CPU)")
    for label, (wall, cpu) in startup.items():
        verdict = "" if label == "python -c pass" else (
            f"wall {'met' if wall <= STARTUP_GOAL_S else 'NOT met'}, "
            f"CPU {'met' if cpu <= STARTUP_GOAL_S else 'NOT met'}"
        )  # fmt: skip
        ratios = f"{wall / base_wall:5.1f}x {cpu / base_cpu:5.1f}x"
        print(f"  {label:<26} {wall:6.2f}s {cpu:6.2f}s   {ratios}  {verdict}")


if __name__ == "__main__":
    main()
