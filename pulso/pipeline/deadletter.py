"""The dead-letter: every input that failed validation, with the reason and the original bytes.

Entries are keyed by where the input was read (topic, partition, offset), so reading the same
message twice records it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pulso.bus.protocol import Bus, Message
from pulso.store.protocol import Store
from pulso.store.tables import DEADLETTER, ColumnBatch

MAX_DETAIL_CHARS = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    payload: bytes
    received_at: datetime
    replayed_at: datetime | None = None


def dead_letter_id(message: Message) -> str:
    return f"{message.topic}:{message.partition}:{message.offset}"


def from_message(message: Message, reason: str, detail: str, at: datetime) -> DeadLetter:
    return DeadLetter(
        id=dead_letter_id(message),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        detail=detail[:MAX_DETAIL_CHARS],
        payload=message.value,
        received_at=at,
    )


def to_columns(entries: Sequence[DeadLetter]) -> ColumnBatch:
    return {name: [getattr(e, name) for e in entries] for name in DEADLETTER.column_names}


_COLUMNS = ", ".join(f'"{c}"' for c in DEADLETTER.column_names)


def list_dead_letters(
    store: Store, *, reason: str | None = None, limit: int = 50
) -> list[DeadLetter]:
    """The newest entries first, optionally only those with ``reason``."""
    where, params = ("WHERE reason = %s", [reason]) if reason else ("", [])
    rows = store.query(
        f"SELECT {_COLUMNS} FROM deadletter {where} "
        'ORDER BY received_at DESC, topic, "partition", "offset" DESC LIMIT %s',
        (*params, limit),
    )
    return [_entry(row) for row in rows]


def get_dead_letter(store: Store, entry_id: str) -> DeadLetter | None:
    rows = store.query(f"SELECT {_COLUMNS} FROM deadletter WHERE id = %s", (entry_id,))
    return _entry(rows[0]) if rows else None


def count_by_reason(store: Store) -> dict[str, int]:
    rows = store.query("SELECT reason, count(*) FROM deadletter GROUP BY reason ORDER BY 2 DESC")
    return {str(reason): int(n) for reason, n in rows}


def mark_replayed(store: Store, entry_ids: Sequence[str], at: datetime) -> None:
    with store.transaction() as tx:
        tx.execute(
            "UPDATE deadletter SET replayed_at = %s WHERE id = ANY(%s)", (at, list(entry_ids))
        )


def _entry(row: tuple[object, ...]) -> DeadLetter:
    payload = row[6]
    return DeadLetter(
        id=str(row[0]),
        topic=str(row[1]),
        partition=int(row[2]),  # type: ignore[call-overload]
        offset=int(row[3]),  # type: ignore[call-overload]
        reason=str(row[4]),
        detail=str(row[5]),
        payload=bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else b"",
        received_at=row[7],  # type: ignore[arg-type]
        replayed_at=row[8],  # type: ignore[arg-type]
    )


def replay_dead_letters(
    store: Store, bus: Bus, *, entry_ids: Sequence[str], reason: str | None
) -> list[str]:
    """Publish the entries' original bytes on their original topics; mark them replayed."""
    entries = [e for e in (get_dead_letter(store, i) for i in entry_ids) if e is not None]
    if reason:
        entries += list_dead_letters(store, reason=reason, limit=1_000_000)
    chosen = {e.id: e for e in entries}
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for e in chosen.values():
        by_topic.setdefault(e.topic, []).append((None, e.payload))
    for topic, records in by_topic.items():
        bus.publish(topic, records)
    mark_replayed(store, list(chosen), datetime.now(UTC))
    return list(chosen)
