"""A Spark 4 Python data source that reads Kafka through confluent-kafka: ``pulso_kafka``.

Spark's own ``format("kafka")`` needs the ``spark-sql-kafka`` connector jar on the
classpath; where it is missing (this machine cannot download it) this source reads the same
records with librdkafka, with the same columns as Spark's connector::

    key binary, value binary, topic string, partition int, offset long, timestamp timestamp

Offsets. A micro-batch is an exact range per partition: the offset JSON Spark keeps in the
checkpoint is ``{"topic": "payments", "partitions": {"0": 120, "1": 98, ...}}`` (next offset
to read per partition). ``latestOffset`` asks the brokers for each partition's high
watermark (capped by ``maxOffsetsPerTrigger``, spread over the partitions); ``partitions``
turns (start, end) into one input partition per Kafka partition with records; ``read``, on an
executor, assigns that partition at its start offset and reads up to its end, so a batch
replayed after a crash reads exactly the same records.

Data loss. If a partition's earliest available offset is above the offset the query
committed (retention deleted records not yet read, or the topic was recreated), the option
``failOnDataLoss`` decides, as in Spark's connector: ``true`` (the default) fails the query
with the partition and the missing range; ``false`` logs a warning and continues from the
earliest available offset. The same check runs on the executor when the first record read
is past the expected start (records deleted between planning and reading).

Options: ``kafka.bootstrap.servers`` (required), ``subscribe`` (one topic, required),
``startingOffsets`` (``earliest``, the default, or ``latest``), ``failOnDataLoss``,
``maxOffsetsPerTrigger``, ``kafkaTimeoutMs`` (metadata and reads, default 30000), and any
other ``kafka.*`` option passed to librdkafka.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

try:  # Spark 4.2+: admission control and Trigger.AvailableNow
    from pyspark.sql.streaming.datasource import (
        ReadAllAvailable,
        ReadLimit,
        ReadMaxRows,
        SupportsTriggerAvailableNow,
    )
except ImportError:  # pragma: no cover - Spark 4.0/4.1
    ReadLimit = object  # type: ignore[assignment,misc]
    ReadAllAvailable = ReadMaxRows = None  # type: ignore[assignment,misc]
    SupportsTriggerAvailableNow = object  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

NAME: Final = "pulso_kafka"
SCHEMA: Final = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
)
_ARROW_SCHEMA: Final = pa.schema(
    [
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    ]
)
_READ_CHUNK: Final = 10_000


class DataLossError(RuntimeError):
    """Records the query had not read are gone from Kafka (``failOnDataLoss=true``)."""


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    brokers: str
    topic: str
    starting: str = "earliest"
    fail_on_data_loss: bool = True
    max_offsets_per_trigger: int | None = None
    timeout_s: float = 30.0
    client: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> KafkaOptions:
        lowered = {k.lower(): v for k, v in options.items()}
        brokers = lowered.get("kafka.bootstrap.servers", "").strip()
        topic = lowered.get("subscribe", "").strip()
        if not brokers:
            raise ValueError("pulso_kafka needs the option kafka.bootstrap.servers")
        if not topic or "," in topic:
            raise ValueError("pulso_kafka needs the option subscribe with exactly one topic")
        starting = lowered.get("startingoffsets", "earliest").strip().lower()
        if starting not in ("earliest", "latest"):
            raise ValueError(f"startingOffsets must be earliest or latest, got {starting!r}")
        fail = lowered.get("failondataloss", "true").strip().lower()
        if fail not in ("true", "false"):
            raise ValueError(f"failOnDataLoss must be true or false, got {fail!r}")
        cap = lowered.get("maxoffsetspertrigger")
        max_offsets = int(cap) if cap else None
        if max_offsets is not None and max_offsets < 1:
            raise ValueError("maxOffsetsPerTrigger must be at least 1")
        timeout_s = int(lowered.get("kafkatimeoutms", "30000")) / 1000
        client = tuple(
            sorted(
                (k.removeprefix("kafka."), v)
                for k, v in lowered.items()
                if k.startswith("kafka.") and k != "kafka.bootstrap.servers"
            )
        )
        return cls(brokers, topic, starting, fail == "true", max_offsets, timeout_s, client)

    def consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "group.id": "pulso-spark-reader",  # never joins nor commits: offsets are Spark's
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": True,
            "log_level": 3,
        }
        config.update(dict(self.client))
        return config


def _consumer(options: KafkaOptions) -> Any:
    from confluent_kafka import Consumer

    return Consumer(options.consumer_config())


def watermarks(options: KafkaOptions) -> dict[int, tuple[int, int]]:
    """(earliest, next) offset of every partition of the topic."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(options)
    try:
        metadata = consumer.list_topics(options.topic, timeout=options.timeout_s)
        topic = metadata.topics.get(options.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            reason = topic.error.str() if topic is not None and topic.error else "no partitions"
            raise RuntimeError(
                f"Kafka topic {options.topic!r} at {options.brokers} cannot be read: {reason}"
            )
        return {
            p: consumer.get_watermark_offsets(
                TopicPartition(options.topic, p), timeout=options.timeout_s
            )
            for p in sorted(topic.partitions)
        }
    finally:
        consumer.close()


def offset_json(topic: str, positions: Mapping[int, int]) -> dict[str, Any]:
    return {"topic": topic, "partitions": {str(p): int(o) for p, o in sorted(positions.items())}}


def positions_of(offset: Mapping[str, Any]) -> dict[int, int]:
    return {int(p): int(o) for p, o in offset["partitions"].items()}


@dataclass(frozen=True, slots=True)
class KafkaRange(InputPartition):
    """One Kafka partition's records ``[start, end)``."""

    topic: str
    partition: int
    start: int
    end: int


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: KafkaOptions) -> None:
        self.options = options
        self._target: dict[int, int] | None = None  # Trigger.AvailableNow's end
        self._marks: dict[int, tuple[int, int]] | None = None  # from the last latestOffset

    def initialOffset(self) -> dict[str, Any]:
        marks = watermarks(self.options)
        index = 0 if self.options.starting == "earliest" else 1
        return offset_json(self.options.topic, {p: m[index] for p, m in marks.items()})

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = {p: high for p, (_, high) in watermarks(self.options).items()}

    def latestOffset(
        self, start: dict[str, Any] | None = None, limit: Any = None
    ) -> dict[str, Any]:
        self._marks = watermarks(self.options)
        if self._target is not None:
            latest = dict(self._target)
        else:
            latest = {p: high for p, (_, high) in self._marks.items()}
        cap = self.options.max_offsets_per_trigger
        if ReadMaxRows is not None and isinstance(limit, ReadMaxRows):
            cap = limit.max_rows
        if ReadAllAvailable is not None and isinstance(limit, ReadAllAvailable):
            cap = None
        if start is not None and cap is not None:
            latest = _capped(positions_of(start), latest, cap)
        return offset_json(self.options.topic, latest)

    def getDefaultReadLimit(self) -> Any:
        cap = self.options.max_offsets_per_trigger
        if cap is not None and ReadMaxRows is not None:
            return ReadMaxRows(cap)
        return ReadAllAvailable() if ReadAllAvailable is not None else None

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        begin, stop = positions_of(start), positions_of(end)
        # The brokers' offsets as latestOffset just read them (planning follows it), else now.
        marks, self._marks = self._marks or watermarks(self.options), None
        ranges: list[InputPartition] = []
        for partition, upto in sorted(stop.items()):
            first = begin.get(partition, 0)  # a partition added since: from its start
            earliest = marks.get(partition, (0, 0))[0]
            if first < earliest:
                first = data_loss(
                    self.options, partition, first, earliest, "deleted before it was read"
                )
            if upto < first:
                data_loss(self.options, partition, upto, first, "offsets went back")
                continue
            if upto > first:
                ranges.append(KafkaRange(self.options.topic, partition, first, upto))
        return ranges

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, KafkaRange)
        return read_range(self.options, partition)

    def commit(self, end: dict[str, Any]) -> None:
        """Offsets live in Spark's checkpoint; nothing is committed to Kafka."""


def _capped(start: dict[int, int], latest: dict[int, int], cap: int) -> dict[int, int]:
    """At most ``cap`` records past ``start``, shared out over the partitions with data."""
    backlog = {p: max(0, high - start.get(p, 0)) for p, high in latest.items()}
    total = sum(backlog.values())
    if total <= cap:
        return latest
    capped: dict[int, int] = {}
    left = cap
    for p in sorted(latest):
        share = min(backlog[p], left, -(-backlog[p] * cap // total))
        capped[p] = start.get(p, 0) + share
        left -= share
    return capped


def data_loss(options: KafkaOptions, partition: int, expected: int, found: int, why: str) -> int:
    message = (
        f"Kafka {options.topic}/{partition}: offsets {expected}..{found - 1} are not available "
        f"({why}); some records were never read"
    )
    if options.fail_on_data_loss:
        raise DataLossError(
            f"{message}. Set failOnDataLoss=false to continue from offset {found}, "
            "or start from a new checkpoint"
        )
    log.warning("%s; continuing from offset %d (failOnDataLoss=false)", message, found)
    return found


def read_range(options: KafkaOptions, part: KafkaRange) -> Iterator[pa.RecordBatch]:
    """The records ``[start, end)`` of one partition, as Arrow batches."""
    from confluent_kafka import KafkaError, TopicPartition

    consumer = _consumer(options)
    try:
        consumer.assign([TopicPartition(part.topic, part.partition, part.start)])
        expected = part.start
        columns: dict[str, list[Any]] = {name: [] for name in _ARROW_SCHEMA.names}
        idle_polls = 0
        while expected < part.end:
            messages = consumer.consume(min(_READ_CHUNK, part.end - expected), options.timeout_s)
            if not messages:
                idle_polls += 1
                if idle_polls > 1:
                    raise RuntimeError(
                        f"Kafka {part.topic}/{part.partition}: no records for "
                        f"{options.timeout_s:.0f} s while reading offsets "
                        f"{expected}..{part.end - 1}"
                    )
                continue
            idle_polls = 0
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if expected < part.end:
                            data_loss(options, part.partition, expected, part.end, "partition ends")
                            expected = part.end
                        break
                    if error.code() == KafkaError._AUTO_OFFSET_RESET:
                        low, _ = consumer.get_watermark_offsets(
                            TopicPartition(part.topic, part.partition), timeout=options.timeout_s
                        )
                        consumer.assign(
                            [
                                TopicPartition(
                                    part.topic,
                                    part.partition,
                                    data_loss(options, part.partition, expected, low, "deleted"),
                                )
                            ]
                        )
                        expected = low
                        break
                    raise RuntimeError(f"Kafka {part.topic}/{part.partition}: {error.str()}")
                offset = message.offset()
                if offset >= part.end:
                    expected = part.end
                    break
                if offset > expected:
                    data_loss(options, part.partition, expected, offset, "deleted while reading")
                expected = offset + 1
                columns["key"].append(message.key())
                columns["value"].append(message.value())
                columns["offset"].append(offset)
                columns["timestamp"].append(message.timestamp()[1] * 1000)
            if len(columns["offset"]) >= _READ_CHUNK:
                yield _batch(part, columns)
                columns = {name: [] for name in _ARROW_SCHEMA.names}
        if columns["offset"]:
            yield _batch(part, columns)
    finally:
        consumer.close()


def _batch(part: KafkaRange, columns: dict[str, list[Any]]) -> pa.RecordBatch:
    n = len(columns["offset"])
    return pa.RecordBatch.from_arrays(
        [
            pa.array(columns["key"], pa.binary()),
            pa.array(columns["value"], pa.binary()),
            pa.array([part.topic] * n, pa.string()),
            pa.array([part.partition] * n, pa.int32()),
            pa.array(columns["offset"], pa.int64()),
            pa.array(columns["timestamp"], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        ],
        schema=_ARROW_SCHEMA,
    )


class KafkaDataSource(DataSource):
    """``spark.readStream.format("pulso_kafka")`` once registered (see :func:`register`)."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KafkaStreamReader(KafkaOptions.parse(self.options))


def register(spark: Any) -> None:
    spark.dataSource.register(KafkaDataSource)


def offsets_json_text(topic: str, positions: Mapping[int, int]) -> str:
    return json.dumps(offset_json(topic, positions))
