"""KafkaBus against librdkafka's mock cluster (the real Kafka protocol over TCP).

Every check reads or writes through an independent confluent-kafka client as well, so the bus
is judged by what Kafka holds, not by what it says about itself. Joining a consumer group on
the mock cluster takes about 3 s (its initial rebalance delay), so group tests are few.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from pulso.bus import open_bus
from pulso.bus.kafka import KafkaBus, KafkaConsumer
from pulso.bus.protocol import Bus, Message, next_offsets
from pulso.errors import BusError, BusUnavailableError

pytestmark = pytest.mark.kafka

MOCK_PARTITIONS = 4
POLL_ROUNDS = 100  # each round waits at most POLL_TIMEOUT_S: a bound, never a timing claim
POLL_TIMEOUT_S = 0.2
# The mock cluster holds every rebalance after a join or leave for (session timeout - 1 s).
SESSION_TIMEOUT_S = 3.0


def murmur2(data: bytes) -> int:
    """Kafka's Java ``Utils.murmur2``, as an unsigned 32-bit value."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & mask
        k = ((k ^ (k >> 24)) * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    for shift, byte in reversed(list(enumerate(tail))):
        h ^= byte << (8 * shift)
    if tail:
        h = (h * m) & mask
    h = ((h ^ (h >> 13)) * m) & mask
    return h ^ (h >> 15)


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.fixture
def topic() -> str:
    return f"payments-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bus(kafka_cluster: str) -> Iterator[KafkaBus]:
    kafka_bus = KafkaBus(kafka_cluster, session_timeout_s=SESSION_TIMEOUT_S)
    yield kafka_bus
    kafka_bus.close()


@pytest.fixture
def consumers(bus: KafkaBus) -> Iterator[Callable[[str, str], KafkaConsumer]]:
    """Opens bus consumers and closes whichever the test left open."""
    opened: list[KafkaConsumer] = []

    def open_consumer(group: str, topic: str) -> KafkaConsumer:
        opened.append(bus.consumer(group, [topic]))
        return opened[-1]

    yield open_consumer
    for consumer in opened:
        consumer.close()


def records(count: int, keys: int = 10, tag: str = "a") -> list[tuple[bytes | None, bytes]]:
    return [(f"key-{i % keys}".encode(), f"{tag}-{i:05d}".encode()) for i in range(count)]


def poll_until(consumer: KafkaConsumer, count: int) -> list[Message]:
    got: list[Message] = []
    for _ in range(POLL_ROUNDS):
        if len(got) >= count:
            break
        got += consumer.poll_batch(1000, POLL_TIMEOUT_S)
    assert len(got) == count, f"expected {count} messages, got {len(got)}"
    return got


def read_all_raw(brokers: str, topic: str, count: int) -> list[Any]:
    """Reads ``count`` messages with a plain confluent-kafka consumer on fixed partitions."""
    reader = Consumer({"bootstrap.servers": brokers, "group.id": "raw-reader"})
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(MOCK_PARTITIONS)])
    got: list[Any] = []
    try:
        for _ in range(POLL_ROUNDS):
            if len(got) >= count:
                break
            got += [m for m in reader.consume(1000, POLL_TIMEOUT_S) if m.error() is None]
        # Everything was acknowledged before reading, so the end offsets the fetches reported
        # (cached) are final: together they count every record the topic holds.
        marks = [
            reader.get_watermark_offsets(TopicPartition(topic, p), cached=True)
            for p in range(MOCK_PARTITIONS)
        ]
    finally:
        reader.close()
    assert len(got) == count, f"expected {count} messages, got {len(got)}"
    assert sum(high - low for low, high in marks) == count, "the topic holds nothing else"
    return got


def wait_for_assignment(
    members: list[KafkaConsumer], done: Callable[[list[list[tuple[str, int]]]], bool]
) -> None:
    for _ in range(POLL_ROUNDS):
        for member in members:
            assert member.poll_batch(1, POLL_TIMEOUT_S / 2) == []
        if done([member.assignment() for member in members]):
            return
    pytest.fail("the group never assigned every partition")


def poll_members_until(members: list[KafkaConsumer], count: int) -> list[list[Message]]:
    got: list[list[Message]] = [[] for _ in members]
    for _ in range(POLL_ROUNDS):
        if sum(map(len, got)) >= count:
            break
        for member, bucket in zip(members, got, strict=True):
            bucket += member.poll_batch(1000, POLL_TIMEOUT_S / 2)
    assert sum(map(len, got)) == count
    return got


def poll_members_until_seen(
    members: list[KafkaConsumer], wanted: set[bytes]
) -> list[list[Message]]:
    """Polls until every wanted value has been read; a rebalance may deliver some twice."""
    got: list[list[Message]] = [[] for _ in members]
    for _ in range(POLL_ROUNDS):
        if wanted <= {m.value for bucket in got for m in bucket}:
            return got
        for member, bucket in zip(members, got, strict=True):
            bucket += member.poll_batch(1000, POLL_TIMEOUT_S / 2)
    pytest.fail(f"{len(wanted - {m.value for b in got for m in b})} records never arrived")


def test_murmur2_reference_matches_kafka_java_vectors() -> None:
    # Expected values from Kafka's UtilsTest (signed Java ints).
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for data, java_hash in vectors.items():
        assert murmur2(data) == java_hash & 0xFFFFFFFF


def test_published_records_land_on_java_partitions_for_an_independent_reader(
    bus: KafkaBus, kafka_cluster: str, topic: str
) -> None:
    sent = records(300, keys=25)
    bus.publish(topic, sent[:150])
    bus.publish(topic, sent[150:])

    got = read_all_raw(kafka_cluster, topic, len(sent))

    assert sorted(m.value() for m in got) == sorted(value for _, value in sent)
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    values_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for m in sorted(got, key=lambda m: (m.partition(), m.offset())):
        partitions_by_key[m.key()].add(m.partition())
        values_by_key[m.key()].append(m.value())
    for key, partitions in partitions_by_key.items():
        assert partitions == {java_partition(key, MOCK_PARTITIONS)}
        assert values_by_key[key] == sorted(values_by_key[key]), "per-key order kept"
    assert len({p for ps in partitions_by_key.values() for p in ps}) == MOCK_PARTITIONS


@pytest.mark.timeout(40)
def test_bus_consumer_reads_what_a_plain_producer_wrote(
    bus: KafkaBus, kafka_cluster: str, topic: str, consumers: Callable[[str, str], KafkaConsumer]
) -> None:
    positions: dict[bytes, tuple[int, int]] = {}

    def remember(error: Any, message: Any) -> None:
        assert error is None
        positions[message.value()] = (message.partition(), message.offset())

    producer = Producer({"bootstrap.servers": kafka_cluster})
    sent = [*records(120), (None, b"no-key")]
    for key, value in sent:
        producer.produce(topic, value, key, on_delivery=remember)
    assert producer.flush(10) == 0

    reader = consumers("readers", topic)
    got: list[Message] = []
    while len(got) < len(sent):
        # Far more asked than exist and a long wait: only a poll that returns once records
        # are there (not when max_messages are) finishes within the test's timeout.
        got += reader.poll_batch(100_000, 60.0)

    assert {(m.key, m.value) for m in got} == set(sent)
    assert all(m.topic == topic for m in got)
    assert {m.value: (m.partition, m.offset) for m in got} == positions


def test_new_member_resumes_after_the_commit_and_gets_the_uncommitted_again(
    bus: KafkaBus, topic: str, consumers: Callable[[str, str], KafkaConsumer]
) -> None:
    sent = records(200, keys=40)
    bus.publish(topic, sent)
    first = consumers("resume", topic)
    read = poll_until(first, len(sent))
    processed, unprocessed = read[:120], read[120:]
    first.commit(next_offsets(processed))
    first.close()

    second = consumers("resume", topic)
    again = poll_until(second, len(unprocessed))

    assert second.poll_batch(1000, 1.0) == []
    assert sorted(m.value for m in again) == sorted(m.value for m in unprocessed)


def test_members_share_partitions_and_a_survivor_takes_over_without_loss(
    bus: KafkaBus, topic: str, consumers: Callable[[str, str], KafkaConsumer]
) -> None:
    leaver, survivor = consumers("shared", topic), consumers("shared", topic)
    wait_for_assignment([leaver, survivor], lambda owned: all(owned) and sum(map(len, owned)) == 4)
    bus.publish(topic, records(400, keys=50, tag="before"))

    by_member = poll_members_until([leaver, survivor], 400)

    owned = [{m.partition for m in msgs} for msgs in by_member]
    assert all(by_member), "each member got some of the messages"
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == set(range(MOCK_PARTITIONS))
    for member, msgs in zip((leaver, survivor), by_member, strict=True):
        member.commit(next_offsets(msgs))

    leaver.close()
    after = records(400, keys=50, tag="after")
    bus.publish(topic, after)
    [taken_over] = poll_members_until_seen([survivor], {value for _, value in after})

    # Records the survivor read just before the rebalance may come again (nothing committed
    # them); what must hold is no loss, and no re-read behind either member's commit.
    assert {m.value for m in taken_over} == {value for _, value in after}
    assert survivor.assignment() == [(topic, p) for p in range(MOCK_PARTITIONS)]


@pytest.mark.slow
def test_commit_refused_by_a_rebalance_is_dropped_and_the_records_come_back(
    kafka_cluster: str, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A longer session keeps the mock's rebalance open (session - 1 s) while the commit runs.
    bus = KafkaBus(kafka_cluster, session_timeout_s=6.0)
    sent = records(200, keys=40)
    bus.publish(topic, sent)
    first = bus.consumer("moving", [topic])
    read = poll_until(first, len(sent))
    second = bus.consumer("moving", [topic])
    assert second.poll_batch(1000, 0.5) == []  # its JoinGroup starts the rebalance

    first.commit(next_offsets(read))

    assert "rebalanced" in caplog.text
    again = poll_members_until_seen([first, second], {value for _, value in sent})
    assert all(again), "both members read the records again"
    first.close()
    second.close()
    bus.close()


def test_unreachable_brokers_raise_bus_unavailable_within_the_connect_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(BusUnavailableError) as caught:
        KafkaBus("127.0.0.1:1", connect_timeout_s=1.0)

    assert time.monotonic() - started < 10, "a bound on hanging, not a speed claim"
    message = str(caught.value)
    assert "cannot reach Kafka at 127.0.0.1:1" in message
    assert "Connection refused" in message
    assert "PULSO_BUS_URL" in message


def test_open_bus_builds_a_kafka_bus_from_the_bus_url(
    kafka_cluster: str, topic: str, settings_factory: Any
) -> None:
    bus: Bus = open_bus(settings_factory(bus_url=f"kafka://{kafka_cluster}", kafka_partitions=4))
    try:
        assert isinstance(bus, KafkaBus)
        bus.publish(topic, [(b"k", b"v")])
    finally:
        bus.close()
    assert [m.value() for m in read_all_raw(kafka_cluster, topic, 1)] == [b"v"]


def test_a_record_the_brokers_refuse_raises_bus_error_naming_the_topic(
    bus: KafkaBus, kafka_cluster: str, topic: str
) -> None:
    too_big = b"x" * 2_000_000  # over the brokers' default message.max.bytes
    with pytest.raises(BusError) as caught:
        bus.publish(topic, [(b"k1", b"fine"), (b"k2", too_big), (b"k3", b"never sent")])

    assert repr(topic) in str(caught.value)
    assert "too large" in str(caught.value)
    assert [m.value() for m in read_all_raw(kafka_cluster, topic, 1)] == [b"fine"]


def test_publish_to_a_vanished_cluster_raises_bus_error_after_the_delivery_timeout(
    topic: str,
) -> None:
    owner = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused"})
    brokers = ",".join(f"{b.host}:{b.port}" for b in owner.list_topics(timeout=10).brokers.values())
    bus = KafkaBus(brokers, delivery_timeout_s=1.0)
    bus.publish(topic, [(b"k", b"delivered")])
    del owner  # destroying the owner stops the mock cluster

    with pytest.raises(BusError) as caught:
        bus.publish(topic, records(5))

    assert f"5 of 5 records to {topic!r} were not delivered" in str(caught.value)
    assert "timed out" in str(caught.value)


def test_a_consumer_error_fails_the_consumer_until_it_is_replaced(kafka_cluster: str) -> None:
    # Built directly, so nothing creates the topic it subscribes to.
    consumer = KafkaConsumer(kafka_cluster, "lost", ["no-such-topic"])
    try:
        with pytest.raises(BusError, match="no-such-topic"):
            for _ in range(POLL_ROUNDS):
                consumer.poll_batch(10, POLL_TIMEOUT_S)
        with pytest.raises(BusError, match="close this consumer and open a new one"):
            consumer.poll_batch(10, POLL_TIMEOUT_S)
    finally:
        consumer.close()
    consumer.close()
    with pytest.raises(BusError, match="closed"):
        consumer.poll_batch(10, POLL_TIMEOUT_S)
