"""Top-N alerts: a product that enters the top N of a watched category (pure functions).

An entry is a product at position N or better in the new snapshot that was not in the top N
of the previous snapshot (absent, or lower). The first snapshot of a category is the
baseline and raises nothing. The alert id is derived from category, product and snapshot
time, so the same snapshot taken twice raises one alert, and a product that stays in the top
N raises nothing more until it leaves and enters again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from pulso.domain.alerts import Alert
from pulso.domain.money import format_brl
from pulso.domain.products import ProductSnapshot
from pulso.domain.timefmt import format_local

KIND = "market.top_n_entry"


def top_n_entries(
    previous: Mapping[str, int] | None, current: Sequence[ProductSnapshot], top_n: int
) -> list[ProductSnapshot]:
    """The snapshots of products that entered the top ``top_n`` since ``previous``
    (product id → position; None when there is no earlier snapshot)."""
    if previous is None or top_n < 1:
        return []
    return [
        s
        for s in sorted(current, key=lambda s: s.position)
        if s.position <= top_n and previous.get(s.product_id, top_n + 1) > top_n
    ]


def entry_alert(snapshot: ProductSnapshot, top_n: int, previous_position: int | None) -> Alert:
    """The alert for one entry; the message is Brazilian Portuguese."""
    return Alert(
        alert_id=alert_id(snapshot),
        kind=KIND,
        severity="warning",
        subject=f"{snapshot.category_id}:{snapshot.product_id}"[:64],
        message=entry_message(snapshot, top_n, previous_position),
        raised_at=snapshot.taken_at,
        details={
            "category_id": snapshot.category_id,
            "product_id": snapshot.product_id,
            "position": str(snapshot.position),
            "previous_position": "" if previous_position is None else str(previous_position),
            "top_n": str(top_n),
            "price": "" if snapshot.price is None else f"{snapshot.price:.2f}",
        },
    )


def entry_message(snapshot: ProductSnapshot, top_n: int, previous_position: int | None) -> str:
    before = (
        f"antes {previous_position}º"
        if previous_position is not None
        else "fora do ranking anterior"
    )
    price = f", por {format_brl(snapshot.price)}" if snapshot.price is not None else ""
    when = format_local(snapshot.taken_at)
    return (
        f"Mercado Livre: «{snapshot.title}» entrou no top {top_n} da categoria "
        f"{snapshot.category_id} — agora em {snapshot.position}º lugar ({before}){price}. "
        f"Ranking de {when}."
    )


def alert_id(snapshot: ProductSnapshot) -> str:
    key = f"{snapshot.category_id}|{snapshot.product_id}|{_iso(snapshot.taken_at)}"
    return "mkt-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
