"""Processors turn validated events of their types into store writes.

Several processors may take the same event type (payments, windows, fraud); the runner gives
each one the batch's events of its types, in the order they were read, and runs them in the
order they were given, inside the batch's one store transaction.

A processor is either stateless and idempotent (``Processor``: applying the same events twice
leaves the same state), or keeps state in memory (``StatefulProcessor``): the runner saves its
``snapshot()`` in the same transaction as the bus offsets, ``restore()``s it at start, and
never hands it an event twice (re-delivered messages below the checkpointed offsets are
skipped, and events whose ``event_id`` is stored in ``raw_events`` already are left out).
A stateful processor may also save what changed since its last save (``IncrementalState``).

A processor may split its work in two (``PreparingProcessor``): ``prepare`` does everything
but the writes and returns them as a ``Write``, which the runner calls inside the batch's
transaction. The runner prepares a batch while the previous one is being written, so the
Python work overlaps the database's (which releases the GIL); its ``process`` is
``prepare(...)(tx)``, one logic for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

from pulso.domain.events import Event
from pulso.store.protocol import StoreTx

Write: TypeAlias = Callable[[StoreTx], None]
"""A batch's prepared writes for one processor; may be called again in a new transaction when
the first one failed (it writes precomputed rows, idempotently)."""


def nothing_to_write(tx: StoreTx) -> None:
    """The ``Write`` of a batch that gives no rows."""


@runtime_checkable
class Processor(Protocol):
    """Writes one kind of fact. Applying the same events twice must leave the same state."""

    name: str
    event_types: frozenset[str]

    def process(self, events: Sequence[Event], tx: StoreTx) -> None: ...


@runtime_checkable
class StatefulProcessor(Processor, Protocol):
    """A processor with in-memory state, checkpointed with the offsets.

    ``process`` sees each event once (the runner filters re-deliveries and duplicates);
    ``snapshot`` is the state after the last ``process`` call; ``restore(None)`` means a
    fresh start.
    """

    def snapshot(self) -> bytes: ...

    def restore(self, state: bytes | None) -> None: ...


@runtime_checkable
class IncrementalState(StatefulProcessor, Protocol):
    """A stateful processor whose checkpoint can be saved as what changed since the last one.

    ``snapshot_delta`` returns what changed since the last ``snapshot``/``snapshot_delta``
    call (and forgets it), or None when it cannot (the runner then saves a ``snapshot``).
    ``apply_delta``, after ``restore(full)``, applies the deltas saved since that snapshot,
    one call each, in the order they were taken: the state is then the one ``snapshot``
    would have given. The runner saves a delta per batch and compacts them into a full
    snapshot now and then (pulso/pipeline/runner.py).
    """

    def snapshot_delta(self) -> bytes | None: ...

    def apply_delta(self, delta: bytes) -> None: ...


@runtime_checkable
class PartitionAwareProcessor(Processor, Protocol):
    """A processor that needs to know where each event was read (per-partition watermarks).

    The runner calls ``process_partitioned`` instead of ``process``; ``partitions[i]`` names
    the bus partition of ``events[i]`` (``"<topic>:<partition>"``), and the events of one
    partition come in offset order.
    """

    def process_partitioned(
        self, events: Sequence[Event], partitions: Sequence[str], tx: StoreTx
    ) -> None: ...


@runtime_checkable
class PreparingProcessor(Processor, Protocol):
    """A processor that computes first and writes later (see the module's docstring).

    ``prepare`` gets the batch's events of its types with the partition each was read from
    (``"<topic>:<partition>"``, offset order within a partition); a stateful processor's state
    is the new one when it returns (the runner takes the snapshot right after). It runs
    outside any transaction, while the previous batch may still be writing.
    """

    def prepare(self, events: Sequence[Event], partitions: Sequence[str]) -> Write: ...


def is_stateful(processor: Processor) -> bool:
    return callable(getattr(processor, "snapshot", None)) and callable(
        getattr(processor, "restore", None)
    )


def is_partition_aware(processor: Processor) -> bool:
    return callable(getattr(processor, "process_partitioned", None))


def is_preparing(processor: Processor) -> bool:
    return callable(getattr(processor, "prepare", None))


def is_incremental(processor: Processor) -> bool:
    return (
        is_stateful(processor)
        and callable(getattr(processor, "snapshot_delta", None))
        and callable(getattr(processor, "apply_delta", None))
    )
