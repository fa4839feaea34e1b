"""The whole payment report (34 PNG + HTML + PDF + reading) over 10 million payments.

Goal (issue 4): <= 30 s on DuckDB. Baseline in the same run, on the same data: pandas
computing only the 34 grids (no pictures, no PDF), from a DataFrame already in memory. Each
step of the report is timed through the report's progress callback.

    python benchmarks/bench_report.py [--payments 10000000] [--stores 200] [--no-pandas]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench_heatmaps import FIRST_DAY, generate, load_duckdb, pandas_frame, pandas_grids

from pulso.config import load_settings
from pulso.reports.payments_report import build_payments_report
from pulso.store.duckdb import DuckDBStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--cities", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--no-pandas", action="store_true")
    args = parser.parse_args()
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        payments = generate(args.payments, args.stores, args.cities, args.days, seed=7)
        load_duckdb(folder / "pulso.duckdb", payments)
        print(f"{args.payments:,} payments, {args.stores} stores, {args.days} days in DuckDB")
        settings = load_settings(data_dir=folder)
        store = DuckDBStore(folder / "pulso.duckdb")
        steps: list[tuple[str, float]] = []
        try:
            started = time.perf_counter()
            report = build_payments_report(
                store, settings, start=start, end=end, folder=folder / "relatorio",
                step=lambda step: steps.append((step, time.perf_counter())),
            )  # fmt: skip
            total_s = time.perf_counter() - started
        finally:
            store.close()
        marks = [*steps, ("end", started + total_s)]
        for (step, at), (_, after) in itertools.pairwise(marks):
            print(f"  {step:<16} {after - at:6.2f} s")
        size_mb = sum(p.stat().st_size for p in report.files) / 1e6
        print(
            f"whole report: {total_s:.1f} s (goal <= 30 s) -> {len(report.files)} files, "
            f"{size_mb:.1f} MB"
        )
        if not args.no_pandas:
            frame = pandas_frame(payments)
            started = time.perf_counter()
            pandas_grids(frame, start, end)
            pandas_s = time.perf_counter() - started
            print(
                f"baseline, pandas groupby of the 34 grids alone: {pandas_s:.1f} s "
                f"-> the whole report takes {total_s / pandas_s:.2f}x that"
            )


if __name__ == "__main__":
    main()
