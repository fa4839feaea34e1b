"""The archiver: a consumer group of its own that copies every event on the bus to Parquet.

One batch: poll, split the messages by (topic, bus partition, UTC hour of ``occurred_at``),
write one Parquet part per group (named by its first offset, see :mod:`.layout`), then commit
the bus offsets. The commit comes after every part of the batch is stored, and the next batch
is polled only after the commit, so at most one batch is ever written but not committed; a
restart replays it from the committed offsets, recomputes the same part names and overwrites
those parts. Exactly one copy of every message, no gaps, whatever the batch sizes.

Messages that are not an event envelope (bad JSON, missing fields) cannot fill the archive's
columns; they are counted as ``skipped`` (the pipeline keeps them in the dead-letter table).
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pulso.archive.layout import ARCHIVE_SCHEMA, ArchivePart, HourPartition, parse_part, part_key
from pulso.buckets.protocol import Bucket
from pulso.bus.protocol import Bus, Consumer, Message, next_offsets
from pulso.store.duckdb import to_arrow
from pulso.store.tables import RAW_EVENTS

log = logging.getLogger(__name__)

DEFAULT_GROUP: Final = "pulso-archive"
_COMPRESSION: Final = "zstd"
_MICROS_PER_HOUR: Final = 3_600_000_000


class _Envelope(msgspec.Struct, frozen=True):
    """The envelope fields the archive keeps; ``data`` stays inside the raw payload."""

    event_id: uuid.UUID
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    source: str
    key: str


_DECODER: Final = msgspec.json.Decoder(_Envelope)


@dataclass(slots=True)
class ArchiveBatch:
    """What one batch did."""

    messages: int = 0
    archived: int = 0
    skipped: int = 0
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ArchiveTotals:
    batches: int = 0
    messages: int = 0
    archived: int = 0
    skipped: int = 0
    parts: int = 0

    def add(self, batch: ArchiveBatch) -> None:
        self.batches += 1
        self.messages += batch.messages
        self.archived += batch.archived
        self.skipped += batch.skipped
        self.parts += len(batch.parts)


def archive_messages(
    bucket: Bucket, messages: list[Message], received_at: datetime
) -> ArchiveBatch:
    """Write ``messages`` as parts (one per topic, bus partition and hour); commit nothing."""
    result = ArchiveBatch(messages=len(messages))
    by_topic: dict[str, list[Message]] = {}
    for message in messages:
        by_topic.setdefault(message.topic, []).append(message)
    for topic, topic_messages in sorted(by_topic.items()):
        table, partitions, offsets, skipped = _decode(topic, topic_messages, received_at)
        result.skipped += skipped
        if table.num_rows == 0:
            continue
        hour_index = pc.divide(
            pc.cast(pc.cast(table.column("occurred_at"), pa.timestamp("us")), pa.int64()),
            _MICROS_PER_HOUR,
        )
        group = pc.add(pc.multiply(partitions, 1 << 32), hour_index)
        for key in sorted(pc.unique(group).to_pylist()):
            mask = pc.equal(group, key)
            rows = table.filter(mask)
            first_offset = pc.min(offsets.filter(mask)).as_py()
            partition, index = divmod(key, 1 << 32)
            at = datetime.fromtimestamp(index * 3600, UTC)
            name = part_key(HourPartition.of(topic, at), partition, first_offset)
            bucket.put_bytes(name, parquet_bytes(rows))
            result.archived += rows.num_rows
            result.parts.append(name)
    return result


def _decode(
    topic: str, messages: list[Message], received_at: datetime
) -> tuple[pa.Table, pa.Array, pa.Array, int]:
    """The messages that are events as an archive table, with their partitions and offsets."""
    columns: dict[str, list[Any]] = {name: [] for name in ARCHIVE_SCHEMA.names}
    partitions: list[int] = []
    offsets: list[int] = []
    skipped = 0
    decode = _DECODER.decode
    for message in messages:
        try:
            env = decode(message.value)
        except msgspec.DecodeError:
            skipped += 1
            continue
        columns["event_id"].append(env.event_id)
        columns["type"].append(env.type)
        columns["occurred_at"].append(env.occurred_at)
        columns["source"].append(env.source)
        columns["key"].append(env.key)
        columns["payload"].append(message.value)
        partitions.append(message.partition)
        offsets.append(message.offset)
    count = len(offsets)
    columns["topic"] = [topic] * count
    columns["received_at"] = [received_at] * count
    built = to_arrow(RAW_EVENTS, RAW_EVENTS.column_names, columns)
    table = pa.Table.from_arrays(built.columns, schema=ARCHIVE_SCHEMA)
    return table, pa.array(partitions, pa.int64()), pa.array(offsets, pa.int64()), skipped


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=_COMPRESSION)
    return sink.getvalue()


class Archiver:
    """Copies the bus to the archive, batch by batch (``step``) or until cancelled (``run``)."""

    def __init__(
        self,
        bus: Bus,
        bucket: Bucket,
        *,
        topics: tuple[str, ...],
        group: str = DEFAULT_GROUP,
        batch_size: int = 50_000,
        poll_timeout_s: float = 1.0,
        linger_s: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bucket = bucket
        self._consumer: Consumer = bus.consumer(group, list(topics))
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._linger_s = linger_s
        self._clock = clock
        self.totals = ArchiveTotals()

    def step(self) -> ArchiveBatch | None:
        """Archive one batch; None when the bus had nothing within the poll timeout."""
        messages = self._consumer.poll_batch(self._batch_size, self._poll_timeout_s)
        if not messages:
            return None
        batch = archive_messages(self.bucket, messages, self._clock())
        self._consumer.commit(next_offsets(messages))
        self.totals.add(batch)
        return batch

    def run(
        self,
        cancel: threading.Event,
        *,
        until_idle: bool = False,
        on_batch: Callable[[ArchiveBatch], None] | None = None,
    ) -> ArchiveTotals:
        """Archive until ``cancel`` is set (or, with ``until_idle``, the bus runs dry)."""
        while not cancel.is_set():
            batch = self.step()
            if batch is None:
                if until_idle:
                    break
                continue
            if on_batch is not None:
                on_batch(batch)
            if batch.messages < self._batch_size and not until_idle:
                # A trickle: let events gather so a part holds more than one poll's worth.
                cancel.wait(self._linger_s)
        return self.totals

    def close(self) -> None:
        self._consumer.close()


def list_parts(bucket: Bucket, prefix: str = "") -> list[ArchivePart]:
    """Every part under ``prefix``, in key order (other objects are ignored)."""
    parts = (parse_part(info) for info in bucket.list_objects(prefix))
    return [p for p in parts if p is not None]


def read_part(bucket: Bucket, key: str) -> pa.Table:
    with bucket.open_read(key) as stream:
        data = stream.read()
    return pq.read_table(pa.BufferReader(data))


def read_archive(bucket: Bucket, prefix: str = "") -> pa.Table:
    """Every archived event under ``prefix`` as one table (for checks and small exports)."""
    tables = [read_part(bucket, p.key) for p in list_parts(bucket, prefix)]
    if not tables:
        return ARCHIVE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def hours(parts: list[ArchivePart]) -> Iterator[tuple[HourPartition, list[ArchivePart]]]:
    """Parts grouped by hour folder, in order."""
    grouped: dict[HourPartition, list[ArchivePart]] = {}
    for part in parts:
        grouped.setdefault(part.hour, []).append(part)
    yield from sorted(grouped.items())
