"""Cluster profile throughput: `pulso worker` processes on librdkafka's mock cluster into
PostgreSQL.

1. Fills the payments topic with a generated day of PIX traffic, then lets 1 worker and then
   2 workers (fresh consumer group and schema each) fold it into PostgreSQL; the rate is
   measured from the first stored row to the last (process start and the group join are left
   out). The figure is the ratio 2 workers / 1 worker.
2. End to end: 2 workers already in their group, the records published at t0; the rate is
   events / (last row committed in PostgreSQL − t0).

Workers run the stateless processors (--facts-only): with several workers the windows and fraud
are off (see docs/deploy.md, "Scaling workers"). The machine's cores bound the ratio: with 2
cores, the 2 workers, PostgreSQL and the mock brokers share them.

    .venv/bin/python benchmarks/bench_cluster.py [--stores 20 --days 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
from confluent_kafka import Producer

from pulso.bus.kafka import KafkaBus
from pulso.config import load_settings
from pulso.domain.events import Topic, encode_event
from pulso.sources.payments_generator import PaymentsConfig, generate_payments
from pulso.store import open_store

PARTITIONS = 4
# The mock brokers drop the oldest records of a long partition: a day of 20 stores (~30,000
# events) is kept whole, 40 stores (~58,000 events in 8 partitions) already lost a quarter.


@contextlib.contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in url else "?"
            yield f"{url}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def mock_cluster() -> tuple[Producer, str]:
    """A mock cluster (alive as long as its owner) and its bootstrap servers."""
    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "x"})
    brokers = ",".join(f"{b.host}:{b.port}" for b in owner.list_topics(timeout=10).brokers.values())
    return owner, brokers


def stored(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM raw_events").fetchone()
    return int(row[0]) if row else 0


def start_workers(n: int, env: dict[str, str], group: str) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "pulso", "worker", "--facts-only", "--group", group]
    return [
        subprocess.Popen(
            [*command, "--name", f"bench-{i + 1}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(n)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(timeout=60)


def fold(n: int, env: dict[str, str], url: str, total: int) -> float:
    """Events/s of ``n`` workers over a full topic, first stored row to last."""
    workers = start_workers(n, env, f"bench-{uuid.uuid4().hex[:6]}")
    try:
        deadline = time.monotonic() + 300
        while (count := stored(url)) == 0:
            time.sleep(0.05)
        first_at, first_count = time.perf_counter(), count
        while count < total and time.monotonic() < deadline:
            time.sleep(0.05)
            count = stored(url)
        if count < total:
            raise SystemExit(f"{n} worker(s) stored {count:,} of {total:,} events in time")
        return (count - first_count) / (time.perf_counter() - first_at)
    finally:
        stop(workers)


def end_to_end(
    env: dict[str, str], url: str, bus: KafkaBus, topic_records: list[tuple[bytes, bytes]]
) -> float:
    """Events/s from the first publish to the last row committed, 2 workers waiting."""
    workers = start_workers(2, env, f"bench-e2e-{uuid.uuid4().hex[:6]}")
    try:
        time.sleep(8)  # both members joined and assigned (mock cluster: a few seconds)
        started = time.perf_counter()
        for i in range(0, len(topic_records), 20_000):
            bus.publish(Topic.PAYMENTS, topic_records[i : i + 20_000])
        deadline = time.monotonic() + 300
        while stored(url) < len(topic_records) and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(topic_records) / (time.perf_counter() - started)
    finally:
        stop(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="1- and 2-worker runs, alternated")
    parser.add_argument(
        "--store-url",
        default=os.environ.get(
            "PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()

    events = list(
        generate_payments(
            PaymentsConfig(start=date(2026, 11, 16), days=args.days, n_stores=args.stores)
        )
    )
    records = [(e.key.encode(), encode_event(e)) for e in events]
    owner, brokers = mock_cluster()
    bus = KafkaBus(brokers, partitions=PARTITIONS)
    for i in range(0, len(records), 20_000):
        bus.publish(Topic.PAYMENTS, records[i : i + 20_000])

    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
        base_env.update(
            PULSO_DATA_DIR=tmp,
            PULSO_BUS_URL=f"kafka://{brokers}",
            PULSO_PII_KEY="0" * 64,
            PULSO_KAFKA_PARTITIONS=str(PARTITIONS),
            PULSO_KAFKA_SESSION_TIMEOUT_S="3",
            # Many batches per run (the rate is first commit to last): 2,000 events each.
            PULSO_BATCH_SIZE=str(args.batch_size),
        )
        for n in [1, 2] * args.rounds:
            with throwaway_schema(args.store_url) as url:
                open_store(load_settings(data_dir=Path(tmp), store_url=url)).close()
                rates[n].append(fold(n, {**base_env, "PULSO_STORE_URL": url}, url, len(records)))
        # A cluster of its own: the end-to-end run starts from an empty topic.
        e2e_owner, e2e_brokers = mock_cluster()
        with throwaway_schema(args.store_url) as url:
            open_store(load_settings(data_dir=Path(tmp), store_url=url)).close()
            e2e_bus = KafkaBus(e2e_brokers, partitions=PARTITIONS)
            e2e_bus.publish(Topic.PAYMENTS, records[:1])  # the topic exists before they join
            env = {**base_env, "PULSO_STORE_URL": url, "PULSO_BUS_URL": f"kafka://{e2e_brokers}"}
            e2e = end_to_end(env, url, e2e_bus, records)
            e2e_bus.close()
        e2e_owner.flush(5)
    bus.close()
    owner.flush(5)

    load = os.getloadavg()
    print(
        f"events: {len(records):,} ({args.days} day(s), {args.stores} stores), "
        f"{PARTITIONS} partitions"
    )
    one, two = max(rates[1]), max(rates[2])  # best of the rounds: the least disturbed
    print(f"1 worker : {one:>9,.0f} events/s into PostgreSQL  (rounds: {_rates(rates[1])})")
    print(f"2 workers: {two:>9,.0f} events/s into PostgreSQL  (rounds: {_rates(rates[2])})")
    print(f"ratio 2 workers / 1 worker: {two / one:.2f}  (cores: {os.cpu_count()})")
    print(f"end to end (publish -> Kafka -> 2 workers -> PostgreSQL commit): {e2e:,.0f} events/s")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
