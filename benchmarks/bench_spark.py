"""The Spark payments streaming job beside pulso's embedded pipeline, same data, same machine.

The same generated payments (stream generator, simulated clock) are published once to the
``payments`` topic of librdkafka's mock cluster (real Kafka protocol over TCP). Then, each
reading the whole topic from the start:

- **pulso**: the embedded pipeline (``build_runner``: payments fold, event-time windows —
  tumbling and sliding, per store, city and payment type — fraud off) from Kafka into a
  DuckDB store, batch after batch;
- **Spark**: ``pulso spark run stream-payments``'s job in local mode (``local[2]``): the
  Python Kafka data source, pulso's decoder, tumbling 1-minute windows with a watermark,
  upserted into a DuckDB store's ``stream_windows`` (archive off), in micro-batches of at
  most ``--batch`` records (``maxOffsetsPerTrigger``).

Prints events/s for both and the ratio, and the micro-batch latency (median, p95, max) of
each: Spark's ``triggerExecution`` per micro-batch, pulso's time per batch. The Spark session
start is reported apart. The machine is shared: the load average is printed beside.

    python benchmarks/bench_spark.py [--payments 8000] [--batch 5000]

The mock cluster keeps about 5 MB per partition (4 partitions): keep ``--payments`` under
~15,000 or the oldest records are gone before they are read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def events(payments: int, seed: int) -> list[Any]:
    from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream

    config = StreamConfig(rate=50.0, duration_s=None, payments=payments, n_stores=50, seed=seed)
    return list(generate_stream(config, SimulatedClock(datetime(2026, 11, 20, 12, tzinfo=UTC))))


def publish(brokers: str, generated: list[Any]) -> int:
    from confluent_kafka import Producer

    from pulso.domain.events import Topic, encode_event

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 10})
    size = 0
    for event in generated:
        value = encode_event(event)
        size += len(value)
        producer.produce(Topic.PAYMENTS, value, event.key.encode())
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("the mock cluster did not take every record")
    return size


def run_pulso(brokers: str, folder: Path, batch: int, total: int) -> tuple[float, list[float], int]:
    from pulso.bus import open_bus
    from pulso.config import load_settings
    from pulso.pipeline.factory import build_runner
    from pulso.store import open_store

    settings = load_settings(
        data_dir=folder,
        bus_url=f"kafka://{brokers}",
        batch_size=batch,
        window_enabled=True,
        fraud_enabled=False,
    )
    bus, store = open_bus(settings), open_store(settings)
    runner = build_runner(settings, bus, store, group="bench-spark")
    latencies: list[float] = []
    last = [time.perf_counter()]

    def on_batch(_: Any, __: Any) -> None:
        now = time.perf_counter()
        latencies.append(now - last[0])
        last[0] = now

    started = time.perf_counter()
    last[0] = started
    stats = runner.run(stop=lambda s: s.messages >= total, on_batch=on_batch)
    seconds = time.perf_counter() - started
    [(windows,)] = store.query("SELECT count(*) FROM stream_windows WHERE kind = 'tumbling_1m'")
    runner.close()
    store.close()
    bus.close()
    print(f"  pulso: {stats.messages:,} events, {int(windows):,} tumbling windows")
    return seconds, latencies, int(stats.messages)


def run_spark(brokers: str, folder: Path, batch: int) -> tuple[float, float, list[float], int]:
    from pulso.config import load_settings
    from pulso.spark.session import spark_session
    from pulso.spark.stream_payments import StreamJob, run_stream_payments

    started = time.perf_counter()
    spark = spark_session("local[2]", "pulso-bench", shuffle_partitions=2)
    startup = time.perf_counter() - started
    settings = load_settings(data_dir=folder)
    job = StreamJob(
        brokers=brokers,
        checkpoint=str(folder / "checkpoint"),
        windows_sink="store",
        max_offsets_per_trigger=batch,
        use_connector=False,
    )
    started = time.perf_counter()
    report = run_stream_payments(spark, job, settings, timeout_s=900)
    seconds = time.perf_counter() - started
    spark.stop()
    with_rows = [p for p in report.progress if p.get("numInputRows")]
    latencies = [p["durationMs"]["triggerExecution"] / 1000 for p in with_rows]
    rows = sum(int(p["numInputRows"]) for p in with_rows)
    print(
        f"  Spark: {rows:,} events in {len(with_rows)} micro-batches, "
        f"{report.windows_written:,} windows written"
    )
    if len(with_rows) > 1:  # where a micro-batch's time goes (Spark's durationMs, median)
        steps = sorted({k for p in with_rows[1:] for k in p["durationMs"]})
        parts = {
            k: statistics.median(p["durationMs"].get(k, 0) for p in with_rows[1:]) for k in steps
        }
        print(
            "  Spark micro-batch (median ms): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in parts.items())
        )
    return startup, seconds, latencies, rows


def describe(latencies: list[float]) -> str:
    if not latencies:
        return "-"
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms, "
        f"max {ordered[-1] * 1000:,.0f} ms ({len(ordered)} batches)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=8_000)
    parser.add_argument("--batch", type=int, default=2_000, help="records per (micro-)batch")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from confluent_kafka import Producer

    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "x", "log_level": 3})
    brokers = ",".join(f"{b.host}:{b.port}" for b in owner.list_topics(timeout=10).brokers.values())
    generated = events(args.payments, args.seed)
    size = publish(brokers, generated)
    print(
        f"{len(generated):,} events ({args.payments:,} payments, {size / 2**20:.1f} MiB) on the "
        f"mock cluster; batches of {args.batch:,}; load {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        pulso_s, pulso_lat, pulso_n = run_pulso(
            brokers, Path(tmp) / "pulso", args.batch, len(generated)
        )
        startup, spark_s, spark_lat, spark_n = run_spark(brokers, Path(tmp) / "spark", args.batch)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    pulso_rate, spark_rate = pulso_n / pulso_s, spark_n / spark_s
    print(f"pulso embedded pipeline (windows on): {pulso_rate:>9,.0f} events/s ({pulso_s:.1f} s)")
    print(
        f"Spark Structured Streaming local[2]  : {spark_rate:>9,.0f} events/s ({spark_s:.1f} s, "
        f"+{startup:.1f} s to start the session)"
    )
    print(f"ratio pulso/Spark (events/s): {pulso_rate / spark_rate:.1f}x")
    # Past the first batch (consumer-group join, Python workers starting): the steady rate.
    if len(pulso_lat) > 1 and len(spark_lat) > 1:
        steady_pulso = (pulso_n - pulso_n / len(pulso_lat)) / sum(pulso_lat[1:])
        steady_spark = (spark_n - spark_n / len(spark_lat)) / sum(spark_lat[1:])
        print(
            f"steady (batches 2..n): pulso {steady_pulso:,.0f} events/s, Spark "
            f"{steady_spark:,.0f} events/s, ratio {steady_pulso / steady_spark:.1f}x"
        )
    print(f"batch latency pulso: {describe(pulso_lat)}")
    print(f"micro-batch latency Spark: {describe(spark_lat)}")
    del owner


if __name__ == "__main__":
    main()
