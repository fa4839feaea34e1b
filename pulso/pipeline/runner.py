"""The pipeline runner: poll a micro-batch, decode and validate, route by event type to the
processors, write everything in one store transaction, then commit the bus offsets.

Decoding the next batch overlaps with writing the previous one (one writer thread; the
database drivers release the GIL), and offsets are committed strictly in order, each after
its batch's store commit. At-least-once delivery plus idempotent writes give exact results.

An event type may go to several processors; they run in the order given. Stateful processors
(``StatefulProcessor``) are checkpointed: their snapshots are saved in the same transaction as
the offsets (``state/<group>/<name>`` beside ``offsets/<group>``) and restored when the runner
starts; messages below the checkpointed offsets (stored, but their bus commit lost to a crash)
are skipped, and events already in ``raw_events`` (a producer's re-send) are not given to them
again. So a ``kill -9`` at any moment and a restart give the state of an uninterrupted run.
Stateful processors assume one runner per consumer group (``pulso run`` is one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import orjson

from pulso.bus.protocol import Bus, Message, TopicPartition, next_offsets
from pulso.domain.events import EVENT_KINDS, Event, decode_event
from pulso.errors import InvalidEventError
from pulso.pipeline import deadletter
from pulso.pipeline.processors import (
    PartitionAwareProcessor,
    Processor,
    StatefulProcessor,
    is_partition_aware,
    is_stateful,
)
from pulso.store.protocol import Store, StoreTx
from pulso.store.tables import DEADLETTER, RAW_EVENTS, ColumnBatch

log = logging.getLogger(__name__)

DEFAULT_GROUP = "pulso-pipeline"


@dataclass(slots=True)
class BatchResult:
    """What one batch did."""

    messages: int
    events: int
    new_events: int
    dead_letters: Counter[str]
    offsets: dict[TopicPartition, int]
    seconds: float = 0.0
    skipped: int = 0
    """Re-delivered messages below the checkpointed offsets: applied before a crash."""


@dataclass(slots=True)
class RunStats:
    """Totals over a run."""

    batches: int = 0
    messages: int = 0
    events: int = 0
    new_events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += result.messages
        self.events += result.events
        self.new_events += result.new_events
        self.dead_letters.update(result.dead_letters)
        self.skipped += result.skipped

    @property
    def duplicates(self) -> int:
        return self.events - self.new_events


@dataclass(slots=True)
class _Routed:
    processor: Processor
    events: list[Event]
    partitions: list[str]


@dataclass(slots=True)
class _Prepared:
    events_by_processor: list[_Routed]
    raw_rows: ColumnBatch
    dead: list[deadletter.DeadLetter]
    result: BatchResult
    positions: dict[TopicPartition, int]


StopCondition = Callable[[RunStats], bool]


class PipelineRunner:
    """Runs processors over a consumer group's micro-batches."""

    def __init__(
        self,
        bus: Bus,
        store: Store,
        processors: Sequence[Processor],
        *,
        topics: Sequence[str],
        group: str = DEFAULT_GROUP,
        batch_size: int = 20_000,
        poll_timeout_s: float = 0.2,
    ) -> None:
        self._store = store
        self._processors = list(processors)
        names = [p.name for p in self._processors]
        if len(set(names)) != len(names):
            raise ValueError(f"processor names must be unique: {names}")
        self._route = frozenset(t for p in self._processors for t in p.event_types)
        self._stateful = [cast(StatefulProcessor, p) for p in self._processors if is_stateful(p)]
        self._group = group
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._partition_names: dict[TopicPartition, str] = {}
        checkpointed = self._restore()
        # Positions start from the checkpoint, so a saved checkpoint keeps every partition.
        self._positions: dict[TopicPartition, int] = dict(checkpointed)
        # Only stateful processors need the skip; without them the idempotent writes absorb
        # a re-delivery (and the bus may legitimately be rewound, e.g. a replay group).
        self._skip_below: dict[TopicPartition, int] = dict(checkpointed) if self._stateful else {}
        self._consumer = bus.consumer(group, list(topics))

    def _restore(self) -> dict[TopicPartition, int]:
        """Load the offsets checkpoint and every stateful processor's state."""
        with self._store.transaction() as tx:
            offsets = tx.load_checkpoint(f"offsets/{self._group}")
            for processor in self._stateful:
                processor.restore(tx.load_checkpoint(self._state_name(processor)))
        return _decode_offsets(offsets) if offsets else {}

    def _state_name(self, processor: Processor) -> str:
        return f"state/{self._group}/{processor.name}"

    def close(self) -> None:
        self._consumer.close()

    def step(self) -> BatchResult | None:
        """Process one batch synchronously; None when nothing arrived in time."""
        messages = self._consumer.poll_batch(self._batch_size, self._poll_timeout_s)
        if not messages:
            return None
        prepared = self._prepare(messages)
        self._write(prepared)
        self._consumer.commit(prepared.result.offsets)
        return prepared.result

    def run(
        self,
        *,
        stop: StopCondition,
        on_batch: Callable[[BatchResult, RunStats], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunStats:
        """Run until a poll comes back empty and ``stop(stats)`` is true, or ``cancel`` is set."""
        stats = RunStats()
        started = time.perf_counter()
        pending: Future[BatchResult] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulso-writer") as writer:
            while not (cancel is not None and cancel.is_set()):
                messages = self._consumer.poll_batch(self._batch_size, self._poll_timeout_s)
                prepared = self._prepare(messages) if messages else None
                if pending is not None:
                    self._finish(pending.result(), stats, on_batch)
                    pending = None
                if prepared is not None:
                    pending = writer.submit(self._write, prepared)
                elif stop(stats):
                    break
            if pending is not None:
                self._finish(pending.result(), stats, on_batch)
        stats.seconds = time.perf_counter() - started
        return stats

    def _finish(
        self,
        result: BatchResult,
        stats: RunStats,
        on_batch: Callable[[BatchResult, RunStats], None] | None,
    ) -> None:
        self._consumer.commit(result.offsets)
        stats.add(result)
        if on_batch is not None:
            on_batch(result, stats)

    def _prepare(self, messages: list[Message]) -> _Prepared:
        received_at = datetime.now(UTC)
        events: list[Event] = []
        partitions: list[str] = []
        raw: ColumnBatch = {name: [] for name in RAW_EVENTS.column_names}
        dead: list[deadletter.DeadLetter] = []
        seen: set[int] = set()
        skip_below = self._skip_below
        skipped = 0
        names = self._partition_names
        for message in messages:
            if skip_below:
                tp = (message.topic, message.partition)
                below = skip_below.get(tp)
                if below is not None:
                    if message.offset < below:
                        skipped += 1
                        continue
                    del skip_below[tp]  # offsets only grow: past the checkpoint for good
            try:
                event = decode_event(message.value)
                if event.type not in self._route:
                    raise InvalidEventError("unroutable", f"no processor for {event.type!r}")
            except InvalidEventError as e:
                dead.append(deadletter.from_message(message, e.reason, e.detail, received_at))
                continue
            event_key = event.event_id.int  # UUID.__hash__ is Python code; its int hashes in C
            if event_key in seen:
                continue
            seen.add(event_key)
            events.append(event)
            partition = names.get((message.topic, message.partition))
            if partition is None:
                partition = names[(message.topic, message.partition)] = (
                    f"{message.topic}:{message.partition}"
                )
            partitions.append(partition)
            _append_raw(raw, event, message, received_at)
        result = BatchResult(
            messages=len(messages),
            events=len(messages) - len(dead) - skipped,
            new_events=0,
            dead_letters=Counter(d.reason for d in dead),
            offsets=next_offsets(messages),
            skipped=skipped,
        )
        self._positions.update(result.offsets)
        grouped = self._group_by_processor(events, partitions)
        return _Prepared(grouped, raw, dead, result, dict(self._positions))

    def _group_by_processor(self, events: list[Event], partitions: list[str]) -> list[_Routed]:
        """Each processor's events of its types, in the order read."""
        types = {e.type for e in events}
        routed: list[_Routed] = []
        for processor in self._processors:
            wanted = processor.event_types
            if types <= wanted:
                routed.append(_Routed(processor, events, partitions))
            elif types & wanted:
                keep = [i for i, e in enumerate(events) if e.type in wanted]
                routed.append(
                    _Routed(processor, [events[i] for i in keep], [partitions[i] for i in keep])
                )
        return routed

    def _write(self, prepared: _Prepared) -> BatchResult:
        started = time.perf_counter()
        raw_ids = prepared.raw_rows["event_id"]
        with self._store.transaction() as tx:
            new = tx.insert_new(RAW_EVENTS, prepared.raw_rows) if raw_ids else 0
            stored_before: set[object] = set()
            if new < len(raw_ids) and self._stateful:
                # Some events were stored by an earlier batch (rows this batch inserted carry
                # its received_at): stateful processors must not see those twice.
                stored_before = {
                    row[0]
                    for row in tx.fetch(
                        "SELECT event_id FROM raw_events WHERE event_id = ANY(%s) "
                        "AND received_at <> %s",
                        (list(raw_ids), prepared.raw_rows["received_at"][0]),
                    )
                }
            for routed in prepared.events_by_processor:
                _apply(routed, tx, stored_before if is_stateful(routed.processor) else None)
            if prepared.dead:
                tx.insert_new(DEADLETTER, deadletter.to_columns(prepared.dead))
            for processor in self._stateful:
                tx.save_checkpoint(self._state_name(processor), processor.snapshot())
            tx.save_checkpoint(f"offsets/{self._group}", _encode_offsets(prepared.positions))
        prepared.result.new_events = new
        prepared.result.seconds = time.perf_counter() - started
        return prepared.result


def _apply(routed: _Routed, tx: StoreTx, stored_before: set[object] | None) -> None:
    events, partitions = routed.events, routed.partitions
    if stored_before:
        keep = [i for i, e in enumerate(events) if e.event_id not in stored_before]
        events, partitions = [events[i] for i in keep], [partitions[i] for i in keep]
    processor = routed.processor
    if is_partition_aware(processor):
        cast(PartitionAwareProcessor, processor).process_partitioned(events, partitions, tx)
    else:
        processor.process(events, tx)


def _append_raw(raw: ColumnBatch, event: Event, message: Message, received_at: datetime) -> None:
    raw["event_id"].append(event.event_id)
    raw["type"].append(event.type)
    raw["topic"].append(EVENT_KINDS[event.type].topic)
    raw["occurred_at"].append(event.occurred_at)
    raw["source"].append(event.source)
    raw["key"].append(event.key)
    raw["payload"].append(message.value)
    raw["received_at"].append(received_at)


def _encode_offsets(offsets: dict[TopicPartition, int]) -> bytes:
    return orjson.dumps({f"{topic}:{partition}": o for (topic, partition), o in offsets.items()})


def _decode_offsets(value: bytes) -> dict[TopicPartition, int]:
    decoded: dict[str, int] = orjson.loads(value)
    offsets: dict[TopicPartition, int] = {}
    for name, offset in decoded.items():
        topic, _, partition = name.rpartition(":")
        offsets[(topic, int(partition))] = int(offset)
    return offsets
