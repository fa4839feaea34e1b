"""The pipeline runner: poll a micro-batch, decode and validate, route by event type to the
processors, write everything in one store transaction, then commit the bus offsets.

Preparing the next batch overlaps with writing the previous one (one writer thread; the
database drivers release the GIL), and offsets are committed strictly in order, each after
its batch's store commit. At-least-once delivery plus idempotent writes give exact results.
Preparing is decoding, and running the processors that split their work
(``PreparingProcessor``: payments, windows, fraud) up to their writes, stateful snapshots
included, so the writer thread does little but the database's work.

An event type may go to several processors; they run in the order given. Stateful processors
(``StatefulProcessor``) are checkpointed: their snapshots are saved in the same transaction as
the offsets (``state/<group>/<name>`` beside ``offsets/<group>``) and restored when the runner
starts; messages below the checkpointed offsets (stored, but their bus commit lost to a crash)
are skipped, and events already in ``raw_events`` (a producer's re-send) are not given to them
again. So a ``kill -9`` at any moment and a restart give the state of an uninterrupted run.
Stateful processors assume one runner per consumer group (``pulso run`` is one).

Since a stateful processor's state moves ahead before the transaction, which of a batch's
events are stored already is predicted from the ids of the last ``RECENT_BATCHES`` batches
(a producer's re-sends are mostly recent) and checked in the transaction by the number of
rows ``raw_events`` took. A wrong guess (a re-send of an older event) rolls the batch back;
the stateful processors are restored from the checkpoint, and the batches read since are
written again the exact way: stored events looked up in the transaction, processors run
there.

A stateful processor that can say what changed (``IncrementalState``, the fraud detector: a
full snapshot is ~5 MB, a batch's change a few percent of it) is saved as a delta per batch,
``state/<group>/<name>/delta/<seq>``, in the same transaction as the offsets; when the deltas
add up to ``DELTA_COMPACT_RATIO`` of the last full snapshot, or after ``DELTA_MAX_COUNT`` of
them, the batch saves a full snapshot instead and deletes the deltas (same transaction). A
restart restores the full snapshot, then applies the deltas in order.

``state_only`` is the cluster's stream-state runner (pulso/pipeline/leader.py): stateful
processors only, in a consumer group of their own beside the facts workers. It writes neither
``raw_events`` nor dead letters (the facts workers do), ignores event types it has no processor
for, and dedupes producer re-sends against its own ``stream_seen_events`` instead. ``fence``
runs first in every batch transaction: raising there (a lost election) rolls the batch back.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, cast

import orjson

from pulso.bus.protocol import Bus, Message, TopicPartition, next_offsets
from pulso.domain.events import EVENT_KINDS, Event, decode_event
from pulso.errors import InvalidEventError
from pulso.pipeline import deadletter
from pulso.pipeline.processors import (
    IncrementalState,
    PartitionAwareProcessor,
    PreparingProcessor,
    Processor,
    StatefulProcessor,
    Write,
    is_incremental,
    is_partition_aware,
    is_preparing,
    is_stateful,
)
from pulso.store.protocol import Store, StoreTx
from pulso.store.tables import DEADLETTER, RAW_EVENTS, STREAM_SEEN_EVENTS, ColumnBatch

log = logging.getLogger(__name__)

DEFAULT_GROUP = "pulso-pipeline"

DELTA_COMPACT_RATIO: Final = 1.0
"""Deltas are compacted into a full snapshot when their total size would pass this fraction of
the last full snapshot's (a restart then reads at most about twice a full snapshot)."""
DELTA_MAX_COUNT: Final = 500
"""...or when this many deltas are stored (a restart applies them one by one)."""
RECENT_BATCHES: Final = 4
"""How many batches' event ids are remembered to tell a stateful processor which events of a
new batch are stored already (re-sent by a producer) before the batch's transaction."""


class _Mispredicted(Exception):
    """A batch held events stored by a batch older than the ones remembered: its transaction
    is rolled back and it is written again the exact way (see ``PipelineRunner``)."""


@dataclass(slots=True)
class _DeltaLog:
    """What an incremental processor has stored beside its last full snapshot."""

    full_bytes: int = 0
    count: int = 0
    total_bytes: int = 0
    next_seq: int = 0
    full_next: bool = True
    """Save a full snapshot next (and delete the deltas): at start, and after a failed write
    (the deltas stored may not be the ones this log counted)."""


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
    write: Write | None = None
    """The processor's prepared writes; None: it runs in the transaction (``process``)."""


@dataclass(slots=True)
class _Prepared:
    events_by_processor: list[_Routed]
    raw_rows: ColumnBatch
    dead: list[deadletter.DeadLetter]
    result: BatchResult
    positions: dict[TopicPartition, int]
    stored_before: set[int] | None = None
    """Prepared ahead: the ids (``UUID.int``) of the batch's events that earlier batches
    stored, as predicted from the remembered batches (checked in the transaction); None: the
    exact way, the stored events looked up in the transaction and every processor run there."""
    state_writes: list[Write] = field(default_factory=list)


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
        state_only: bool = False,
        fence: Callable[[StoreTx], None] | None = None,
    ) -> None:
        self._store = store
        self._processors = list(processors)
        names = [p.name for p in self._processors]
        if len(set(names)) != len(names):
            raise ValueError(f"processor names must be unique: {names}")
        self._route = frozenset(t for p in self._processors for t in p.event_types)
        self._stateful = [cast(StatefulProcessor, p) for p in self._processors if is_stateful(p)]
        self._deltas: dict[str, _DeltaLog] = {
            p.name: _DeltaLog() for p in self._stateful if is_incremental(p)
        }
        if state_only and len(self._stateful) != len(self._processors):
            raise ValueError(f"a state-only runner takes stateful processors only: {names}")
        self._state_only = state_only
        self._fence = fence
        if state_only:  # other types are the facts workers' (and their dead letters too)
            self._route = frozenset(EVENT_KINDS)
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
        self._recent: deque[set[int]] = deque(maxlen=RECENT_BATCHES)
        self._consumer = bus.consumer(group, list(topics))

    def _restore(self) -> dict[TopicPartition, int]:
        """Load the offsets checkpoint and every stateful processor's state."""
        with self._store.transaction() as tx:
            offsets = tx.load_checkpoint(f"offsets/{self._group}")
            for processor in self._stateful:
                name = self._state_name(processor)
                full = tx.load_checkpoint(name)
                processor.restore(full)
                log = self._deltas.get(processor.name)
                if log is None:
                    continue
                deltas = tx.list_checkpoints(f"{name}/delta/")  # in name order: seq order
                for _, delta in deltas:
                    cast(IncrementalState, processor).apply_delta(delta)
                log.full_bytes = len(full) if full is not None else 0
                log.count = len(deltas)
                log.total_bytes = sum(len(d) for _, d in deltas)
                log.next_seq = int(deltas[-1][0].rpartition("/")[2]) + 1 if deltas else 0
                log.full_next = full is None and not deltas
        return _decode_offsets(offsets) if offsets else {}

    def _state_write(self, processor: StatefulProcessor) -> Write:
        """A processor's state now, as the write that saves it in a batch's transaction: a
        delta when it can (see the module's docstring), else a full snapshot (deleting the
        deltas it replaces)."""
        name = self._state_name(processor)
        log = self._deltas.get(processor.name)
        if log is None:
            snapshot = processor.snapshot()
            return lambda tx: tx.save_checkpoint(name, snapshot)
        if not log.full_next:
            delta = cast(IncrementalState, processor).snapshot_delta()
            if (
                delta is not None
                and log.count < DELTA_MAX_COUNT
                and log.total_bytes + len(delta) <= DELTA_COMPACT_RATIO * log.full_bytes
            ):
                delta_name = f"{name}/delta/{log.next_seq:012d}"
                log.count += 1
                log.total_bytes += len(delta)
                log.next_seq += 1
                return lambda tx: tx.save_checkpoint(delta_name, delta)
        full = processor.snapshot()
        replaces_deltas = bool(log.count or log.full_next)
        log.full_bytes, log.count, log.total_bytes, log.next_seq = len(full), 0, 0, 0
        log.full_next = False

        def save_full(tx: StoreTx) -> None:
            tx.save_checkpoint(name, full)
            if replaces_deltas:
                tx.delete_checkpoints(f"{name}/delta/")

        return save_full

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
        try:
            result = self._write(prepared)
        except _Mispredicted:
            results: list[BatchResult] = []
            self._replay([messages], results.append)
            return results[-1]
        self._consumer.commit(result.offsets)
        return result

    def _replay(self, batches: list[list[Message]], finish: Callable[[BatchResult], None]) -> None:
        """After a misprediction: the stateful processors back to the stored checkpoint (the
        state of the last committed batch), then ``batches`` (read since) written one by one
        the exact way, each committed to the bus by ``finish``."""
        log.info("pipeline: a batch re-sent events stored long ago; written the exact way")
        checkpointed = self._restore()
        self._positions = dict(checkpointed)
        self._skip_below = dict(checkpointed)
        self._recent.clear()
        for messages in batches:
            result = self._write(self._prepare(messages, exact=True))
            self._consumer.commit(result.offsets)
            finish(result)

    def run(
        self,
        *,
        stop: StopCondition,
        on_batch: Callable[[BatchResult, RunStats], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunStats:
        """Run until a poll comes back empty and ``stop(stats)`` is true, or ``cancel`` is set."""
        _freeze_startup_objects()
        stats = RunStats()
        started = time.perf_counter()
        pending: Future[BatchResult] | None = None
        pending_messages: list[Message] = []

        def finish(result: BatchResult) -> None:
            stats.add(result)
            if on_batch is not None:
                on_batch(result, stats)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulso-writer") as writer:
            while not (cancel is not None and cancel.is_set()):
                messages = self._consumer.poll_batch(self._batch_size, self._poll_timeout_s)
                # Prepared while the previous batch is written (a stateful processor's state
                # runs ahead of the store by one batch; the checkpoint is the committed one).
                prepared = self._prepare(messages) if messages else None
                if pending is not None:
                    try:
                        result = pending.result()
                    except _Mispredicted:
                        # This batch, prepared on a state that included the other's events,
                        # is written again too.
                        self._replay(
                            [pending_messages, messages] if messages else [pending_messages], finish
                        )
                        pending, prepared = None, None
                        continue
                    self._consumer.commit(result.offsets)
                    finish(result)
                    pending = None
                if prepared is not None:
                    pending, pending_messages = writer.submit(self._write, prepared), messages
                elif stop(stats):
                    break
            if pending is not None:
                try:
                    result = pending.result()
                except _Mispredicted:
                    self._replay([pending_messages], finish)
                else:
                    self._consumer.commit(result.offsets)
                    finish(result)
        stats.seconds = time.perf_counter() - started
        return stats

    def _prepare(self, messages: list[Message], *, exact: bool = False) -> _Prepared:
        """Decode and route a batch; unless ``exact``, also run the processors that prepare
        (``PreparingProcessor``) and take the stateful ones' snapshots, so that only the
        writes are left for the transaction."""
        received_at = datetime.now(UTC)
        events: list[Event] = []
        partitions: list[str] = []
        kept: list[Message] = []
        dead: list[deadletter.DeadLetter] = []
        seen: set[int] = set()
        skip_below = self._skip_below
        skipped = 0
        names = self._partition_names
        route = self._route
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
                if event.type not in route:
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
            kept.append(message)
        raw = _raw_columns(events, kept, received_at)
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
        prepared = _Prepared(grouped, raw, dead, result, dict(self._positions))
        stored_before: set[int] = set()
        if self._stateful:
            for earlier in self._recent:
                stored_before |= seen & earlier
            self._recent.append(seen)
        if exact:
            return prepared
        prepared.stored_before = stored_before
        prepared.events_by_processor = [self._run_prepare(r, stored_before) for r in grouped]
        prepared.state_writes = [self._state_write(p) for p in self._stateful if is_preparing(p)]
        return prepared

    @staticmethod
    def _run_prepare(routed: _Routed, stored_before: set[int]) -> _Routed:
        processor = routed.processor
        if not is_preparing(processor):
            return routed
        events, partitions = routed.events, routed.partitions
        if stored_before and is_stateful(processor):
            events, partitions = _without(events, partitions, stored_before)
        write = cast(PreparingProcessor, processor).prepare(events, partitions)
        return _Routed(processor, events, partitions, write)

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
        try:
            new = self._write_tx(prepared, raw_ids)
        except BaseException:
            for log in self._deltas.values():  # what is stored is not what the logs say
                log.full_next = True
            raise
        prepared.result.new_events = new
        prepared.result.seconds = time.perf_counter() - started
        return prepared.result

    def _write_tx(self, prepared: _Prepared, raw_ids: list[object]) -> int:
        with self._store.transaction() as tx:
            if self._fence is not None:
                self._fence(tx)
            seen, rows = RAW_EVENTS, prepared.raw_rows
            if self._state_only:
                seen = STREAM_SEEN_EVENTS
                rows = {"event_id": raw_ids, "received_at": prepared.raw_rows["received_at"]}
            new = tx.insert_new(seen, rows) if raw_ids else 0
            stored_before = prepared.stored_before
            if self._stateful and stored_before is not None:
                if new != len(raw_ids) - len(stored_before):
                    raise _Mispredicted  # events stored before the remembered batches
            elif new < len(raw_ids) and self._stateful:
                # Some events were stored by an earlier batch (rows this batch inserted carry
                # its received_at): stateful processors must not see those twice.
                stored_before = {
                    row[0].int
                    for row in tx.fetch(
                        f"SELECT event_id FROM {seen.name} WHERE event_id = ANY(%s) "
                        "AND received_at <> %s",
                        (list(raw_ids), prepared.raw_rows["received_at"][0]),
                    )
                }
            for routed in prepared.events_by_processor:
                if routed.write is not None:
                    routed.write(tx)
                else:
                    _apply(routed, tx, stored_before if is_stateful(routed.processor) else None)
            if prepared.dead and not self._state_only:
                tx.insert_new(DEADLETTER, deadletter.to_columns(prepared.dead))
            for write in prepared.state_writes:
                write(tx)
            ahead = prepared.stored_before is not None
            for processor in self._stateful:
                if not (ahead and is_preparing(processor)):  # else among the state writes
                    self._state_write(processor)(tx)
            tx.save_checkpoint(f"offsets/{self._group}", _encode_offsets(prepared.positions))
        return new


def _without(
    events: list[Event], partitions: list[str], stored: set[int]
) -> tuple[list[Event], list[str]]:
    """The events (and their partitions) whose ids are not in ``stored`` (``UUID.int``s)."""
    keep = [i for i, e in enumerate(events) if e.event_id.int not in stored]
    return [events[i] for i in keep], [partitions[i] for i in keep]


def _apply(routed: _Routed, tx: StoreTx, stored_before: set[int] | None) -> None:
    events, partitions = routed.events, routed.partitions
    if stored_before:
        events, partitions = _without(events, partitions, stored_before)
    processor = routed.processor
    if is_partition_aware(processor):
        cast(PartitionAwareProcessor, processor).process_partitioned(events, partitions, tx)
    else:
        processor.process(events, tx)


_TOPICS: dict[str, str] = {event_type: kind.topic for event_type, kind in EVENT_KINDS.items()}


def _raw_columns(
    events: list[Event], messages: list[Message], received_at: datetime
) -> ColumnBatch:
    """The ``raw_events`` rows of a batch's events (read from ``messages``), a column at a
    time: a comprehension per column costs half of eight appends per event."""
    topics = _TOPICS
    raw: ColumnBatch = {
        "event_id": [e.event_id for e in events],
        "type": [e.type for e in events],
        "topic": [topics[e.type] for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "source": [e.source for e in events],
        "key": [e.key for e in events],
        "payload": [m.value for m in messages],
        "received_at": [received_at] * len(events),
    }
    return raw


_frozen = threading.Event()


def _freeze_startup_objects() -> None:
    """Move the objects alive before the first batch (modules, clients, settings) out of the
    garbage collector's sight, once per process: a batch's short-lived objects trigger full
    collections, which otherwise walk them all every time (several percent of the pipeline's
    CPU, measured). Only objects alive now are frozen (startup objects that live as long as
    the process; one of them that later became part of a garbage cycle would not be freed)."""
    if not _frozen.is_set():
        _frozen.set()
        gc.collect()
        gc.freeze()


def _encode_offsets(offsets: dict[TopicPartition, int]) -> bytes:
    return orjson.dumps({f"{topic}:{partition}": o for (topic, partition), o in offsets.items()})


def _decode_offsets(value: bytes) -> dict[TopicPartition, int]:
    decoded: dict[str, int] = orjson.loads(value)
    offsets: dict[TopicPartition, int] = {}
    for name, offset in decoded.items():
        topic, _, partition = name.rpartition(":")
        offsets[(topic, int(partition))] = int(offset)
    return offsets
