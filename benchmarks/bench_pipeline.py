"""Embedded pipeline end to end: decode + validate + dedupe + store + commit.

Fills a local bus with a generated week of payments, then runs the pipeline until the bus is
drained. Baseline, in the same run: decoding and validating the same bytes alone (the floor no
pipeline can beat in this process). Target: >= 100,000 events/s.

    python benchmarks/bench_pipeline.py [--days 7] [--stores 20] [--store-url URL] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.domain.events import Topic, decode_event
from pulso.errors import InvalidEventError
from pulso.pipeline.factory import build_runner
from pulso.sources.payments_generator import (
    PaymentsConfig,
    generate_payment_records,
    local_today,
    period_start_date,
)
from pulso.store import open_store


@contextlib.contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    """For PostgreSQL, a fresh schema dropped afterwards: rows left by an earlier run would
    turn this run into a measure of duplicates."""
    if not url.startswith(("postgresql://", "postgres://")):
        yield url
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in url else "?"
            yield f"{url}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument(
        "--store-url",
        default="",
        help="default: DuckDB in a temp dir; a postgresql:// URL gets a throwaway schema",
    )
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, throwaway_schema(args.store_url) as store_url:
        settings = load_settings(
            data_dir=Path(tmp), store_url=store_url, batch_size=args.batch_size
        )
        config = PaymentsConfig(
            start=period_start_date(args.days, today=local_today()),
            days=args.days,
            n_stores=args.stores,
            malformed_rate=0.005,
        )
        records = list(generate_payment_records(config))
        bus = open_bus(settings)
        for i in range(0, len(records), 50_000):
            bus.publish(Topic.PAYMENTS, records[i : i + 50_000])

        started = time.perf_counter()
        for _, value in records:
            with contextlib.suppress(InvalidEventError):
                decode_event(value)
        baseline_rate = len(records) / (time.perf_counter() - started)

        store = open_store(settings)
        runner = build_runner(settings, bus, store)
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        stats = runner.run(stop=lambda _: True)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        runner.close()
        store.close()
        bus.close()

    rate = stats.messages / seconds
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"events: {stats.messages:,} in {stats.batches} batches, {seconds:.2f} s "
        f"(store: {settings.store.kind})"
    )
    print(f"pipeline end to end : {rate:>10,.0f} events/s   (target >= 100,000)")
    print(f"baseline decode only: {baseline_rate:>10,.0f} events/s")
    print(f"ratio pipeline/decode-only: {rate / baseline_rate:.2f}")
    print(f"record PIX day (313 M payments) at this rate: {313e6 / rate / 3600:.2f} h")
    print(f"peak RSS: {peak_mib:,.0f} MiB")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
