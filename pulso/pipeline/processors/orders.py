"""The orders processor: one row per order in ``orders``; a later version (status change)
updates the row instead of adding one.

The version with the latest ``updated_at`` wins, whatever order the events arrive in: within
a batch the fold keeps the latest version of each order, and versions older than the stored
one are dropped before the upsert. Replays write the same values again (idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from pulso.domain.events import Event
from pulso.domain.money import to_cents
from pulso.domain.orders import Order
from pulso.store.protocol import StoreTx
from pulso.store.tables import ORDERS, ColumnBatch

# When two versions carry the same updated_at, the later stage of an order's life wins.
STATUS_RANK: Final[dict[str, int]] = {"Pendente": 0, "Pago": 1, "Cancelado": 2, "Reembolsado": 3}

_STORED_SQL: Final = "SELECT order_id, updated_at, status FROM orders WHERE order_id = ANY(%s)"


class OrdersProcessor:
    """Folds ``order.upserted`` events into the ``orders`` table."""

    name = "orders"
    event_types = frozenset({"order.upserted"})

    def process(self, events: Sequence[Event], tx: StoreTx) -> None:
        latest = latest_versions(events)
        if not latest:
            return
        stored = {
            order_id: (updated_at, STATUS_RANK.get(status, -1))
            for order_id, updated_at, status in tx.fetch(_STORED_SQL, (list(latest),))
        }
        newer = [
            order
            for order in latest.values()
            if (version := stored.get(order.order_id)) is None or _version(order) >= version
        ]
        if newer:
            tx.upsert(ORDERS, order_columns(newer))


def latest_versions(events: Sequence[Event]) -> dict[str, Order]:
    """The latest version of each order among ``events`` (order id -> order)."""
    latest: dict[str, Order] = {}
    for event in events:
        order = event.data
        if not isinstance(order, Order):
            continue
        seen = latest.get(order.order_id)
        if seen is None or _version(order) >= _version(seen):
            latest[order.order_id] = order
    return latest


def _version(order: Order) -> tuple[datetime, int]:
    return order.updated_at, STATUS_RANK[order.status]


def order_columns(orders: Sequence[Order]) -> ColumnBatch:
    """Orders as the ``orders`` table's columns (money in centavos)."""
    columns: ColumnBatch = {name: [] for name in ORDERS.column_names}
    for o in orders:
        columns["order_id"].append(o.order_id)
        columns["ordered_at"].append(o.ordered_at)
        columns["updated_at"].append(o.updated_at)
        columns["customer_id"].append(o.customer_id)
        columns["city"].append(o.city)
        columns["uf"].append(o.uf)
        columns["region"].append(o.region)
        columns["product"].append(o.product)
        columns["category"].append(o.category)
        columns["quantity"].append(o.quantity)
        columns["unit_price_cents"].append(to_cents(o.unit_price))
        columns["total_cents"].append(to_cents(o.total))
        columns["channel"].append(o.channel)
        columns["status"].append(o.status)
    return columns
