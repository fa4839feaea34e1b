"""The cluster bus (``kafka://``): Apache Kafka through confluent-kafka (librdkafka).

Publishing: every record of a batch is produced (Kafka's murmur2 partitioner, as the Java
client, so a key lands on the same partition whoever produced it), then the producer is
flushed. ``acks=all`` with the idempotent producer means that when ``publish`` returns each
record is on every in-sync replica, once, in order per partition; any failed delivery raises
``BusError``.

Consuming: offsets are never committed automatically. The caller commits the next offsets of
what it has processed, after its store commit (at-least-once). On a rebalance the revoked
partitions are simply handed over: nothing is committed on revoke, so the new owner starts at
the last offset this member committed and re-reads whatever was consumed but not committed;
idempotent writes make that re-read harmless. A commit refused because the group moved on
(rebalance) is logged and dropped for the same reason: the partition's new owner re-reads
those records. After any other ``BusError`` from a consumer, close it and open a new one;
it resumes from the group's committed offsets, so nothing is lost.

Topics missing at first use are created with ``partitions`` partitions when the cluster has a
controller to ask; otherwise (e.g. librdkafka's mock cluster) the brokers' automatic topic
creation is relied upon.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from confluent_kafka import Consumer as _RawConsumer
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as _RawMessage
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pulso.bus.protocol import Message, Record
from pulso.bus.protocol import TopicPartition as TopicPartitionKey
from pulso.errors import BusError, BusUnavailableError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
DELIVERY_TIMEOUT_S = 30.0
SESSION_TIMEOUT_S = 45.0
_QUEUE_FULL_WAIT_S = 0.01
_FLUSH_MARGIN_S = 5.0

# Measured on the mock cluster with ~400-byte values (benchmarks/bench_kafka_bus.py): lz4
# costs more CPU than it saves on loopback; a short linger is enough because publish flushes.
_PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "compression.type": "none",
    # Only failures call back into Python: one callback per record would cost ~1 µs each.
    "delivery.report.only.error": True,
}

_CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    # A real broker answers a fetch as soon as records arrive, so a short wait only adds a
    # few idle requests; librdkafka's mock cluster holds each fetch for the full wait, and
    # the default 500 ms would put half a second between publish and consume there.
    "fetch.wait.max.ms": 100,
}

# A commit refused with one of these means the group rebalanced under us.
_REBALANCED = frozenset(
    {KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.UNKNOWN_MEMBER_ID}
)


class _WithoutConnectFailures(logging.Filter):
    """Drops librdkafka's line per failed reconnect attempt (many a second while a broker is
    down); the error callback reports the same failure once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and record.args[:1] == ("FAIL",))


_librdkafka_log = logging.getLogger(f"{__name__}.librdkafka")
_librdkafka_log.addFilter(_WithoutConnectFailures())


class _ClientErrors:
    """A client's error callback: keeps the latest error and logs each new one once."""

    def __init__(self, where: str) -> None:
        self._where = where
        self.latest = ""

    def __call__(self, error: KafkaError) -> None:
        text = error.str()
        if error.fatal():
            log.error("Kafka client for %s failed for good: %s", self._where, text)
        elif text != self.latest:
            log.warning("Kafka client for %s: %s", self._where, text)
        self.latest = text


class KafkaBus:
    """A ``Bus`` over a Kafka cluster; fails fast with ``BusUnavailableError`` if unreachable."""

    def __init__(
        self,
        brokers: str,
        partitions: int = 4,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
        session_timeout_s: float = SESSION_TIMEOUT_S,
    ) -> None:
        self._brokers = brokers
        self._partitions = partitions
        self._connect_timeout_s = connect_timeout_s
        self._delivery_timeout_s = delivery_timeout_s
        self._session_timeout_s = session_timeout_s
        self._failures: list[str] = []
        self._errors = _ClientErrors(brokers)
        self._lock = threading.Lock()
        self._ready_topics: set[str] = set()
        self._producer = Producer(self._producer_config())
        self._check_reachable()

    def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Produce every record, then wait until each one is acknowledged by all replicas."""
        with self._lock:
            self._ensure_topics([topic])
            self._failures.clear()
            try:
                self._produce_all(topic, records)
            finally:
                # Settle what was queued even when a record was refused, so no late
                # failure of this batch is blamed on the next one.
                unsent = self._producer.flush(self._delivery_timeout_s + _FLUSH_MARGIN_S)
            self._raise_on_failures(topic, len(records), unsent)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        """Join ``group`` on ``topics``; reading starts at the group's committed offsets."""
        with self._lock:
            self._ensure_topics(topics)
        return KafkaConsumer(
            self._brokers, group, topics, session_timeout_s=self._session_timeout_s
        )

    def close(self) -> None:
        with self._lock:
            unsent = self._producer.flush(self._delivery_timeout_s)
        if unsent:
            log.warning("closing the Kafka producer with %d records not acknowledged", unsent)

    def _producer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._brokers,
            **_PRODUCER_SETTINGS,
            "message.timeout.ms": int(self._delivery_timeout_s * 1000),
            "on_delivery": self._on_delivery_failure,
            "error_cb": self._errors,
            "logger": _librdkafka_log,
        }

    def _check_reachable(self) -> None:
        try:
            self._producer.list_topics(timeout=self._connect_timeout_s)
        except KafkaException as e:
            self._producer.poll(0)  # serves error_cb, which holds the connection's own reason
            reason = self._errors.latest or _describe(e)
            raise BusUnavailableError(
                f"cannot reach Kafka at {self._brokers}: {reason} (waited "
                f"{self._connect_timeout_s:g} s); check PULSO_BUS_URL and that the brokers run"
            ) from e

    def _produce_all(self, topic: str, records: Sequence[Record]) -> None:
        produce = self._producer.produce
        for key, value in records:
            try:
                produce(topic, value, key)
            except BufferError:
                self._produce_when_room(topic, key, value)
            except KafkaException as e:
                raise BusError(
                    f"cannot publish a {len(value)}-byte record to {topic!r}: {_describe(e)}; "
                    "the records after it were not published; fix it, then publish the batch again"
                ) from e

    def _produce_when_room(self, topic: str, key: bytes | None, value: bytes) -> None:
        """The local queue is full: let acknowledgements drain it, never drop the record."""
        while True:
            self._producer.poll(_QUEUE_FULL_WAIT_S)
            try:
                self._producer.produce(topic, value, key)
                return
            except BufferError:
                continue

    def _raise_on_failures(self, topic: str, total: int, unsent: int) -> None:
        if self._failures:
            raise BusError(
                f"{len(self._failures)} of {total} records to {topic!r} were not delivered: "
                f"{self._failures[0]}; check the brokers at {self._brokers}, then publish "
                "the batch again"
            )
        if unsent:
            raise BusError(
                f"publishing to {topic!r}: {unsent} records not acknowledged within "
                f"{self._delivery_timeout_s:g} s; check the brokers, then publish the batch again"
            )

    def _on_delivery_failure(self, error: KafkaError | None, message: _RawMessage) -> None:
        if error is not None:
            self._failures.append(error.str())

    def _ensure_topics(self, topics: Sequence[str]) -> None:
        wanted = [t for t in topics if t not in self._ready_topics]
        if not wanted:
            return
        metadata = self._metadata()
        missing = [t for t in wanted if t not in metadata.topics or metadata.topics[t].error]
        if missing and metadata.controller_id in metadata.brokers:
            self._create_topics(missing)
        else:
            for topic in missing:
                self._auto_create(topic)
        self._ready_topics.update(wanted)

    def _metadata(self, topic: str | None = None) -> Any:
        try:
            return self._producer.list_topics(topic, timeout=self._connect_timeout_s)
        except KafkaException as e:
            raise BusUnavailableError(
                f"cannot read topic metadata from Kafka at {self._brokers}: {_describe(e)}; "
                "check PULSO_BUS_URL and that the brokers run"
            ) from e

    def _create_topics(self, topics: Sequence[str]) -> None:
        admin = AdminClient({"bootstrap.servers": self._brokers}, logger=_librdkafka_log)
        # replication_factor=-1: the brokers' default.replication.factor decides.
        new_topics = [NewTopic(t, num_partitions=self._partitions) for t in topics]
        futures = admin.create_topics(new_topics, request_timeout=self._connect_timeout_s)
        for topic, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(
                        f"cannot create topic {topic!r} with {self._partitions} partitions: "
                        f"{_describe(e)}; create it by hand or grant the CREATE permission"
                    ) from e

    def _auto_create(self, topic: str) -> None:
        """A producer's metadata request for one topic makes the brokers auto-create it."""
        error = self._metadata(topic).topics[topic].error
        # A topic being created has no leader yet; the clients wait for one.
        if error is not None and error.code() != KafkaError.LEADER_NOT_AVAILABLE:
            raise BusError(
                f"topic {topic!r} does not exist and Kafka did not create it: {error.str()}; "
                f"create it with {self._partitions} partitions or enable auto.create.topics"
            )


class KafkaConsumer:
    """One member of a consumer group; commits only what the caller says it processed."""

    def __init__(
        self,
        brokers: str,
        group: str,
        topics: Sequence[str],
        *,
        session_timeout_s: float = SESSION_TIMEOUT_S,
    ) -> None:
        self._group = group
        self._failure = ""
        self._closed = False
        self._consumer = _RawConsumer(
            {
                "bootstrap.servers": brokers,
                "group.id": group,
                **_CONSUMER_SETTINGS,
                # How long a silent member keeps its partitions; heartbeats 3 per session.
                "session.timeout.ms": int(session_timeout_s * 1000),
                "heartbeat.interval.ms": int(session_timeout_s * 1000 / 3),
                "error_cb": _ClientErrors(f"group {group!r}"),
                "logger": _librdkafka_log,
            }
        )
        self._consumer.subscribe(list(topics))

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout_s`` for the first."""
        self._check_usable()
        # consume(n, t) waits for all n records or the whole t; the protocol promises to wait
        # only for the first, so wait for one, then take whatever is already fetched.
        raw_batch = self._consumer.consume(1, timeout_s)
        if raw_batch and max_messages > 1:
            raw_batch += self._consumer.consume(max_messages - 1, 0)
        messages: list[Message] = []
        for raw in raw_batch:
            error = raw.error()
            if error is None:
                messages.append(_to_message(raw))
            elif error.code() != KafkaError._PARTITION_EOF:
                self._fail(f"consuming as group {self._group!r} failed: {error.str()}")
        return messages

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Commit exactly ``offsets`` (next offset to read per partition), synchronously."""
        self._check_usable()
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            committed = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as e:
            self._on_commit_refused(e.args[0], offsets)
            return
        refusals = [tp.error for tp in committed or [] if tp.error is not None]
        if refusals:
            self._on_commit_refused(refusals[0], offsets)

    def assignment(self) -> list[TopicPartitionKey]:
        """The partitions this member owns now (empty until the group has assigned them)."""
        self._check_usable()
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def close(self) -> None:
        """Leave the group without committing; its partitions go to the remaining members."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def _on_commit_refused(
        self, error: KafkaError, offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        if error.code() in _REBALANCED:
            log.warning(
                "group %r rebalanced before offsets %s could be committed (%s); the new owner "
                "of those partitions reads them again",
                self._group,
                dict(offsets),
                error.str(),
            )
            return
        # Positions are untouched, so the consumer can go on: the next commit covers these.
        raise BusError(
            f"committing offsets of group {self._group!r} failed: {error.str()}; the records "
            "since the last commit are read again after a restart"
        )

    def _check_usable(self) -> None:
        if self._closed:
            raise BusError(f"the consumer of group {self._group!r} is closed; open a new one")
        if self._failure:
            raise BusError(f"{self._failure}; close this consumer and open a new one")

    def _fail(self, reason: str) -> NoReturn:
        # Positions already moved past the batch: reading on could skip records and a later
        # commit would lose them, so this consumer stays failed until replaced.
        self._failure = reason
        raise BusError(f"{reason}; close this consumer and open a new one")


def _to_message(raw: _RawMessage) -> Message:
    topic, partition, offset = raw.topic(), raw.partition(), raw.offset()
    assert topic is not None and partition is not None and offset is not None
    # A null value (a tombstone from another producer) becomes b"" so it fails decoding
    # and reaches the dead-letter instead of vanishing.
    return Message(topic, partition, offset, raw.key(), raw.value() or b"")


def _describe(error: KafkaException) -> str:
    first = error.args[0] if error.args else error
    return first.str() if isinstance(first, KafkaError) else str(first)
