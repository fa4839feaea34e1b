"""Page "Pagamentos PIX": the day's confirmed volume and confirmation time
(``GET /v1/kpis/payments``, refreshing by itself) and a heatmap picker
(``GET /v1/analytics/heatmaps``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import streamlit as st

from pulso.dashboard.charts import bar_chart, heatmap_chart
from pulso.dashboard.client import (
    ApiClient,
    DashboardApiError,
    HeatmapGrid,
    HeatmapInfo,
    PaymentKpis,
)
from pulso.dashboard.settings import DashboardSettings
from pulso.dashboard.widgets import (
    DATE_FORMAT,
    day_input,
    show_api_error,
    store_input,
    updated_caption,
)
from pulso.domain.money import format_brl
from pulso.domain.ptbr import (
    format_count,
    format_date,
    format_day_heading,
    format_duration_s,
    format_period,
)

DEFAULT_HEATMAP: Final = "semana_count"
HEATMAP_DAYS: Final = 7


def render() -> None:
    """The whole page: controls in the sidebar, live figures, then the heatmap picker."""
    settings = DashboardSettings()
    st.title("Pagamentos PIX")
    with st.sidebar:
        day = day_input("pix")
        store = store_input("pix")
    live = st.fragment(_show_payments, run_every=settings.refresh_s)
    live(settings, day, store)
    st.divider()
    st.markdown("### Mapas de calor")
    _heatmap_picker(settings, day, store)


def _show_payments(settings: DashboardSettings, day: date, store: str | None) -> None:
    try:
        with ApiClient.from_settings(settings) as api:
            kpis = api.payments(day, store=store)
    except DashboardApiError as e:
        show_api_error(e)
        return
    where = f" · loja {kpis.store}" if kpis.store else ""
    st.subheader(f"{format_day_heading(kpis.day)}{where}")
    updated_caption(settings.refresh_s)
    _metrics(kpis)
    if not kpis.payments:
        st.info(f"Nenhum pagamento PIX confirmado em {format_date(kpis.day)}.")
        return
    st.markdown("#### Volume confirmado por hora")
    st.vega_lite_chart(_hour_chart(kpis), width="stretch")


def _metrics(kpis: PaymentKpis) -> None:
    volume, count, ticket = st.columns(3)
    volume.metric("Volume confirmado", format_brl(kpis.total))
    count.metric("Pagamentos confirmados", format_count(kpis.payments))
    ticket.metric(
        "Ticket médio", "—" if kpis.average_ticket is None else format_brl(kpis.average_ticket)
    )
    mean, p95, lost = st.columns(3)
    mean.metric("Tempo médio de confirmação", format_duration_s(kpis.confirmation_mean_s))
    p95.metric(
        "Confirmação (95% em até)",
        format_duration_s(kpis.confirmation_p95_s),
        help="95% dos pagamentos foram confirmados em até este tempo",
    )
    lost.metric("Falhas / expirados", f"{format_count(kpis.failed)} / {format_count(kpis.expired)}")


def _hour_chart(kpis: PaymentKpis) -> dict[str, object]:
    rows = [
        {
            "Hora": f"{h.hour:02d}h",
            "total": float(h.total),
            "Total": format_brl(h.total),
            "Pagamentos": format_count(h.payments),
        }
        for h in kpis.by_hour
    ]
    return bar_chart(
        rows, x="Hora", y="total", tooltip=("Hora", "Pagamentos", "Total"), y_title="R$"
    )


def _heatmap_picker(settings: DashboardSettings, day: date, store: str | None) -> None:
    try:
        with ApiClient.from_settings(settings) as api:
            listed = api.heatmaps()
            choice = _choose_heatmap(listed)
            period = _period(day)
            if choice is None or period is None:
                return
            grid = api.heatmap(choice.name, start=period[0], end=period[1], store=store)
    except DashboardApiError as e:
        show_api_error(e)
        return
    _show_grid(grid)


def _choose_heatmap(listed: list[HeatmapInfo]) -> HeatmapInfo | None:
    if not listed:
        st.info("A API não oferece mapas de calor.")
        return None
    names = [h.name for h in listed]
    titles = {h.name: h.title for h in listed}
    default = names.index(DEFAULT_HEATMAP) if DEFAULT_HEATMAP in names else 0
    name = st.selectbox(
        "Mapa de calor", names, index=default, format_func=titles.__getitem__, key="pix_mapa"
    )
    return listed[names.index(name)]


def _period(day: date) -> tuple[date, date] | None:
    chosen = st.date_input(
        "Período",
        value=(day - timedelta(days=HEATMAP_DAYS - 1), day),
        format=DATE_FORMAT,
        key="pix_periodo",
    )
    if isinstance(chosen, tuple) and len(chosen) == 2:
        first, last = chosen
        if isinstance(first, date) and isinstance(last, date):
            return first, last
    st.info("Escolha o primeiro e o último dia do período.")
    return None


def _show_grid(grid: HeatmapGrid) -> None:
    st.caption(f"{grid.title} · {format_period(grid.start, grid.end)}")
    if not any(v is not None for row in grid.values for v in row):
        st.info("Nenhum pagamento confirmado no período.")
        return
    st.vega_lite_chart(heatmap_chart(grid), width="stretch")
