"""Page "Vendas": the day's sales KPIs from ``GET /v1/kpis/sales``, refreshing by itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import streamlit as st

from pulso.dashboard.charts import bar_chart
from pulso.dashboard.client import ApiClient, DashboardApiError, SalesKpis
from pulso.dashboard.settings import DashboardSettings
from pulso.dashboard.widgets import day_input, show_api_error, store_input, updated_caption
from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count, format_date, format_day_heading, format_percent
from pulso.domain.timefmt import DISPLAY_ZONE

TREND_DAYS: Final = (7, 30, 90)
TOP_CHOICES: Final = (5, 10, 20)


@dataclass(frozen=True, slots=True)
class SalesQuery:
    """What the page asks the API: a day, maybe one store, the trend length, the top N."""

    day: date
    store: str | None
    trend_days: int
    top: int

    @property
    def trend_start(self) -> date:
        return self.day - timedelta(days=self.trend_days - 1)


def render() -> None:
    """The whole page: controls in the sidebar, the KPIs in a fragment that reruns alone."""
    settings = DashboardSettings()
    st.title("Vendas")
    query = _controls()
    live = st.fragment(_show_kpis, run_every=settings.refresh_s)
    live(settings, query)


def _controls() -> SalesQuery:
    with st.sidebar:
        day = day_input("vendas")
        store = store_input("vendas")
        trend_days = st.selectbox(
            "Tendência por dia",
            TREND_DAYS,
            index=1,
            format_func=lambda n: f"últimos {n} dias",
            key="vendas_tendencia",
        )
        top = st.selectbox("Produtos no ranking", TOP_CHOICES, key="vendas_top")
    return SalesQuery(day, store, trend_days, top)


def _show_kpis(settings: DashboardSettings, query: SalesQuery) -> None:
    try:
        with ApiClient.from_settings(settings) as api:
            kpis = api.sales(
                query.day, store=query.store, start=query.trend_start, end=query.day, top=query.top
            )
    except DashboardApiError as e:
        show_api_error(e)
        return
    where = f" · loja {kpis.store}" if kpis.store else ""
    st.subheader(f"{format_day_heading(kpis.day)}{where}")
    updated_caption(settings.refresh_s, _last_sale_text(kpis))
    _metrics(kpis)
    if not kpis.sales:
        st.info(f"Nenhuma venda registrada em {format_date(kpis.day)}.")
    else:
        _products_and_categories(kpis)
        st.markdown("#### Tendência por hora")
        st.vega_lite_chart(_hour_chart(kpis), width="stretch")
    st.markdown(f"#### Tendência por dia ({format_date(kpis.start)} a {format_date(kpis.end)})")
    st.vega_lite_chart(_day_chart(kpis), width="stretch")


def _last_sale_text(kpis: SalesKpis) -> str:
    if kpis.last_sale_at is None:
        return ""
    at = kpis.last_sale_at.astimezone(DISPLAY_ZONE)
    return f"última venda às {at:%H:%M}"


def _metrics(kpis: SalesKpis) -> None:
    total, count, ticket, items = st.columns(4)
    total.metric("Total do dia", format_brl(kpis.total))
    count.metric("Vendas", format_count(kpis.sales))
    ticket.metric(
        "Ticket médio",
        "—" if kpis.average_ticket is None else format_brl(kpis.average_ticket),
        help="Total do dia dividido pelo número de vendas",
    )
    items.metric("Itens vendidos", format_count(kpis.quantity))


def _products_and_categories(kpis: SalesKpis) -> None:
    products, categories = st.columns(2)
    with products:
        st.markdown("#### Top produtos")
        st.table(
            [
                {
                    "Nº": str(rank),
                    "Produto": p.product,
                    "Qtd.": format_count(p.quantity),
                    "Vendas": format_count(p.sales),
                    "Total": format_brl(p.total),
                }
                for rank, p in enumerate(kpis.top_products, start=1)
            ],
            hide_index=True,
        )
    with categories:
        st.markdown("#### Vendas por categoria")
        st.table(
            [
                {
                    "Categoria": c.category,
                    "Vendas": format_count(c.sales),
                    "Total": format_brl(c.total),
                    "Participação": format_percent(c.share * 100),
                }
                for c in kpis.by_category
            ],
            hide_index=True,
        )


def _hour_chart(kpis: SalesKpis) -> dict[str, object]:
    rows = [
        {
            "Hora": f"{h.hour:02d}h",
            "total": float(h.total),
            "Total": format_brl(h.total),
            "Vendas": format_count(h.sales),
        }
        for h in kpis.by_hour
    ]
    return bar_chart(rows, x="Hora", y="total", tooltip=("Hora", "Vendas", "Total"), y_title="R$")


def _day_chart(kpis: SalesKpis) -> dict[str, object]:
    rows = [
        {
            "Dia": f"{d.day:%d/%m}",
            "Data": format_date(d.day),
            "total": float(d.total),
            "Total": format_brl(d.total),
            "Vendas": format_count(d.sales),
        }
        for d in kpis.by_day
    ]
    return bar_chart(rows, x="Dia", y="total", tooltip=("Data", "Vendas", "Total"), y_title="R$")
