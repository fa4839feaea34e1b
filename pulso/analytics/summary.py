"""The payments summary the demo prints: computed in SQL, money in centavos."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pulso.domain.money import from_cents
from pulso.store.protocol import Store

_PERCENTILES_SQL = {
    "duckdb": "SELECT quantile_cont(confirmation_seconds, 0.5), "
    "quantile_cont(confirmation_seconds, 0.95) FROM payments WHERE status = 'confirmed'",
    "postgresql": "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY confirmation_seconds), "
    "percentile_cont(0.95) WITHIN GROUP (ORDER BY confirmation_seconds) "
    "FROM payments WHERE status = 'confirmed'",
}

_TOTALS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE status = 'confirmed'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'expired'),
       count(*) FILTER (WHERE status = 'pending'),
       coalesce(sum(paid_cents) FILTER (WHERE status = 'confirmed'), 0),
       min(created_at), max(created_at),
       count(DISTINCT store_id), count(DISTINCT city)
FROM payments
"""

_TOP_STORES_SQL = """
SELECT store_id, min(city), min(uf), count(*), sum(paid_cents)
FROM payments WHERE status = 'confirmed'
GROUP BY store_id ORDER BY sum(paid_cents) DESC, store_id LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class StoreRevenue:
    store_id: str
    city: str
    uf: str
    payments: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class PaymentsSummary:
    charges: int
    confirmed: int
    failed: int
    expired: int
    pending: int
    revenue: Decimal
    first_at: datetime | None
    last_at: datetime | None
    stores: int
    cities: int
    confirmation_p50_s: float | None
    confirmation_p95_s: float | None
    top_stores: list[StoreRevenue]

    @property
    def average_ticket(self) -> Decimal:
        """Ticket médio: revenue per confirmed payment."""
        if not self.confirmed:
            return Decimal("0.00")
        return (self.revenue / self.confirmed).quantize(Decimal("0.01"))


def payments_summary(store: Store, *, top: int = 5) -> PaymentsSummary:
    [totals] = store.query(_TOTALS_SQL)
    [(p50, p95)] = store.query(_PERCENTILES_SQL[store.dialect])
    tops = [
        StoreRevenue(str(s), str(c), str(u), int(n), from_cents(int(cents)))
        for s, c, u, n, cents in store.query(_TOP_STORES_SQL, (top,))
    ]
    return PaymentsSummary(
        charges=int(totals[0]),
        confirmed=int(totals[1]),
        failed=int(totals[2]),
        expired=int(totals[3]),
        pending=int(totals[4]),
        revenue=from_cents(int(totals[5])),
        first_at=totals[6],
        last_at=totals[7],
        stores=int(totals[8]),
        cities=int(totals[9]),
        confirmation_p50_s=None if p50 is None else float(p50),
        confirmation_p95_s=None if p95 is None else float(p95),
        top_stores=tops,
    )


def stored_event_count(store: Store) -> int:
    [(n,)] = store.query("SELECT count(*) FROM raw_events")
    return int(n)
