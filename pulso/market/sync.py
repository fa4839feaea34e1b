"""Take a snapshot of a category's best sellers: position, title, price, rating and available
quantity of each ITEM and PRODUCT entry, at one moment."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from pulso.domain.products import ProductSnapshot
from pulso.sources.mercadolivre import (
    SITE,
    Highlight,
    ItemDetail,
    MercadoLivreClient,
    MercadoLivreNotFoundError,
    ProductDetail,
)

log = logging.getLogger(__name__)

TITLE_MAX = 300


def snapshot_time(at: datetime | None = None) -> datetime:
    """The moment a snapshot is filed under: UTC, to the minute (a repeat within the minute
    is the same snapshot)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(second=0, microsecond=0)


def take_snapshot(
    client: MercadoLivreClient, category_id: str, taken_at: datetime, *, ratings: bool = True
) -> list[ProductSnapshot]:
    """The category's ranking now, one ProductSnapshot per entry, by position."""
    highlights = client.best_sellers(category_id)
    item_ids = [h.id for h in highlights if h.kind == "ITEM"]
    items = client.items(item_ids) if item_ids else {}
    snapshots = []
    for entry in highlights:
        snapshot = _snapshot(client, category_id, entry, items, taken_at, ratings)
        if snapshot is not None:
            snapshots.append(snapshot)
    return snapshots


def _snapshot(
    client: MercadoLivreClient,
    category_id: str,
    entry: Highlight,
    items: dict[str, ItemDetail],
    taken_at: datetime,
    ratings: bool,
) -> ProductSnapshot | None:
    if entry.kind == "ITEM":
        item = items.get(entry.id)
        if item is None:
            log.warning("best seller %s of %s has no item details; skipped", entry.id, category_id)
            return None
        rating = client.item_rating(item.id) if ratings else None
        return _build(
            category_id,
            entry,
            item.title,
            item.price,
            item.available_quantity,
            item.seller_id,
            rating,
            taken_at,
        )
    product = _product(client, entry.id)
    if product is None:
        return None
    rating = (
        client.item_rating(product.winner_item_id) if ratings and product.winner_item_id else None
    )
    return _build(
        category_id,
        entry,
        product.name,
        product.price,
        product.available_quantity,
        product.seller_id,
        rating,
        taken_at,
    )


def _product(client: MercadoLivreClient, product_id: str) -> ProductDetail | None:
    try:
        return client.product(product_id)
    except MercadoLivreNotFoundError:
        log.warning("best seller product %s is gone; skipped", product_id)
        return None


def _build(
    category_id: str,
    entry: Highlight,
    title: str,
    price: Decimal | None,
    available_quantity: int | None,
    seller: str | None,
    rating: float | None,
    taken_at: datetime,
) -> ProductSnapshot:
    return ProductSnapshot(
        site=SITE,
        category_id=category_id,
        product_id=entry.id,
        kind=entry.kind,
        position=entry.position,
        title=title[:TITLE_MAX],
        taken_at=taken_at,
        price=price if price else None,
        rating=rating,
        available_quantity=available_quantity,
        seller=seller[:120] if seller else None,
    )
