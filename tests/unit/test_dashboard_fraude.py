"""The dashboard's "Fraude" page under Streamlit's AppTest, reading a real API served by
uvicorn on loopback over a DuckDB store with hand-made payments and alert rows (after one
dispatcher pass): the fraud rate, the map by UF and the alert feed, as Brazilians write them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import Api, dashboard, metrics, serve, table_rows

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.dashboard.brazil import UF_CENTRES
from pulso.dashboard.fraud_client import FraudSummary, UfFraud
from pulso.dashboard.fraud_page import uf_map, uf_rows
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.domain.validators import REGION_BY_UF
from pulso.notify import Notification, NotifyUnavailableError, SendResult
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import ALERTS, PAYMENTS

TODAY = datetime.now(UTC).astimezone(DISPLAY_ZONE).date()
NINE_AM = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0, tzinfo=DISPLAY_ZONE).astimezone(UTC)


class DownEmail:
    name = "email"

    def send(self, notification: Notification) -> SendResult:
        raise NotifyUnavailableError(self.name, "connection refused")


def fill(store: Store) -> None:
    """40 payments today: 30 in BA, 10 in RS; fraud alerts name 3 BA payments (a burst of
    12 card-testing alerts) and 1 in RS."""
    payments: dict[str, list[Any]] = {name: [] for name in PAYMENTS.column_names}
    for i in range(40):
        row: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
        uf, city = ("BA", "Salvador") if i < 30 else ("RS", "Porto Alegre")
        row.update(
            charge_id=f"c{i}",
            store_id="LJ-0001" if uf == "BA" else "LJ-0002",
            city=city,
            uf=uf,
            amount_cents=1000,
            status="pending",
            status_rank=0,
            created_at=NINE_AM,
            updated_at=NINE_AM,
        )
        for name in PAYMENTS.column_names:
            payments[name].append(row[name])
    alerts: dict[str, list[Any]] = {name: [] for name in ALERTS.column_names}
    rows = [(f"a{i:02d}", "fraud.card_testing", "LJ-0001", f"c{i % 3}", i) for i in range(12)] + [
        ("v1", "fraud.velocity", "9f8e7d6c5b4a", "c35", 60)
    ]
    for alert_id, kind, subject, charge_id, seconds in rows:
        values = {
            "alert_id": alert_id,
            "kind": kind,
            "severity": "warning" if kind == "fraud.velocity" else "critical",
            "subject": subject,
            "message": "12 cobranças de R$ 1,00 em 1 minuto",
            "raised_at": NINE_AM + timedelta(seconds=seconds),
            "count": 1,
            "details": {"charge_id": charge_id, "risk_score": 0.9},
        }
        for name in ALERTS.column_names:
            alerts[name].append(values[name])
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, payments)
        tx.insert_new(ALERTS, alerts)


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Api]:
    settings = settings_factory(api_token="dashboard-token")
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    fill(store)
    dispatcher = AlertDispatcher(
        store, bus, [DownEmail()], DispatchConfig(), clock=lambda: NINE_AM + timedelta(minutes=5)
    )
    dispatcher.dispatch_once()
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    url, server, thread = serve(app)
    yield Api(url)
    server.should_exit = True
    thread.join(timeout=30)
    psp.close()
    bus.close()
    store.close()


def fraude(app: AppTest) -> AppTest:
    return app.switch_page("views/fraude.py").run()


def test_fraude_shows_the_rate_the_map_and_the_feed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fraude(dashboard(monkeypatch, api.url).run())
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    summary = api.get("/v1/alerts/summary")
    assert (summary["payments"], summary["flagged"]) == (40, 4)
    assert metrics(app) == {
        "Pagamentos": "40",
        "Pagamentos suspeitos": "4",
        "Taxa de fraude": "10,00%",
        "Alertas (agrupados)": "13 (2)",
    }
    assert table_rows(app, 0) == [
        {"UF": "BA", "Pagamentos": "30", "Suspeitos": "3", "Taxa": "10,00%"},
        {"UF": "RS", "Pagamentos": "10", "Suspeitos": "1", "Taxa": "10,00%"},
    ]
    feed = table_rows(app, 1)
    assert [(r["Ocorrências"], r["Assunto"], r["Gravidade"]) for r in feed] == [
        ("1", "9f8e7d6c5b4a", "atenção"),
        ("12", "LJ-0001", "crítico"),
    ]
    assert feed[1]["Situação"].startswith("enviando (email: connection refused")
    assert feed[1]["Quando"] == f"{TODAY:%d/%m/%Y} 09:00"
    assert any("não entregue" in w.value for w in app.warning)
    [chart] = app.get("vega_lite_chart")
    assert chart.proto is not None


def test_fraude_with_a_severity_filter_and_an_empty_period(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fraude(dashboard(monkeypatch, api.url).run())
    app.sidebar.selectbox(key="fraude_gravidade").select("somente críticos").run()
    assert not app.exception, app.exception
    assert [r["Ocorrências"] for r in table_rows(app, 1)] == ["12"]
    app.sidebar.date_input(key="fraude_periodo").set_value(
        (TODAY - timedelta(days=10), TODAY - timedelta(days=9))
    ).run()
    assert not app.exception, app.exception
    assert metrics(app)["Pagamentos"] == "0" and metrics(app)["Taxa de fraude"] == "—"
    assert any("Nenhum alerta de fraude" in i.value for i in app.info)


def test_fraude_when_the_api_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = fraude(dashboard(monkeypatch, closed).run())
    assert not app.exception
    assert any("Não foi possível conectar" in e.value for e in app.error)


def test_the_map_has_every_uf_and_bubbles_only_where_there_is_fraud() -> None:
    assert set(UF_CENTRES) == set(REGION_BY_UF)
    for lat, lon in UF_CENTRES.values():  # inside Brazil's bounding box
        assert -34 < lat < 6 and -74 < lon < -34
    summary = FraudSummary(
        start=TODAY,
        end=TODAY,
        payments=100,
        flagged=2,
        rate=0.02,
        alerts=2,
        notices=1,
        undelivered=0,
        by_uf=[
            UfFraud(uf="SP", payments=100, flagged=2, alerts=2, rate=0.02),
            UfFraud(uf="??", payments=0, flagged=0, alerts=0, rate=None),
        ],
        by_kind=[],
    )
    spec = uf_map(summary)
    rows = {r["UF"]: r for r in spec["data"]["values"]}
    assert len(rows) == 27 and rows["SP"]["Taxa"] == "2,00%" and rows["SP"]["suspeitos"] == 2
    assert rows["AM"]["suspeitos"] == 0 and rows["AM"]["Taxa"] == "—"
    assert spec["projection"] == {"type": "mercator"}
    assert "url" not in str(spec)  # nothing to download: the data is inline
    assert uf_rows(summary)[0] == {
        "UF": "SP",
        "Pagamentos": "100",
        "Suspeitos": "2",
        "Taxa": "2,00%",
    }
