"""The live sales KPIs of a local day: total, number of sales, ticket médio, top products,
sales by category, and the trend by hour of that day and by day over a range. In SQL.

Definitions:

- A sale belongs to the local date and hour (America/Sao_Paulo) of its ``sold_at``.
- Money is ``total_cents`` as exact reais; ticket médio is total / sales rounded to the
  centavo (half even), None when there was no sale.
- Top products rank by revenue (ties: more units, then name); categories by revenue too.

Converting every sale's time to local time is the costly part of a trend, so the sales are
first summed per *UTC* hour (integer arithmetic) and only those hours are converted: São
Paulo's offset from UTC has been whole hours since 1914, so a UTC hour lies in one local hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from pulso.analytics.heatmap_sql import LOCAL_ZONE
from pulso.domain.money import CENT, from_cents
from pulso.domain.timefmt import local_midnight
from pulso.errors import PulsoError
from pulso.store.protocol import Dialect, Store

DEFAULT_TREND_DAYS: Final = 30
MAX_TREND_DAYS: Final = 366
DEFAULT_TOP: Final = 5
MAX_TOP: Final = 50
NO_PRODUCT: Final = "sem produto"
NO_CATEGORY: Final = "sem categoria"

_ZONE: Final = ZoneInfo(LOCAL_ZONE)
_UTC_HOUR: Final[dict[Dialect, str]] = {
    "duckdb": "epoch_us(sold_at) // 3600000000",
    "postgresql": "CAST(floor(extract(epoch FROM sold_at) / 3600) AS BIGINT)",
}
_LOCAL_HOUR_START: Final[dict[Dialect, str]] = {
    "duckdb": f"timezone('{LOCAL_ZONE}', to_timestamp(utc_hour * 3600))",
    "postgresql": f"(to_timestamp(utc_hour * 3600) AT TIME ZONE '{LOCAL_ZONE}')",
}

# Sales per UTC hour and category; then, per local hour, per category and in all.
_DAY_SQL: Final = """WITH parts AS (
    SELECT {utc_hour} AS utc_hour, category, count(*) AS n, sum(quantity) AS q,
           sum(total_cents) AS s, max(sold_at) AS last_at
    FROM sales WHERE {where} GROUP BY 1, 2
), hours AS (
    SELECT utc_hour, CAST(extract(hour FROM {local}) AS INTEGER) AS h
    FROM (SELECT DISTINCT utc_hour FROM parts) AS u
)
SELECT GROUPING(h, category), h, category, sum(n), sum(q), sum(s), max(last_at)
FROM parts JOIN hours USING (utc_hour)
GROUP BY GROUPING SETS ((h), (category), ())"""

_TOP_SQL: Final = """SELECT product, count(*), sum(quantity), sum(total_cents)
FROM sales WHERE {where}
GROUP BY product ORDER BY sum(total_cents) DESC, sum(quantity) DESC, product LIMIT %s"""

_TREND_SQL: Final = """WITH parts AS (
    SELECT {utc_hour} AS utc_hour, count(*) AS n, sum(quantity) AS q, sum(total_cents) AS s
    FROM sales WHERE {where} GROUP BY 1
)
SELECT CAST({local} AS DATE) AS d, sum(n), sum(q), sum(s) FROM parts GROUP BY 1"""

# GROUPING(h, category): 1 bits for the columns not grouped by, first column highest.
_BY_HOUR: Final = 0b01
_BY_CATEGORY: Final = 0b10
_TOTAL: Final = 0b11


class SalesKpiError(PulsoError):
    """Sales KPIs were asked for with arguments that cannot produce them."""


@dataclass(frozen=True, slots=True)
class SalesFigures:
    """Sales, units and money of one group of sales (an hour, a day, a category...)."""

    sales: int
    quantity: int
    revenue: Decimal

    @property
    def average_ticket(self) -> Decimal | None:
        """Revenue per sale, rounded to the centavo; None when there was no sale."""
        return (self.revenue / self.sales).quantize(CENT) if self.sales else None


NO_SALES: Final = SalesFigures(0, 0, from_cents(0))


@dataclass(frozen=True, slots=True)
class ProductSales:
    product: str
    figures: SalesFigures


@dataclass(frozen=True, slots=True)
class CategorySales:
    category: str
    figures: SalesFigures
    share: float
    """This category's fraction of the day's revenue (0..1; 0 when the day sold nothing)."""


@dataclass(frozen=True, slots=True)
class HourSales:
    hour: int
    """Local hour of the day, 0..23."""
    figures: SalesFigures


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date
    figures: SalesFigures


@dataclass(frozen=True, slots=True)
class SalesKpis:
    """The KPIs of one local day, and the daily trend over ``trend_start``..``trend_end``."""

    day: date
    store_id: str | None
    totals: SalesFigures
    last_sale_at: datetime | None
    top_products: list[ProductSales]
    by_category: list[CategorySales]
    """Highest revenue first."""
    by_hour: list[HourSales]
    """24 rows, hours with no sale included with zeros."""
    trend_start: date
    trend_end: date
    by_day: list[DaySales]
    """One row per local date of the trend range, days with no sale included with zeros."""

    @property
    def revenue(self) -> Decimal:
        return self.totals.revenue

    @property
    def sales(self) -> int:
        return self.totals.sales

    @property
    def average_ticket(self) -> Decimal | None:
        return self.totals.average_ticket


def local_today(now: datetime | None = None) -> date:
    """Today's date in America/Sao_Paulo (``now`` defaults to the clock)."""
    return (now or datetime.now(UTC)).astimezone(_ZONE).date()


def trend_range(day: date, start: date | None, end: date | None) -> tuple[date, date]:
    """The trend's dates: ``end`` defaults to ``day``, ``start`` to 30 days up to ``end``."""
    last = end or day
    first = start or last - timedelta(days=DEFAULT_TREND_DAYS - 1)
    if first > last:
        raise SalesKpiError(f"trend range starts {first} after it ends {last}: swap from and to")
    days = (last - first).days + 1
    if days > MAX_TREND_DAYS:
        raise SalesKpiError(
            f"trend range covers {days} days; ask for at most {MAX_TREND_DAYS} days"
        )
    return first, last


def sales_kpis(
    store: Store,
    *,
    day: date | None = None,
    start: date | None = None,
    end: date | None = None,
    store_id: str | None = None,
    top: int = DEFAULT_TOP,
) -> SalesKpis:
    """The KPIs of local ``day`` (default today) for every store or one, with the daily
    trend over ``start``..``end`` inclusive (default: the 30 days ending on ``day``)."""
    if not 1 <= top <= MAX_TOP:
        raise SalesKpiError(f"top must be between 1 and {MAX_TOP}, not {top}")
    the_day = day or local_today()
    first, last = trend_range(the_day, start, end)
    where, params = _where(the_day, the_day, store_id)
    totals, last_at, by_hour, by_category = _query_day(store, where, params)
    return SalesKpis(
        day=the_day,
        store_id=store_id,
        totals=totals,
        last_sale_at=last_at,
        top_products=_query_top(store, where, params, top),
        by_category=by_category,
        by_hour=by_hour,
        trend_start=first,
        trend_end=last,
        by_day=_query_trend(store, first, last, store_id),
    )


def _where(first: date, last: date, store_id: str | None) -> tuple[str, list[Any]]:
    """Sales of local dates ``first``..``last``, optionally of one store."""
    where = ["sold_at >= %s", "sold_at < %s"]
    params: list[Any] = [local_midnight(first), local_midnight(last + timedelta(days=1))]
    if store_id is not None:
        where.append("store_id = %s")
        params.append(store_id)
    return " AND ".join(where), params


def _figures(n: Any, quantity: Any, cents: Any) -> SalesFigures:
    """Figures from SQL sums (NULL when no row; PostgreSQL sums bigints as numeric)."""
    return SalesFigures(int(n or 0), int(quantity or 0), from_cents(int(cents or 0)))


def _query_day(
    store: Store, where: str, params: Sequence[Any]
) -> tuple[SalesFigures, datetime | None, list[HourSales], list[CategorySales]]:
    sql = _DAY_SQL.format(
        utc_hour=_UTC_HOUR[store.dialect], local=_LOCAL_HOUR_START[store.dialect], where=where
    )
    totals, last_at = NO_SALES, None
    hours: dict[int, SalesFigures] = {}
    categories: list[tuple[str, SalesFigures]] = []
    for mask, hour, category, n, quantity, cents, last in store.query(sql, params):
        figures = _figures(n, quantity, cents)
        if mask == _TOTAL:
            totals, last_at = figures, last
        elif mask == _BY_HOUR:
            hours[int(hour)] = figures
        elif mask == _BY_CATEGORY:
            categories.append((NO_CATEGORY if category is None else str(category), figures))
    by_hour = [HourSales(h, hours.get(h, NO_SALES)) for h in range(24)]
    return totals, last_at, by_hour, _categories(categories, totals.revenue)


def _categories(rows: list[tuple[str, SalesFigures]], revenue: Decimal) -> list[CategorySales]:
    ranked = sorted(rows, key=lambda r: (-r[1].revenue, -r[1].quantity, r[0]))
    return [
        CategorySales(name, figures, float(figures.revenue / revenue) if revenue else 0.0)
        for name, figures in ranked
    ]


def _query_top(store: Store, where: str, params: Sequence[Any], top: int) -> list[ProductSales]:
    rows = store.query(_TOP_SQL.format(where=where), [*params, top])
    return [
        ProductSales(NO_PRODUCT if product is None else str(product), _figures(n, q, cents))
        for product, n, q, cents in rows
    ]


def _query_trend(store: Store, first: date, last: date, store_id: str | None) -> list[DaySales]:
    where, params = _where(first, last, store_id)
    sql = _TREND_SQL.format(
        utc_hour=_UTC_HOUR[store.dialect], local=_LOCAL_HOUR_START[store.dialect], where=where
    )
    found = {_as_date(d): _figures(n, q, cents) for d, n, q, cents in store.query(sql, params)}
    days = (last - first).days + 1
    return [
        DaySales(first + timedelta(days=i), found.get(first + timedelta(days=i), NO_SALES))
        for i in range(days)
    ]


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    assert isinstance(value, date)
    return value
