"""Page "Pedidos": the order history's analyses from ``GET /v1/query/{name}``, refreshing by
itself: totals by status, top products and cities, revenue by category, channels, regions."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import streamlit as st

from pulso.analytics.order_queries import QueryResult
from pulso.dashboard.charts import bar_chart
from pulso.dashboard.client import DashboardApiError
from pulso.dashboard.orders_client import OrdersApiClient
from pulso.dashboard.settings import DashboardSettings
from pulso.dashboard.widgets import show_api_error, today, updated_caption
from pulso.domain.money import CENT, format_brl
from pulso.domain.ptbr import format_count, format_percent

PERIODS: Final[dict[str, int | None]] = {
    "Todo o período": None,
    "Últimos 7 dias": 7,
    "Últimos 30 dias": 30,
    "Últimos 90 dias": 90,
}
TOP_CHOICES: Final = (5, 10, 20)
ALL_ROWS: Final = 100


@dataclass(frozen=True, slots=True)
class OrdersQuery:
    """What the page asks the API: a period (None: everything) and the ranking size."""

    start: date | None
    end: date | None
    top: int


def render() -> None:
    settings = DashboardSettings()
    st.title("Pedidos")
    query = _controls()
    live = st.fragment(_show, run_every=settings.refresh_s)
    live(settings, query)


def _controls() -> OrdersQuery:
    with st.sidebar:
        period = st.selectbox("Período", list(PERIODS), key="pedidos_periodo")
        top = st.selectbox("Itens nos rankings", TOP_CHOICES, index=1, key="pedidos_top")
    days = PERIODS[period]
    if days is None:
        return OrdersQuery(None, None, top)
    end = today()
    return OrdersQuery(end - timedelta(days=days - 1), end, top)


def _show(settings: DashboardSettings, query: OrdersQuery) -> None:
    try:
        with closing(OrdersApiClient.for_settings(settings)) as api:
            answers = {
                name: api.order_query(name, start=query.start, end=query.end, limit=limit)
                for name, limit in (
                    ("status", ALL_ROWS),
                    ("channels", ALL_ROWS),
                    ("revenue-by-category", ALL_ROWS),
                    ("top-products", query.top),
                    ("top-cities", query.top),
                    ("top-products-by-region", min(query.top, 5)),
                )
            }
    except DashboardApiError as e:
        show_api_error(e)
        return
    status = answers["status"]
    st.subheader(status.period_text().capitalize())
    updated_caption(settings.refresh_s)
    _metrics(status)
    if not status.rows:
        st.info("Nenhum pedido no período.")
        return
    products, cities = st.columns(2)
    with products:
        _table("Produtos mais vendidos", answers["top-products"])
    with cities:
        _table("Cidades com maior receita", answers["top-cities"])
    categories = answers["revenue-by-category"]
    st.markdown("#### Receita por categoria")
    st.vega_lite_chart(_category_chart(categories), width="stretch")
    _table(None, categories)
    _table("Desempenho por canal", answers["channels"])
    _table("Pedidos por status", status)
    _table("Produtos mais vendidos por região", answers["top-products-by-region"])


def _metrics(status: QueryResult) -> None:
    by_status = {row[0]: row for row in status.rows}
    orders = sum(int(row[1]) for row in status.rows)
    paid = by_status.get("Pago")
    paid_orders = int(paid[1]) if paid else 0
    paid_value = Decimal(paid[2]) if paid else Decimal(0)
    lost = sum(int(by_status[s][1]) for s in ("Cancelado", "Reembolsado") if s in by_status)
    # the revenue runs to millions: give it the room to show every digit
    total, revenue, ticket, lost_share = st.columns([1, 1.6, 1.1, 1.3])
    total.metric("Pedidos", format_count(orders))
    revenue.metric("Receita paga", format_brl(paid_value))
    ticket.metric(
        "Ticket médio",
        format_brl((paid_value / paid_orders).quantize(CENT)) if paid_orders else "—",
        help="Receita dos pedidos pagos dividida pelo número de pedidos pagos",
    )
    lost_share.metric(
        "Cancelados e reembolsados", format_percent(lost * 100 / orders) if orders else "—"
    )


def _table(title: str | None, result: QueryResult) -> None:
    if title:
        st.markdown(f"#### {title}")
    labels = [c.label for c in result.columns]
    st.table(
        [dict(zip(labels, row, strict=True)) for row in result.formatted_rows()], hide_index=True
    )


def _category_chart(result: QueryResult) -> dict[str, object]:
    names = [c.name for c in result.columns]
    category, revenue, share = (names.index(n) for n in ("category", "revenue", "share"))
    rows = [
        {
            "Categoria": row[category],
            "receita": float(row[revenue]),
            "Receita": format_brl(row[revenue]),
            "Participação": format_percent(float(row[share])),
        }
        for row in result.rows
    ]
    return bar_chart(
        rows,
        x="Categoria",
        y="receita",
        tooltip=("Categoria", "Receita", "Participação"),
        y_title="R$",
    )
