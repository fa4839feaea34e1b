"""Sales CSV generator throughput (rows/s written to a file) beside two baselines.

1. The generator (``pulso.sources.sales_generator``, vectorised chunks) writes ``--rows``
   lines (default 5,000,000, the ETL's big file) with 1% bad lines to a file on disk.
2. Baseline, per-row writing: ``csv.writer.writerow`` writing the *same* rows, already
   parsed into Python lists (the first ``--baseline-rows`` of the file) — only the writing,
   none of the drawing: the floor of any row-at-a-time generator.
3. Baseline, the seed's way: Faker per row (name, product, price) plus ``csv.writer`` —
   measured on ``--seed-rows`` rows.

Rates are best of ``--repeats`` (default 1 for the generator's big run). Peak RSS is printed
after the generator's run, before the baselines load anything.

    python benchmarks/bench_sales_generator.py [--rows 5000000] [--baseline-rows 300000]
        [--seed-rows 20000]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

from pulso.sources.sales_generator import (
    HEADER,
    PAYMENT_METHODS,
    PRODUCTS,
    SalesConfig,
    write_sales_csv,
)

DAY = date(2026, 11, 20)


def timed(run: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    rows = run()
    return time.perf_counter() - started, rows


def generator(path: Path, rows: int) -> int:
    config = SalesConfig(day=DAY, rows=rows, n_stores=50, seed=42, bad_rate=0.01)
    with path.open("wb") as out:
        return write_sales_csv(config, out).rows


def per_row_writer(source: Path, target: Path, rows: int) -> Callable[[], int]:
    with source.open(newline="", encoding="utf-8") as f:
        parsed = list(islice(csv.reader(f), 1, rows + 1))

    def run() -> int:
        with target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(HEADER.strip().split(","))
            for row in parsed:
                writer.writerow(row)
        return len(parsed)

    return run


def seed_style(target: Path, rows: int) -> int:
    """Faker for every row, as the seed's csv_generator does."""
    from faker import Faker

    fake = Faker("pt_BR")
    fake.seed_instance(42)
    rng = random.Random(42)
    catalogue = [(n, c, Decimal(p)) for c, items in PRODUCTS.items() for n, p in items]
    start = datetime(2026, 11, 20, 8, tzinfo=datetime.now().astimezone().tzinfo)
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER.strip().split(","))
        for i in range(rows):
            name, category, price = rng.choice(catalogue)
            quantity = rng.randint(1, 5)
            writer.writerow(
                [
                    f"V{i:08d}",
                    (start + timedelta(seconds=rng.randrange(50_400))).isoformat(),
                    f"LJ-{rng.randint(1, 50):04d}",
                    fake.name(),
                    name,
                    category,
                    quantity,
                    f"{price:.2f}",
                    f"{price * quantity:.2f}",
                    rng.choice(PAYMENT_METHODS),
                    fake.city(),
                    fake.estado_sigla(),
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--baseline-rows", type=int, default=300_000)
    parser.add_argument("--seed-rows", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sales-") as folder:
        big = Path(folder) / "sales.csv"
        gen_s, gen_rows = timed(lambda: generator(big, args.rows))
        size_mb = big.stat().st_size / 1e6
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gen_rate = gen_rows / gen_s
        print(
            f"generator:            {gen_rate:>12,.0f} rows/s  ({gen_rows:,} rows, "
            f"{size_mb:,.0f} MB in {gen_s:.1f} s; peak RSS {peak_mb:,.0f} MB)"
        )
        run = per_row_writer(big, Path(folder) / "per_row.csv", args.baseline_rows)
        base_s, base_rows = timed(run)
        base_rate = base_rows / base_s
        print(f"baseline csv.writer:  {base_rate:>12,.0f} rows/s  ({base_rows:,} rows, same rows)")
        seed_s, seed_rows = timed(lambda: seed_style(Path(folder) / "seed.csv", args.seed_rows))
        seed_rate = seed_rows / seed_s
        print(f"baseline seed/Faker:  {seed_rate:>12,.0f} rows/s  ({seed_rows:,} rows)")
        print(
            f"ratio generator/csv.writer: {gen_rate / base_rate:.1f}x; "
            f"generator/seed: {gen_rate / seed_rate:.0f}x"
        )


if __name__ == "__main__":
    main()
