"""The pipeline runner: poll a micro-batch, decode and validate, route by event type to the
processors, write everything in one store transaction, then commit the bus offsets.

Decoding the next batch overlaps with writing the previous one (one writer thread; the
database drivers release the GIL), and offsets are committed strictly in order, each after
its batch's store commit. At-least-once delivery plus idempotent writes give exact results.
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

import orjson

from pulso.bus.protocol import Bus, Message, TopicPartition, next_offsets
from pulso.domain.events import EVENT_KINDS, Event, decode_event
from pulso.errors import InvalidEventError
from pulso.pipeline import deadletter
from pulso.pipeline.processors import Processor
from pulso.store.protocol import Store
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


@dataclass(slots=True)
class RunStats:
    """Totals over a run."""

    batches: int = 0
    messages: int = 0
    events: int = 0
    new_events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += result.messages
        self.events += result.events
        self.new_events += result.new_events
        self.dead_letters.update(result.dead_letters)

    @property
    def duplicates(self) -> int:
        return self.events - self.new_events


@dataclass(slots=True)
class _Prepared:
    events_by_processor: list[tuple[Processor, list[Event]]]
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
        self._route = {t: p for p in self._processors for t in p.event_types}
        self._consumer = bus.consumer(group, list(topics))
        self._group = group
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._positions: dict[TopicPartition, int] = {}

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
        by_type: dict[str, list[Event]] = {}
        raw: ColumnBatch = {name: [] for name in RAW_EVENTS.column_names}
        dead: list[deadletter.DeadLetter] = []
        seen: set[int] = set()
        for message in messages:
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
            by_type.setdefault(event.type, []).append(event)
            _append_raw(raw, event, message, received_at)
        result = BatchResult(
            messages=len(messages),
            events=len(messages) - len(dead),
            new_events=0,
            dead_letters=Counter(d.reason for d in dead),
            offsets=next_offsets(messages),
        )
        self._positions.update(result.offsets)
        grouped = self._group_by_processor(by_type)
        return _Prepared(grouped, raw, dead, result, dict(self._positions))

    def _group_by_processor(
        self, by_type: dict[str, list[Event]]
    ) -> list[tuple[Processor, list[Event]]]:
        grouped: dict[str, tuple[Processor, list[Event]]] = {}
        for event_type, events in by_type.items():
            processor = self._route[event_type]
            grouped.setdefault(processor.name, (processor, []))[1].extend(events)
        return list(grouped.values())

    def _write(self, prepared: _Prepared) -> BatchResult:
        started = time.perf_counter()
        with self._store.transaction() as tx:
            new = (
                tx.insert_new(RAW_EVENTS, prepared.raw_rows) if prepared.raw_rows["event_id"] else 0
            )
            for processor, events in prepared.events_by_processor:
                processor.process(events, tx)
            if prepared.dead:
                tx.insert_new(DEADLETTER, deadletter.to_columns(prepared.dead))
            tx.save_checkpoint(f"offsets/{self._group}", _encode_offsets(prepared.positions))
        prepared.result.new_events = new
        prepared.result.seconds = time.perf_counter() - started
        return prepared.result


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
