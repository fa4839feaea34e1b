"""Page "Fraude": the period's fraud rate (payments named by a fraud alert / payments
created), a map of Brazil by UF and the alert feed, from ``GET /v1/alerts/summary`` and
``GET /v1/alerts`` (refreshing by itself)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Final

import streamlit as st

from pulso.dashboard.brazil import UF_CENTRES
from pulso.dashboard.charts import PT_BR_NUMBERS, Spec
from pulso.dashboard.client import DashboardApiError
from pulso.dashboard.fraud_client import AlertItem, FraudApiClient, FraudSummary
from pulso.dashboard.settings import DashboardSettings
from pulso.dashboard.widgets import DATE_FORMAT, show_api_error, today, updated_caption
from pulso.domain.ptbr import format_count, format_percent, format_period
from pulso.domain.timefmt import format_local, local_midnight

PERIOD_DAYS: Final = 7
FEED_LIMIT: Final = 50
SEVERITY_CHOICES: Final[dict[str, str | None]] = {
    "todas": None,
    "atenção ou mais": "warning",
    "somente críticos": "critical",
}
SEVERITY_WORDS: Final = {"info": "informativo", "warning": "atenção", "critical": "crítico"}
STATUS_WORDS: Final = {
    "new": "novo",
    "not_sent": "sem envio",
    "pending": "enviando",
    "delivered": "entregue",
    "failed": "recusado",
}
MAP_COLORS: Final = "reds"


def render() -> None:
    """The whole page: period and severity in the sidebar, then figures, map and feed."""
    settings = DashboardSettings()
    st.title("Fraude")
    with st.sidebar:
        period = _period()
        choice = st.selectbox("Gravidade", list(SEVERITY_CHOICES), key="fraude_gravidade")
    if period is None:
        st.info("Escolha o primeiro e o último dia do período.")
        return
    live = st.fragment(_show, run_every=settings.refresh_s)
    live(settings, period[0], period[1], SEVERITY_CHOICES[choice])


def _period() -> tuple[date, date] | None:
    last = today()
    chosen = st.date_input(
        "Período",
        value=(last - timedelta(days=PERIOD_DAYS - 1), last),
        format=DATE_FORMAT,
        key="fraude_periodo",
    )
    if isinstance(chosen, tuple) and len(chosen) == 2:
        first, end = chosen
        if isinstance(first, date) and isinstance(end, date):
            return first, end
    return None


def _show(settings: DashboardSettings, start: date, end: date, severity: str | None) -> None:
    try:
        with FraudApiClient.for_settings(settings) as api:
            summary = api.fraud_summary(start, end)
            feed = api.alerts(
                since=local_midnight(start),
                until=local_midnight(end + timedelta(days=1)),
                kind="fraud",
                severity=severity,
                limit=FEED_LIMIT,
            )
    except DashboardApiError as e:
        show_api_error(e)
        return
    st.subheader(format_period(summary.start, summary.end))
    updated_caption(settings.refresh_s)
    _metrics(summary)
    left, right = st.columns([3, 2])
    with left:
        st.markdown("#### Pagamentos suspeitos por UF")
        if summary.flagged or summary.payments:
            st.vega_lite_chart(uf_map(summary), width="stretch")
        else:
            st.info("Nenhum pagamento no período.")
    with right:
        st.markdown("#### Por UF")
        st.table(uf_rows(summary), hide_index=True)
    st.markdown("#### Alertas")
    if not feed.alerts:
        st.info("Nenhum alerta de fraude no período.")
        return
    st.table(feed_rows(feed.alerts), hide_index=True)


def _metrics(summary: FraudSummary) -> None:
    payments, flagged, rate, pending = st.columns(4)
    payments.metric("Pagamentos", format_count(summary.payments))
    flagged.metric("Pagamentos suspeitos", format_count(summary.flagged))
    rate.metric(
        "Taxa de fraude",
        "—" if summary.rate is None else format_percent(summary.rate * 100, places=2),
        help="Pagamentos apontados por um alerta de fraude ÷ pagamentos criados no período",
    )
    pending.metric(
        "Alertas (agrupados)",
        f"{format_count(summary.alerts)} ({format_count(summary.notices)})",
        help="Alertas levantados; entre parênteses, os avisos depois de agrupar rajadas",
    )
    if summary.undelivered:
        st.warning(
            f"{format_count(summary.undelivered)} aviso(s) ainda não entregue(s) a todos os "
            "canais: o envio é repetido sozinho; veja a coluna Situação.",
            icon="⏳",
        )


def _rate_text(rate: float | None) -> str:
    return "—" if rate is None else format_percent(rate * 100, places=2)


def uf_rows(summary: FraudSummary) -> list[dict[str, str]]:
    """The table beside the map: UFs with the most suspicious payments first."""
    ordered = sorted(summary.by_uf, key=lambda u: (-u.flagged, -u.payments, u.uf))
    return [
        {
            "UF": u.uf,
            "Pagamentos": format_count(u.payments),
            "Suspeitos": format_count(u.flagged),
            "Taxa": _rate_text(u.rate),
        }
        for u in ordered
    ]


def feed_rows(alerts: list[AlertItem]) -> list[dict[str, str]]:
    return [
        {
            "Quando": format_local(a.last_at),
            "Gravidade": SEVERITY_WORDS.get(a.severity, a.severity),
            "Ocorrências": format_count(a.count),
            "Assunto": a.subject,
            "Mensagem": a.message,
            "Situação": _status(a),
        }
        for a in alerts
    ]


def _status(alert: AlertItem) -> str:
    word = STATUS_WORDS.get(alert.status, alert.status)
    errors = [f"{d.channel}: {d.last_error}" for d in alert.deliveries if d.last_error]
    return f"{word} ({'; '.join(errors)})" if errors and alert.status != "delivered" else word


def uf_map(summary: FraudSummary) -> Spec:
    """Brazil as 27 UF points (no tiles): grey dots and labels for every UF, and a bubble
    per UF sized by its suspicious payments and coloured by its fraud rate."""
    figures = {u.uf: u for u in summary.by_uf}
    rows: list[dict[str, Any]] = []
    for uf, (lat, lon) in sorted(UF_CENTRES.items()):
        u = figures.get(uf)
        rows.append(
            {
                "UF": uf,
                "lat": lat,
                "lon": lon,
                "suspeitos": u.flagged if u else 0,
                "taxa": (u.rate or 0.0) * 100 if u else 0.0,
                "Pagamentos": format_count(u.payments) if u else "0",
                "Suspeitos": format_count(u.flagged) if u else "0",
                "Taxa": _rate_text(u.rate if u else None),
            }
        )
    position = {
        "longitude": {"field": "lon", "type": "quantitative"},
        "latitude": {"field": "lat", "type": "quantitative"},
    }
    tooltip = [{"field": n, "type": "nominal"} for n in ("UF", "Pagamentos", "Suspeitos", "Taxa")]
    return {
        "data": {"values": rows},
        "projection": {"type": "mercator"},
        "height": 460,
        "config": {"locale": {"number": PT_BR_NUMBERS}, "view": {"stroke": None}},
        "layer": [
            {
                "mark": {"type": "circle", "color": "#d4d4d8", "size": 60},
                "encoding": {**position, "tooltip": tooltip},
            },
            {
                "transform": [{"filter": "datum.suspeitos > 0"}],
                "mark": {"type": "circle", "opacity": 0.85, "stroke": "#7f1d1d"},
                "encoding": {
                    **position,
                    "size": {
                        "field": "suspeitos",
                        "type": "quantitative",
                        "title": "Suspeitos",
                        "scale": {"range": [80, 2000]},
                        "legend": None,
                    },
                    "color": {
                        "field": "taxa",
                        "type": "quantitative",
                        "title": "Taxa (%)",
                        "scale": {"scheme": MAP_COLORS},
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "mark": {"type": "text", "dy": -12, "fontSize": 10, "color": "#3f3f46"},
                "encoding": {**position, "text": {"field": "UF", "type": "nominal"}},
            },
        ],
    }
