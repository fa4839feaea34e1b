"""Snapshots and market alerts in the store (``product_snapshots``, ``alerts``), and the sync
use case that ties client, store and alerts together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pulso.domain.alerts import Alert
from pulso.domain.money import from_cents, to_cents
from pulso.domain.products import ProductSnapshot
from pulso.market.alerts import entry_alert, top_n_entries
from pulso.market.sync import take_snapshot
from pulso.sources.mercadolivre import MercadoLivreClient
from pulso.store.protocol import Store, StoreTx
from pulso.store.tables import ALERTS, PRODUCT_SNAPSHOTS, ColumnBatch

_SNAPSHOT_COLUMNS = (
    "site, category_id, product_id, taken_at, kind, position, title, price_cents, rating, "
    "available_quantity, seller"
)


@dataclass(frozen=True, slots=True)
class CategorySync:
    category_id: str
    taken_at: datetime
    products: int
    new_rows: int
    alerts: tuple[Alert, ...] = field(default=())
    snapshots: tuple[ProductSnapshot, ...] = field(default=())


def sync_category(
    client: MercadoLivreClient,
    store: Store,
    category_id: str,
    taken_at: datetime,
    *,
    top_n: int = 0,
) -> CategorySync:
    """Snapshot one category into the store; raise top-N alerts for new entries. A repeat of
    the same snapshot (same category and time) writes nothing and raises nothing."""
    snapshots = take_snapshot(client, category_id, taken_at)
    return record_snapshot(store, category_id, taken_at, snapshots, top_n=top_n)


def record_snapshot(
    store: Store,
    category_id: str,
    taken_at: datetime,
    snapshots: Sequence[ProductSnapshot],
    *,
    top_n: int = 0,
) -> CategorySync:
    with store.transaction() as tx:
        previous = previous_ranking(tx, category_id, taken_at)
        new_rows = tx.insert_new(PRODUCT_SNAPSHOTS, snapshot_columns(snapshots))
        entered = top_n_entries(previous, snapshots, top_n)
        alerts = [entry_alert(s, top_n, (previous or {}).get(s.product_id)) for s in entered]
        fresh = _new_alerts(tx, alerts)
        if fresh:
            tx.insert_new(ALERTS, alert_columns(fresh))
    return CategorySync(
        category_id, taken_at, len(snapshots), new_rows, tuple(fresh), tuple(snapshots)
    )


def previous_ranking(tx: StoreTx, category_id: str, before: datetime) -> dict[str, int] | None:
    """Product id → position in the category's latest snapshot before ``before``."""
    rows = tx.fetch(
        "SELECT product_id, position FROM product_snapshots WHERE category_id = %s AND "
        "taken_at = (SELECT max(taken_at) FROM product_snapshots "
        "WHERE category_id = %s AND taken_at < %s)",
        (category_id, category_id, before),
    )
    return {str(pid): int(pos) for pid, pos in rows} if rows else None


def load_snapshots(
    store: Store, *, since: datetime, until: datetime, category_ids: Sequence[str] = ()
) -> list[ProductSnapshot]:
    """Snapshots taken in ``[since, until]``, optionally of some categories only."""
    sql = (
        f"SELECT {_SNAPSHOT_COLUMNS} FROM product_snapshots WHERE taken_at >= %s AND taken_at <= %s"
    )
    params: list[Any] = [since, until]
    if category_ids:
        sql += " AND category_id = ANY(%s)"
        params.append(list(category_ids))
    rows = store.query(sql + " ORDER BY category_id, taken_at, position", params)
    return [_snapshot(row) for row in rows]


def latest_snapshot_at(store: Store) -> datetime | None:
    rows = store.query("SELECT max(taken_at) FROM product_snapshots")
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


def window(until: datetime, days: float) -> tuple[datetime, datetime]:
    return until - timedelta(days=days), until


def snapshot_columns(snapshots: Sequence[ProductSnapshot]) -> ColumnBatch:
    columns: ColumnBatch = {name: [] for name in PRODUCT_SNAPSHOTS.column_names}
    for s in snapshots:
        values = {
            "site": s.site,
            "category_id": s.category_id,
            "product_id": s.product_id,
            "taken_at": s.taken_at,
            "kind": s.kind,
            "position": s.position,
            "title": s.title,
            "price_cents": None if s.price is None else to_cents(s.price),
            "rating": s.rating,
            "available_quantity": s.available_quantity,
            "seller": s.seller,
        }
        for name in PRODUCT_SNAPSHOTS.column_names:
            columns[name].append(values[name])
    return columns


def alert_columns(alerts: Sequence[Alert]) -> ColumnBatch:
    columns: ColumnBatch = {name: [] for name in ALERTS.column_names}
    for a in alerts:
        values = {
            "alert_id": a.alert_id,
            "kind": a.kind,
            "severity": a.severity,
            "subject": a.subject,
            "message": a.message,
            "raised_at": a.raised_at,
            "count": a.count,
            "details": dict(a.details),
        }
        for name in ALERTS.column_names:
            columns[name].append(values[name])
    return columns


def market_alerts(store: Store, *, limit: int = 50) -> list[tuple[datetime, str, str]]:
    """The latest top-N alerts: (raised_at, subject, message), newest first."""
    rows = store.query(
        "SELECT raised_at, subject, message FROM alerts WHERE kind = %s "
        "ORDER BY raised_at DESC, alert_id LIMIT %s",
        ("market.top_n_entry", limit),
    )
    return [(r[0], str(r[1]), str(r[2])) for r in rows]


def _new_alerts(tx: StoreTx, alerts: list[Alert]) -> list[Alert]:
    if not alerts:
        return []
    ids = [a.alert_id for a in alerts]
    stored = {
        r[0] for r in tx.fetch("SELECT alert_id FROM alerts WHERE alert_id = ANY(%s)", (ids,))
    }
    return [a for a in alerts if a.alert_id not in stored]


def _snapshot(row: tuple[Any, ...]) -> ProductSnapshot:
    site, category_id, product_id, taken_at, kind, position, title = row[:7]
    price_cents, rating, available_quantity, seller = row[7:]
    return ProductSnapshot(
        site=site,
        category_id=category_id,
        product_id=product_id,
        kind=kind,
        position=int(position),
        title=title,
        taken_at=taken_at,
        price=None if price_cents is None else from_cents(int(price_cents)),
        rating=None if rating is None else float(rating),
        available_quantity=None if available_quantity is None else int(available_quantity),
        seller=seller,
    )
