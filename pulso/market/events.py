"""Snapshots as ``product.snapshot`` events on the ``products`` topic, for consumers of the bus
(``pulso market sync --publish``). Event ids are derived from category, product and time, so
publishing the same snapshot again gives the same ids, which consumers drop as repeats."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pulso.bus.protocol import Bus, Record
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.ids import uuid7
from pulso.domain.products import ProductSnapshot

SOURCE = "pulso.market"


def snapshot_records(snapshots: Sequence[ProductSnapshot]) -> list[Record]:
    """One record per snapshot, keyed by category (one category's ranking stays in order)."""
    records: list[Record] = []
    for s in snapshots:
        digest = hashlib.blake2b(
            f"{s.category_id}|{s.product_id}|{s.taken_at.isoformat()}".encode(), digest_size=10
        ).digest()
        event_id = uuid7(int(s.taken_at.timestamp() * 1000), int.from_bytes(digest, "big"))
        event = new_event(
            s, source=SOURCE, key=s.category_id, occurred_at=s.taken_at, event_id=event_id
        )
        records.append((s.category_id.encode(), encode_event(event)))
    return records


def publish_snapshots(bus: Bus, snapshots: Sequence[ProductSnapshot]) -> int:
    if snapshots:
        bus.publish(Topic.PRODUCTS, snapshot_records(snapshots))
    return len(snapshots)
