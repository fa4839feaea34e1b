"""KafkaBus throughput on librdkafka's mock cluster, each figure beside a plain confluent-kafka
baseline measured in the same run.

(a) publish: ``KafkaBus.publish`` in 20,000-record batches (acks=all, idempotent, flushed per
    batch) against a default ``confluent_kafka.Producer`` (queue large enough for the whole
    run) producing the same bytes in one loop, flushed once.
(b) consume + commit: a producer thread publishes while one group member polls and commits
    after every batch; ``KafkaConsumer`` against a plain ``confluent_kafka.Consumer`` doing the
    same. The producer never runs more than ``MAX_LAG`` records ahead of the reader, because the
    mock cluster keeps only ~5 MB per partition; every offset is checked, so a loss shows.

Usage: python benchmarks/bench_kafka_bus.py [--records 400000] [--value-bytes 400]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from pulso.bus.kafka import KafkaBus, KafkaConsumer
from pulso.bus.protocol import Record, next_offsets

BATCH_RECORDS = 20_000
MAX_LAG = 15_000  # + one 10,000-record batch in flight: ~3 MB per partition, under 5 MB
REPEATS = 3
POLL_TIMEOUT_S = 0.2
TARGET_PUBLISH_PER_S = 300_000
TARGET_CONSUME_PER_S = 100_000

Positions = list[tuple[int, int]]
"""(partition, offset) of each record a reader got."""


def make_records(count: int, value_bytes: int, seed: int = 7) -> list[Record]:
    """Payment-like JSON values padded to ``value_bytes``, keyed by one of 10,000 merchants."""
    rnd = random.Random(seed)
    out: list[Record] = []
    for i in range(count):
        merchant = f"m-{rnd.randrange(10_000):05d}"
        head = (
            f'{{"event_id":"{rnd.getrandbits(128):032x}","type":"payment.created",'
            f'"occurred_at":"2024-05-01T12:{i % 60:02d}:00Z","key":"{merchant}",'
            f'"data":{{"amount_cents":{rnd.randrange(1, 10**6)},"method":"pix"}},"pad":"'
        )
        value = (head + "x" * max(0, value_bytes - len(head) - 2) + '"}').encode()
        out.append((merchant.encode(), value))
    return out


def start_mock_cluster() -> tuple[Producer, str]:
    """The owner must stay alive: destroying it stops the cluster."""
    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "unused"})
    metadata = owner.list_topics(timeout=10)
    brokers = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    return owner, brokers


def raw_publish_rate(brokers: str, topic: str, records: Sequence[Record]) -> float:
    # Defaults, but a queue that holds the whole run: the producer never waits for room.
    queue_size = max(100_000, len(records))
    producer = Producer({"bootstrap.servers": brokers, "queue.buffering.max.messages": queue_size})
    producer.list_topics(topic, timeout=10)  # topic created before the clock starts
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(60) != 0:
        raise RuntimeError("the raw producer did not deliver everything")
    return len(records) / (time.perf_counter() - started)


def bus_publish_rate(bus: KafkaBus, topic: str, records: Sequence[Record]) -> float:
    bus.publish(topic, records[:1])  # topic created before the clock starts
    started = time.perf_counter()
    for start in range(0, len(records), BATCH_RECORDS):
        bus.publish(topic, records[start : start + BATCH_RECORDS])
    return len(records) / (time.perf_counter() - started)


def bench_publish(brokers: str, records: Sequence[Record]) -> tuple[float, float]:
    bus = KafkaBus(brokers)
    raw_rates, bus_rates = [], []
    for round_no in range(REPEATS):
        raw_rates.append(raw_publish_rate(brokers, f"raw-{round_no}", records))
        bus_rates.append(bus_publish_rate(bus, f"bus-{round_no}", records))
    bus.close()
    return statistics.median(raw_rates), statistics.median(bus_rates)


class Progress:
    """What the reader has consumed so far; the producer thread waits on it."""

    def __init__(self) -> None:
        self.consumed = 0
        self.error: BaseException | None = None


def produce_with_backpressure(
    bus: KafkaBus, topic: str, records: Sequence[Record], progress: Progress
) -> None:
    try:
        for start in range(0, len(records), BATCH_RECORDS // 2):
            while start - progress.consumed > MAX_LAG:
                time.sleep(0.001)
            bus.publish(topic, records[start : start + BATCH_RECORDS // 2])
    except BaseException as e:  # reported by the main thread
        progress.error = e


def check_contiguous(positions: Positions, expected: dict[int, int]) -> None:
    """Offsets per partition must follow on exactly: a gap means the mock dropped data."""
    for partition, offset in positions:
        if offset != expected.get(partition, 0):
            raise RuntimeError(
                f"partition {partition}: got offset {offset}, expected "
                f"{expected.get(partition, 0)}; lower MAX_LAG"
            )
        expected[partition] = offset + 1


def stream_rate(
    bus: KafkaBus,
    topic: str,
    records: Sequence[Record],
    read: Callable[[], Positions],
    wait_ready: Callable[[], None],
) -> float:
    wait_ready()
    progress = Progress()
    expected: dict[int, int] = {}
    producer = threading.Thread(
        target=produce_with_backpressure, args=(bus, topic, records, progress), daemon=True
    )
    started = time.perf_counter()
    producer.start()
    while progress.consumed < len(records):
        if progress.error is not None:
            raise RuntimeError("the producer thread failed") from progress.error
        positions = read()
        check_contiguous(positions, expected)
        progress.consumed += len(positions)
    elapsed = time.perf_counter() - started
    producer.join()
    return len(records) / elapsed


def bus_reader(consumer: KafkaConsumer) -> tuple[Callable[[], Positions], Callable[[], None]]:
    def read() -> Positions:
        messages = consumer.poll_batch(BATCH_RECORDS, POLL_TIMEOUT_S)
        consumer.commit(next_offsets(messages))
        return [(m.partition, m.offset) for m in messages]

    def wait_ready() -> None:
        while not consumer.assignment():
            assert consumer.poll_batch(1, POLL_TIMEOUT_S) == []

    return read, wait_ready


def raw_reader(consumer: Consumer) -> tuple[Callable[[], Positions], Callable[[], None]]:
    def read() -> Positions:
        positions: Positions = []
        last: dict[tuple[str, int], int] = {}
        # Same batching as KafkaConsumer: wait for the first record, then take what is fetched.
        first = consumer.consume(1, POLL_TIMEOUT_S)
        batch = first + consumer.consume(BATCH_RECORDS - 1, 0) if first else first
        for message in batch:
            if message.error() is not None:
                raise RuntimeError(f"raw consumer: {message.error()}")
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            positions.append((partition, offset))
            last[(topic, partition)] = offset + 1
        if last:
            commit_offsets = [TopicPartition(t, p, o) for (t, p), o in last.items()]
            consumer.commit(offsets=commit_offsets, asynchronous=False)
        return positions

    def wait_ready() -> None:
        while not consumer.assignment():
            assert consumer.consume(1, POLL_TIMEOUT_S) == []

    return read, wait_ready


def bench_stream(brokers: str, records: Sequence[Record]) -> tuple[float, float]:
    bus = KafkaBus(brokers)
    bus.publish("stream-raw", [])  # creates the topic, which the plain consumer does not
    raw_consumer = Consumer(raw_consumer_config(brokers, "raw-readers"))
    raw_consumer.subscribe(["stream-raw"])
    try:
        raw = stream_rate(bus, "stream-raw", records, *raw_reader(raw_consumer))
    finally:
        raw_consumer.close()
    consumer = bus.consumer("bus-readers", ["stream-bus"])
    try:
        ours = stream_rate(bus, "stream-bus", records, *bus_reader(consumer))
    finally:
        consumer.close()
        bus.close()
    return raw, ours


def raw_consumer_config(brokers: str, group: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # As KafkaConsumer sets it, so the ratio shows the cost of the wrapper alone.
        "fetch.wait.max.ms": 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--value-bytes", type=int, default=400)
    args = parser.parse_args()
    owner, brokers = start_mock_cluster()
    records = make_records(args.records, args.value_bytes)
    print(f"{args.records:,} records of {args.value_bytes} B, mock cluster of 3 brokers")

    raw_pub, bus_pub = bench_publish(brokers, records)
    report("publish (median of 3)", "raw Producer, one flush", raw_pub, "KafkaBus.publish", bus_pub)
    verdict(bus_pub, TARGET_PUBLISH_PER_S)

    raw_read, bus_read = bench_stream(brokers, records)
    report("consume + commit", "raw Consumer", raw_read, "KafkaConsumer", bus_read)
    verdict(bus_read, TARGET_CONSUME_PER_S)
    del owner


def report(title: str, base_name: str, base_rate: float, our_name: str, our_rate: float) -> None:
    print(f"\n{title}")
    print(f"  {base_name:28s} {base_rate:>12,.0f} records/s  (baseline)")
    print(f"  {our_name:28s} {our_rate:>12,.0f} records/s  ratio {our_rate / base_rate:.2f}")


def verdict(rate: float, target: float) -> None:
    mark = "meets" if rate >= target else "MISSES"
    print(f"  {mark} the target of {target:,.0f} records/s")


if __name__ == "__main__":
    main()
