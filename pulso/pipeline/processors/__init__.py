"""Processors turn validated events of their types into idempotent store writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pulso.domain.events import Event
from pulso.store.protocol import StoreTx


class Processor(Protocol):
    """Writes one kind of fact. Applying the same events twice must leave the same state."""

    name: str
    event_types: frozenset[str]

    def process(self, events: Sequence[Event], tx: StoreTx) -> None: ...
