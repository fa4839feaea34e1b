"""Cluster profile throughput: `pulso worker` processes on librdkafka's mock cluster into
PostgreSQL.

1. For 1 and then 2 workers (fresh mock cluster, consumer group and schema each), in two
   modes: ``facts`` (``--role facts``: payments and orders only) and ``all`` (``--role all``:
   the facts scaled out plus the windows and fraud in the ONE elected stream-state runner,
   the other worker its standby). The workers join an empty topic first; a generated day of
   PIX traffic is published at t0 and the rate is events / (t − t0), t when every event is
   stored (and, in ``all``, folded into the stream state): publish → Kafka → workers →
   PostgreSQL commit. The figures are the ratios 2 workers / 1 worker, and ``all`` /
   ``facts`` (what the windows and fraud cost).

The machine's cores bound the ratio: with 2 cores, the 2 workers, PostgreSQL and the mock
brokers share them.

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

import orjson
import psycopg
from confluent_kafka import Producer

from pulso.bus.kafka import KafkaBus
from pulso.config import load_settings
from pulso.domain.events import Topic, encode_event
from pulso.sources.payments_generator import PaymentsConfig, generate_payments
from pulso.store import open_store

PARTITIONS = 4
JOIN_S = 8.0
"""After the first record is processed: long enough for every member to join (mock cluster,
3 s session timeout), so a rebalance does not land inside the measured span."""
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


def state_folded(url: str, group: str) -> int:
    """Messages the stream-state runner of ``group`` has checkpointed."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT value FROM checkpoints WHERE name = %s", (f"offsets/{group}-state",)
        ).fetchone()
    return sum(orjson.loads(row[0]).values()) if row else 0


def done(url: str, group: str, role: str, events: int, messages: int) -> bool:
    """Every event stored and, in role ``all``, every message folded into the state too."""
    if stored(url) < events:
        return False
    return role != "all" or state_folded(url, group) >= messages


def start_workers(
    n: int, env: dict[str, str], group: str, role: str
) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "pulso", "worker", "--role", role, "--group", group]
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


def fold(
    n: int, env: dict[str, str], url: str, records: list[tuple[bytes, bytes]], role: str
) -> float:
    """Events/s of ``n`` workers of ``role``: they join an empty topic on a mock cluster of
    their own first (the group join and, in ``all``, the election are left out), then the
    records are published at t0; the rate is events / (last one processed − t0)."""
    owner, brokers = mock_cluster()
    bus = KafkaBus(brokers, partitions=PARTITIONS)
    group = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        bus.publish(Topic.PAYMENTS, records[:1])  # the topic exists before they join
        workers = start_workers(n, {**env, "PULSO_BUS_URL": f"kafka://{brokers}"}, group, role)
        try:
            deadline = time.monotonic() + 60
            while not done(url, group, role, 1, 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(JOIN_S)  # every member joined and assigned
            started = time.perf_counter()
            for i in range(1, len(records), 20_000):
                bus.publish(Topic.PAYMENTS, records[i : i + 20_000])
            total = len(records)
            deadline = time.monotonic() + 300
            while not done(url, group, role, total, total):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{n} worker(s) ({role}) did not process {total:,} in time")
                time.sleep(0.02)
            return (total - 1) / (time.perf_counter() - started)
        finally:
            stop(workers)
    finally:
        bus.close()
        owner.flush(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the four runs")
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
    rates: dict[tuple[str, int], list[float]] = {
        (role, n): [] for role in ("facts", "all") for n in (1, 2)
    }
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
        base_env.update(
            PULSO_DATA_DIR=tmp,
            PULSO_PII_KEY="0" * 64,
            PULSO_KAFKA_PARTITIONS=str(PARTITIONS),
            PULSO_KAFKA_SESSION_TIMEOUT_S="3",
            PULSO_BATCH_SIZE=str(args.batch_size),  # many batches per run
        )
        for role, n in list(rates) * args.rounds:
            with throwaway_schema(args.store_url) as url:
                open_store(load_settings(data_dir=Path(tmp), store_url=url)).close()
                env = {**base_env, "PULSO_STORE_URL": url}
                rates[role, n].append(fold(n, env, url, records, role))

    load = os.getloadavg()
    print(
        f"events: {len(records):,} ({args.days} day(s), {args.stores} stores), "
        f"{PARTITIONS} partitions; publish -> Kafka -> workers -> PostgreSQL commit"
    )
    best = {key: max(values) for key, values in rates.items()}  # the least disturbed round
    for (role, n), values in rates.items():
        label = f"{n} worker{'s' if n > 1 else ' '} {role:<5}"
        print(f"{label}: {best[role, n]:>9,.0f} events/s  (rounds: {_rates(values)})")
    for role in ("facts", "all"):
        print(
            f"ratio 2 workers / 1 worker ({role}): {best[role, 2] / best[role, 1]:.2f}  "
            f"(cores: {os.cpu_count()})"
        )
    for n in (1, 2):
        print(
            f"windows+fraud on / facts only, {n} worker(s): {best['all', n] / best['facts', n]:.2f}"
        )
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
