"""The order queries and the orders processor on DuckDB and PostgreSQL, against figures worked
out by hand from eight orders (local time −03:00; two of them placed late in the evening,
which is the next day in UTC)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from order_rows import ORDERS, order, process

from pulso.analytics.order_queries import (
    QUERIES,
    OrderQueryError,
    UnknownQueryError,
    result_from_document,
    run_query,
)
from pulso.store.protocol import Store

D = Decimal


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        from pulso.store.duckdb import DuckDBStore

        opened: Store = DuckDBStore(tmp_path / "orders.duckdb")
    else:
        from pulso.store.postgres import PostgresStore

        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def filled(store: Store) -> Store:
    # o2 and o5 arrive first as Pendente, then change: the queries see their latest status.
    early = [order(ORDERS[1], status="Pendente"), order(ORDERS[4], status="Pendente")]
    process(store, early)
    later = [order(values, later_h=1 if values[0] in ("o2", "o5") else 0) for values in ORDERS]
    process(store, later)
    return store


def rows(store: Store, name: str, **kwargs: object) -> list[tuple[object, ...]]:
    return run_query(store, name, **kwargs).rows  # type: ignore[arg-type]


def test_top_products_by_units_of_paid_orders(filled: Store) -> None:
    assert rows(filled, "top-products") == [
        (1, "Ração", "Pet Shop", 2, 5, D("100.00")),
        (2, "Camiseta", "Vestuário", 2, 3, D("150.00")),
        (3, "Fone", "Eletrônicos", 1, 1, D("150.00")),
    ]
    assert [r[1] for r in rows(filled, "top-products", limit=2)] == ["Ração", "Camiseta"]


def test_top_cities_by_revenue_with_ticket(filled: Store) -> None:
    assert rows(filled, "top-cities") == [
        (1, "São Paulo", "SP", "Sudeste", 2, D("200.00"), D("100.00")),
        (2, "Recife", "PE", "Nordeste", 2, D("120.00"), D("60.00")),
        (3, "Curitiba", "PR", "Sul", 1, D("80.00"), D("80.00")),
    ]


def test_top_products_by_region_limits_each_region(filled: Store) -> None:
    assert rows(filled, "top-products-by-region", limit=1) == [
        ("Nordeste", 1, "Camiseta", "Vestuário", 1, 2, D("100.00")),
        ("Sudeste", 1, "Fone", "Eletrônicos", 1, 1, D("150.00")),  # tie on units: revenue
        ("Sul", 1, "Ração", "Pet Shop", 1, 4, D("80.00")),
    ]
    two = rows(filled, "top-products-by-region", limit=2)
    assert [(r[0], r[1], r[2]) for r in two] == [
        ("Nordeste", 1, "Camiseta"),
        ("Nordeste", 2, "Ração"),
        ("Sudeste", 1, "Fone"),
        ("Sudeste", 2, "Camiseta"),
        ("Sul", 1, "Ração"),
    ]


def test_revenue_by_category_with_shares(filled: Store) -> None:
    assert rows(filled, "revenue-by-category") == [
        ("Eletrônicos", 1, 1, D("150.00"), 37.5, 37.5, D("150.00")),
        ("Vestuário", 2, 3, D("150.00"), 37.5, 75.0, D("75.00")),
        ("Pet Shop", 2, 5, D("100.00"), 25.0, 100.0, D("50.00")),
    ]
    # a limit cuts the rows, not the whole the shares are taken of
    assert rows(filled, "revenue-by-category", limit=1)[0][4] == 37.5


def test_channels_count_every_order(filled: Store) -> None:
    assert rows(filled, "channels") == [
        ("Site", 3, 3, D("270.00"), D("90.00"), 100.0, 0.0),
        ("App", 3, 2, D("130.00"), D("65.00"), 66.67, 33.33),
        ("Marketplace", 2, 0, D("0.00"), None, 0.0, 50.0),
    ]


def test_status_orders_and_value(filled: Store) -> None:
    assert rows(filled, "status") == [
        ("Pago", 5, D("400.00"), 62.5, 40.0),
        ("Cancelado", 1, D("150.00"), 12.5, 15.0),
        ("Pendente", 1, D("300.00"), 12.5, 30.0),
        ("Reembolsado", 1, D("150.00"), 12.5, 15.0),
    ]


def test_periods_are_local_days(filled: Store) -> None:
    # o2 (10/11 23:30) and o7 (13/11 00:30) are 11/11 and 13/11 in UTC: outside, and inside
    middle = rows(filled, "status", start=date(2026, 11, 11), end=date(2026, 11, 12))
    assert middle == [
        ("Pago", 2, D("230.00"), 50.0, 33.82),  # of R$ 680,00
        ("Cancelado", 1, D("150.00"), 25.0, 22.06),
        ("Pendente", 1, D("300.00"), 25.0, 44.12),
    ]
    last = rows(filled, "status", start=date(2026, 11, 13))
    assert [(r[0], r[1]) for r in last] == [("Pago", 1), ("Reembolsado", 1)]
    first = rows(filled, "top-cities", end=date(2026, 11, 10))
    assert [(r[1], r[5]) for r in first] == [("Recife", D("100.00")), ("São Paulo", D("50.00"))]
    assert rows(filled, "channels", start=date(2027, 1, 1)) == []


def test_every_query_round_trips_through_its_document(filled: Store) -> None:
    for name in QUERIES:
        result = run_query(filled, name, start=date(2026, 11, 1), end=date(2026, 11, 30))
        assert result_from_document(result.document()) == result
        assert len(result.formatted_rows()) == len(result.rows)


def test_bad_arguments_are_refused_before_any_sql(store: Store) -> None:
    with pytest.raises(UnknownQueryError, match="top-products"):
        run_query(store, "top-products; DROP TABLE orders")
    with pytest.raises(OrderQueryError, match="limit must be 1 to 1000"):
        run_query(store, "status", limit=0)
    with pytest.raises(OrderQueryError, match="after to"):
        run_query(store, "status", start=date(2026, 11, 2), end=date(2026, 11, 1))
    assert run_query(store, "status").rows == []


def test_the_latest_version_of_an_order_wins_whatever_the_arrival_order(store: Store) -> None:
    base = ORDERS[3]  # o4, Pendente
    pending, paid = order(base), order(base, status="Pago", later_h=2)
    refunded = order(base, status="Reembolsado", later_h=50)
    process(store, [refunded])
    process(store, [paid, pending])  # older versions arrive late: ignored
    process(store, [refunded, paid])  # a replay
    assert rows(store, "status") == [("Reembolsado", 1, D("300.00"), 100.0, 100.0)]
    [(updated_at, count)] = store.query("SELECT max(updated_at), count(*) FROM orders")
    assert (updated_at, count) == (refunded.updated_at, 1)


def test_within_a_batch_the_latest_version_wins(store: Store) -> None:
    base = ORDERS[0]
    process(store, [order(base, status="Reembolsado", later_h=5), order(base, status="Pendente")])
    assert rows(store, "status")[0][0] == "Reembolsado"
    # same updated_at, different status: the later stage of the order's life wins
    process(store, [order(base, status="Pago", later_h=5)])
    assert rows(store, "status")[0][0] == "Reembolsado"
