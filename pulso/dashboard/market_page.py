"""Page "Marketplace": Mercado Livre best-seller trends per category (``GET /v1/market/trends``):
the ranking now with each product's move and rank velocity, entrants and leavers, and the
latest top-N alerts."""

from __future__ import annotations

from typing import Final

import streamlit as st

from pulso.dashboard.client import DashboardApiError
from pulso.dashboard.market_client import CategoryTrends, MarketApiClient, MarketTrends, TrendRow
from pulso.dashboard.settings import DashboardSettings
from pulso.dashboard.widgets import show_api_error
from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count, format_decimal
from pulso.domain.timefmt import format_local

WINDOWS: Final = {"Últimas 24 horas": 1.0, "Últimos 7 dias": 7.0, "Últimos 30 dias": 30.0}
STATUS: Final = {
    "rising": "▲ subiu",
    "falling": "▼ caiu",
    "steady": "= estável",
    "new": "★ entrou",
    "left": "✕ saiu",
}


def render() -> None:
    settings = DashboardSettings()
    st.title("Marketplace")
    st.caption("Mais vendidos do Mercado Livre por categoria: quem sobe, quem cai, quem entra.")
    with st.sidebar:
        label = st.selectbox("Período", list(WINDOWS), index=1, key="market_periodo")
        category = st.text_input(
            "Categoria", placeholder="todas", key="market_categoria", help="Ex.: MLB1051"
        ).strip()
    try:
        with MarketApiClient.from_settings(settings) as api:
            trends = api.market_trends(
                days=WINDOWS[label or "Últimos 7 dias"], category=category or None
            )
    except DashboardApiError as e:
        show_api_error(e)
        return
    _show(trends)


def _show(trends: MarketTrends) -> None:
    if not trends.categories:
        st.info("Nenhum ranking no período. Rode `pulso market sync` para tirar um retrato.")
        return
    for report in trends.categories:
        _category(report)
    if trends.alerts:
        st.markdown("### Alertas de top N")
        for alert in trends.alerts:
            st.warning(alert.message, icon="🔔")


def _category(report: CategoryTrends) -> None:
    st.subheader(f"Categoria {report.category_id}")
    st.caption(
        f"{format_count(report.snapshots)} retratos, de {format_local(report.first_at)} "
        f"a {format_local(report.last_at)}"
    )
    rising, falling, entered, left = st.columns(4)
    rising.metric("Subiram", format_count(report.rising))
    falling.metric("Caíram", format_count(report.falling))
    entered.metric("Entraram", format_count(report.entered))
    left.metric("Saíram", format_count(report.left))
    st.table([_row(r) for r in report.rows])


def _row(row: TrendRow) -> dict[str, str]:
    def pos(value: int | None) -> str:
        return "—" if value is None else f"{value}º"

    return {
        "Agora": pos(row.position_now),
        "Antes": pos(row.position_before),
        "Variação": "—" if row.change is None else f"{row.change:+d}" if row.change else "0",
        "Posições/dia": "—"
        if row.velocity_per_day is None
        else format_decimal(row.velocity_per_day, signed=True),
        "Produto": row.title,
        "Preço": "—" if row.price_now is None else format_brl(row.price_now),
        "Situação": STATUS[row.status],
    }
