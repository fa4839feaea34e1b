"""The sales KPIs of a local day, on DuckDB and PostgreSQL, against figures worked out by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pulso.analytics.sales_kpis import (
    MAX_TREND_DAYS,
    SalesFigures,
    SalesKpiError,
    local_today,
    sales_kpis,
)
from pulso.config import Settings
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import SALES

DAY = date(2026, 11, 20)  # a Friday; São Paulo is UTC−3 (no summer time since 2019)

Sale = tuple[str, datetime, str, str, str, int, int]
"""sale_id, sold_at (UTC), store_id, product, category, quantity, unit price in centavos."""

SALES_ROWS: tuple[Sale, ...] = (
    ("v1", datetime(2026, 11, 20, 12, 5, tzinfo=UTC), "LJ-A", "Café", "Bebidas", 2, 750),
    ("v2", datetime(2026, 11, 20, 12, 40, tzinfo=UTC), "LJ-A", "Pão de queijo", "Padaria", 3, 450),
    ("v3", datetime(2026, 11, 20, 18, 0, tzinfo=UTC), "LJ-B", "Café", "Bebidas", 1, 750),
    # 23:59:59 local on the 20th, and 00:00 local on the 21st: the day's edges
    ("v4", datetime(2026, 11, 21, 2, 59, 59, tzinfo=UTC), "LJ-B", "Bolo", "Padaria", 1, 3990),
    ("v6", datetime(2026, 11, 21, 3, 0, tzinfo=UTC), "LJ-A", "Suco", "Bebidas", 1, 899),
    ("v5", datetime(2026, 11, 20, 2, 30, tzinfo=UTC), "LJ-A", "Café", "Bebidas", 4, 750),  # 19th
    ("v7", datetime(2026, 11, 18, 15, 0, tzinfo=UTC), "LJ-B", "Bolo", "Padaria", 2, 3990),
    ("v8", datetime(2026, 11, 20, 13, 0, tzinfo=UTC), "LJ-B", "Caderno", "Papelaria", 5, 1999),
    # summer time (UTC−2) in January 2019: 12:00 UTC is 10h local
    ("v9", datetime(2019, 1, 15, 12, 0, tzinfo=UTC), "LJ-A", "Café", "Bebidas", 1, 500),
)


def insert_sales(store: Store, rows: Sequence[Sale]) -> None:
    columns: dict[str, list[Any]] = {name: [] for name in SALES.column_names}
    for sale_id, sold_at, store_id, product, category, quantity, unit_cents in rows:
        values: dict[str, Any] = dict.fromkeys(SALES.column_names)
        values.update(
            sale_id=sale_id,
            sold_at=sold_at,
            store_id=store_id,
            seller="Ana",
            product=product,
            category=category,
            quantity=quantity,
            unit_price_cents=unit_cents,
            total_cents=quantity * unit_cents,
            payment_method="pix",
            city="Recife",
            uf="PE",
            source_file="vendas.csv",
        )
        for name in SALES.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.insert_new(SALES, columns)


def figures(sales: int, quantity: int, total: str) -> SalesFigures:
    return SalesFigures(sales, quantity, Decimal(total))


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Iterator[Store]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    opened = open_store(settings_factory(store_url=url))
    insert_sales(opened, SALES_ROWS)
    yield opened
    opened.close()


def test_the_days_totals_ticket_and_last_sale(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY)
    # v1 15,00 + v2 13,50 + v3 7,50 + v4 39,90 + v8 99,95; v5 (19th) and v6 (21st) are out
    assert kpis.totals == figures(5, 12, "175.85")
    assert kpis.revenue == Decimal("175.85") and kpis.sales == 5
    assert kpis.average_ticket == Decimal("35.17")
    assert kpis.last_sale_at == datetime(2026, 11, 21, 2, 59, 59, tzinfo=UTC)


def test_top_products_rank_by_revenue_and_stop_at_top(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY, top=3)
    assert [(p.product, p.figures) for p in kpis.top_products] == [
        ("Caderno", figures(1, 5, "99.95")),
        ("Bolo", figures(1, 1, "39.90")),
        ("Café", figures(2, 3, "22.50")),
    ]


def test_sales_by_category_with_shares(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY)
    assert [(c.category, c.figures) for c in kpis.by_category] == [
        ("Papelaria", figures(1, 5, "99.95")),
        ("Padaria", figures(2, 4, "53.40")),
        ("Bebidas", figures(2, 3, "22.50")),
    ]
    assert [round(c.share, 6) for c in kpis.by_category] == [
        round(9995 / 17585, 6),
        round(5340 / 17585, 6),
        round(2250 / 17585, 6),
    ]


def test_trend_by_local_hour_has_24_rows(store: Store) -> None:
    by_hour = sales_kpis(store, day=DAY).by_hour
    assert [h.hour for h in by_hour] == list(range(24))
    busy = {h.hour: h.figures for h in by_hour if h.figures.sales}
    assert busy == {
        9: figures(2, 5, "28.50"),
        10: figures(1, 5, "99.95"),
        15: figures(1, 1, "7.50"),
        23: figures(1, 1, "39.90"),
    }


def test_trend_by_day_over_a_range_includes_empty_days(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY, start=date(2026, 11, 17), end=date(2026, 11, 22))
    assert (kpis.trend_start, kpis.trend_end) == (date(2026, 11, 17), date(2026, 11, 22))
    assert [(d.day.day, d.figures) for d in kpis.by_day] == [
        (17, figures(0, 0, "0.00")),
        (18, figures(1, 2, "79.80")),
        (19, figures(1, 4, "30.00")),
        (20, figures(5, 12, "175.85")),
        (21, figures(1, 1, "8.99")),
        (22, figures(0, 0, "0.00")),
    ]


def test_the_default_trend_is_the_30_days_ending_on_the_day(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY)
    assert (kpis.trend_start, kpis.trend_end) == (DAY - timedelta(days=29), DAY)
    assert len(kpis.by_day) == 30
    assert sum(d.figures.sales for d in kpis.by_day) == 7  # v1..v8 but v6 (the 21st)


def test_one_store(store: Store) -> None:
    kpis = sales_kpis(store, day=DAY, store_id="LJ-B")
    # v3 7,50 + v4 39,90 + v8 99,95 = 147,35 / 3 = 49,1166… → 49,12
    assert kpis.totals == figures(3, 7, "147.35")
    assert kpis.average_ticket == Decimal("49.12")
    assert [c.category for c in kpis.by_category] == ["Papelaria", "Padaria", "Bebidas"]
    assert [(d.day.day, d.figures.sales) for d in kpis.by_day if d.figures.sales] == [
        (18, 1),
        (20, 3),
    ]


def test_summer_time_hours_are_local(store: Store) -> None:
    kpis = sales_kpis(store, day=date(2019, 1, 15))
    assert [h.hour for h in kpis.by_hour if h.figures.sales] == [10]  # UTC−2 then


def test_a_day_without_sales_is_zeros(store: Store) -> None:
    kpis = sales_kpis(store, day=date(2026, 12, 25), store_id="LJ-A")
    assert kpis.totals == figures(0, 0, "0.00")
    assert kpis.average_ticket is None and kpis.last_sale_at is None
    assert kpis.top_products == [] and kpis.by_category == []
    assert len(kpis.by_hour) == 24 and all(not h.figures.sales for h in kpis.by_hour)


def test_the_default_day_is_today_in_sao_paulo(store: Store) -> None:
    before = local_today()
    kpis = sales_kpis(store)
    assert kpis.day in {before, local_today()}
    assert local_today(datetime(2026, 11, 21, 2, 59, tzinfo=UTC)) == DAY


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": date(2026, 11, 21), "end": date(2026, 11, 20)}, "swap from and to"),
        ({"start": DAY - timedelta(days=MAX_TREND_DAYS)}, f"at most {MAX_TREND_DAYS} days"),
        ({"top": 0}, "top must be between 1 and"),
        ({"top": 51}, "top must be between 1 and"),
    ],
)
def test_bad_arguments_say_what_to_change(
    store: Store, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(SalesKpiError, match=message):
        sales_kpis(store, day=DAY, **arguments)
