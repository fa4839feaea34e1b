"""``pulso orders produce`` of 50,000 orders to Kafka (librdkafka's mock cluster, real protocol
over TCP) beside a bare confluent-kafka produce loop of the same bytes, measured in one run.

1. produce path, in process (``publish_orders``): read the CSV, validate each line as an
   Order, build and encode its event, publish in 10,000-record batches with ``KafkaBus``
   (idempotent producer, acks=all, each batch flushed while the next is read) — what the
   command does, without Python's start-up.
2. the command itself: ``pulso orders produce --csv FILE`` as a subprocess against the same
   cluster (``PULSO_BUS_URL=kafka://...``): start-up, progress bar, everything. Wall and CPU.
3. baseline: a default ``confluent_kafka.Producer`` producing the same keys and values (already
   encoded) in one loop, flushed once.

Each on a new topic, median of ``--repeats``. Goal: <= 2 s for 50,000 orders.

    python benchmarks/bench_orders_produce.py [--rows 50000] [--repeats 3]
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
from datetime import date
from pathlib import Path

from confluent_kafka import Producer

from pulso.bus.kafka import KafkaBus
from pulso.bus.protocol import Record
from pulso.sources.orders_csv import ReadStats, publish_orders, read_order_records
from pulso.sources.orders_generator import OrdersConfig, write_orders_csv

GOAL_S = 2.0


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (2 cores, shared)"


def start_mock_cluster() -> tuple[Producer, str]:
    """The owner must stay alive: destroying it stops the cluster."""
    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "unused"})
    metadata = owner.list_topics(timeout=10)
    return owner, ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())


def produce_path_s(bus: KafkaBus, path: Path, topic: str) -> tuple[float, float, list[Record]]:
    """Wall and CPU seconds (this process, librdkafka's threads included) of the produce
    path, and the records it sent."""
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = ReadStats()
    published = publish_orders(bus, path, topic, stats)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if stats.bad or published != stats.good:
        raise RuntimeError(f"{stats.bad} bad lines in a generated file")
    # the same records again, for the baseline (not timed)
    sent = [r for batch in read_order_records(path, ReadStats()) for r in batch]
    return elapsed, cpu, sent


def raw_produce_s(brokers: str, topic: str, records: list[Record]) -> float:
    producer = Producer(
        {"bootstrap.servers": brokers, "queue.buffering.max.messages": len(records) + 1000}
    )
    producer.list_topics(topic, timeout=10)  # topic created before the clock starts
    started = time.perf_counter()
    for key, value in records:
        producer.produce(topic, value, key)
    if producer.flush(60) != 0:
        raise RuntimeError("the raw producer did not deliver everything")
    return time.perf_counter() - started


def command_s(path: Path, brokers: str, topic: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {"PULSO_BUS_URL": f"kafka://{brokers}", "PULSO_DATA_DIR": str(path.parent)}
    args = [sys.executable, "-m", "pulso", "orders", "produce", "--csv", str(path)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*args, "--topic", topic], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(load())
    owner, brokers = start_mock_cluster()
    bus = KafkaBus(brokers)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pedidos.csv"
        with path.open("wb") as out:
            write_orders_csv(OrdersConfig(start=date(2026, 8, 1), rows=args.rows), out)
        size_mb = path.stat().st_size / 1e6
        ours, ours_cpu, raw, command = [], [], [], []
        for run in range(args.repeats):
            seconds, cpu, records = produce_path_s(bus, path, f"orders-path-{run}")
            ours.append(seconds)
            ours_cpu.append(cpu)
            raw.append(raw_produce_s(brokers, f"orders-raw-{run}", records))
            command.append(command_s(path, brokers, f"orders-cli-{run}"))
    bus.close()
    owner.flush(5)
    value_bytes = sum(len(v) for _, v in records) / len(records)
    path_s, raw_s = statistics.median(ours), statistics.median(raw)
    cli_wall = statistics.median(w for w, _ in command)
    cli_cpu = statistics.median(c for _, c in command)
    print(f"\n{load()}")
    print(f"{args.rows:,} orders ({size_mb:.1f} MB of CSV, events of {value_bytes:.0f} bytes), "
          f"median of {args.repeats}, mock cluster of 3 brokers:")  # fmt: skip
    path_cpu = statistics.median(ours_cpu)
    print(f"  produce path (read+validate+encode+publish) {path_s:6.2f} s wall, {path_cpu:.2f} s "
          f"CPU  {args.rows / path_s:9,.0f} orders/s  goal <= {GOAL_S:.0f} s: wall "
          f"{'met' if path_s <= GOAL_S else 'NOT met'}, CPU "
          f"{'met' if path_cpu <= GOAL_S else 'NOT met'}")  # fmt: skip
    print(f"  pulso orders produce (subprocess)           {cli_wall:6.2f} s wall, {cli_cpu:.2f} s "
          f"CPU  {'met' if cli_wall <= GOAL_S else 'NOT met'} (wall)")  # fmt: skip
    print(f"  bare confluent-kafka loop, same bytes       {raw_s:6.2f} s  "
          f"{args.rows / raw_s:9,.0f} records/s")  # fmt: skip
    print(f"  ratio produce path / bare loop: {path_s / raw_s:.1f}x")


if __name__ == "__main__":
    main()
