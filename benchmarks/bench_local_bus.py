"""Throughput of the embedded bus (``local://``) beside raw file I/O of the same bytes.

    python benchmarks/bench_local_bus.py [--records 1000000] [--batch 10000] [--repeats 3]

Publishes ``--records`` records of about 400 bytes (12-byte key + 388-byte value) in batches
of ``--batch`` to a fresh bus, then consumes them as a new group, committing after every
batch as the pipeline does (``next_offsets`` included). The baselines, measured in the same
run, write the same key + value bytes with one buffered ``f.write`` per batch and read them
back with ``f.read``, cutting out one ``bytes`` per record (the least any Python consumer
does). Each figure is the median of ``--repeats`` runs. Targets: publish
>= 500,000 records/s and consume + commit >= 300,000 records/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pulso.bus.local import LocalBus
from pulso.bus.protocol import Record, next_offsets

KEY_BYTES = 12
VALUE_BYTES = 388
PUBLISH_TARGET_PER_S = 500_000
CONSUME_TARGET_PER_S = 300_000


def make_batches(records: int, batch: int) -> list[list[Record]]:
    value = os.urandom(VALUE_BYTES)
    return [
        [
            (f"merch-{i % 5000:06d}".encode(), value)
            for i in range(start, min(start + batch, records))
        ]
        for start in range(0, records, batch)
    ]


def raw_write(path: Path, batches: list[list[Record]]) -> float:
    start = time.perf_counter()
    with open(path, "wb") as f:
        for records in batches:
            f.write(b"".join((key or b"") + value for key, value in records))
            f.flush()
    return time.perf_counter() - start


def raw_read(path: Path, batch: int) -> float:
    record_bytes = VALUE_BYTES + KEY_BYTES
    start = time.perf_counter()
    with open(path, "rb") as f:
        while chunk := f.read(batch * record_bytes):
            records = [chunk[i : i + record_bytes] for i in range(0, len(chunk), record_bytes)]
            del records
    return time.perf_counter() - start


def bus_publish(bus: LocalBus, batches: list[list[Record]]) -> float:
    start = time.perf_counter()
    for records in batches:
        bus.publish("payments", records)
    return time.perf_counter() - start


def bus_consume(bus: LocalBus, total: int, batch: int) -> float:
    consumer = bus.consumer("bench", ["payments"])
    start = time.perf_counter()
    seen = 0
    while seen < total:
        messages = consumer.poll_batch(batch, 1.0)
        if not messages:
            raise RuntimeError(f"only {seen} of {total} records came back")
        consumer.commit(next_offsets(messages))
        seen += len(messages)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def one_run(folder: Path, batches: list[list[Record]], batch: int) -> dict[str, float]:
    total = sum(map(len, batches))
    raw = folder / "raw.bin"
    times = {"raw write": raw_write(raw, batches), "raw read": raw_read(raw, batch)}
    with LocalBus(folder / "bus", partitions=4, fsync=False) as bus:
        times["publish"] = bus_publish(bus, batches)
        times["consume+commit"] = bus_consume(bus, total, batch)
    return {name: total / seconds for name, seconds in times.items()}


def median_rates(run: Callable[[Path], dict[str, float]], repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="pulso-bench-") as folder:
            runs.append(run(Path(folder)))
    return {name: statistics.median(r[name] for r in runs) for name in runs[0]}


def fsync_publish_rate(batches: list[list[Record]]) -> float:
    with (
        tempfile.TemporaryDirectory(prefix="pulso-bench-") as folder,
        LocalBus(Path(folder), partitions=4, fsync=True) as bus,
    ):
        return sum(map(len, batches)) / bus_publish(bus, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    batches = make_batches(args.records, args.batch)
    rates = median_rates(lambda folder: one_run(folder, batches, args.batch), args.repeats)
    fsync_rate = fsync_publish_rate(batches[:20])
    print(f"{args.records:,} records of ~400 bytes, batches of {args.batch:,}, 4 partitions")
    print(f"median of {args.repeats} runs, records/s:")
    report("publish", rates["publish"], "raw write", rates["raw write"], PUBLISH_TARGET_PER_S)
    report(
        "consume+commit",
        rates["consume+commit"],
        "raw read",
        rates["raw read"],
        CONSUME_TARGET_PER_S,
    )
    print(f"  publish with fsync=True (first 20 batches): {fsync_rate:>12,.0f}")


def report(name: str, rate: float, baseline: str, baseline_rate: float, target: float) -> None:
    verdict = "meets" if rate >= target else "MISSES"
    print(
        f"  {name:<15}{rate:>12,.0f}   {baseline}: {baseline_rate:>12,.0f}   "
        f"ratio {rate / baseline_rate:.3f}   {verdict} target {target:,.0f}"
    )


if __name__ == "__main__":
    main()
