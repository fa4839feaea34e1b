"""GET /v1/alerts and /v1/alerts/summary over hand-made alert rows and payments, after a
dispatcher pass: throttled alerts with their delivery state, the fraud rate by UF, and bad
parameters as problem documents. On DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from alert_rows import CPF, CPF_DIGITS, T0, Clock, Recorder, alert, insert_alerts
from fastapi.testclient import TestClient
from payment_rows import column_batch, payment

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS

TOKEN = "alerts-token"
DAY = "2026-11-24"  # T0 is 10:00 in São Paulo


def fill(store: Store) -> None:
    """10 payments in PE (3 flagged, one of them twice), 5 in SP (1 flagged), and alerts:
    a burst of 20 card-testing alerts at LJ-0001, a velocity one, a store-health one (not
    fraud), one the dispatcher will not fold (a warning, left for later), and one from the
    day before."""
    rows = [
        payment(f"pe-{i}", created_at=T0, store_id="LJ-0001", city="Recife", uf="PE",
                amount_cents=1000, paid_cents=None, seconds=None, status="pending")
        for i in range(10)
    ] + [
        payment(f"sp-{i}", created_at=T0, store_id="LJ-0002", city="São Paulo", uf="SP",
                amount_cents=2000, paid_cents=None, seconds=None, status="pending")
        for i in range(5)
    ]  # fmt: skip
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, column_batch(rows))
    alerts = [
        *[
            alert(f"b{i:02d}", at=T0 + timedelta(seconds=i), charge_id=f"pe-{i % 3}")
            for i in range(20)
        ],
        alert("v1", kind="fraud.velocity", subject="a1b2c3d4e5f6a7b8", charge_id="sp-0",
              severity="warning", at=T0 + timedelta(minutes=1),
              message=f"Pagador (CPF {CPF}) em 7 lojas em 3 minutos"),
        alert("h1", kind="store.offline", subject="LJ-0002", severity="info",
              message="Loja sem pagamentos há 2 horas", at=T0 + timedelta(minutes=2)),
        alert("old", at=T0 - timedelta(days=1), charge_id="pe-9"),
    ]  # fmt: skip
    insert_alerts(store, alerts)


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Iterator[TestClient]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    settings = settings_factory(api_token=TOKEN, store_url=url)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    fill(store)
    email = Recorder("email", down=True)
    clock = Clock(T0 + timedelta(minutes=3))
    AlertDispatcher(store, bus, [email], DispatchConfig(), clock=clock).dispatch_once()
    insert_alerts(store, [alert("late", at=T0 + timedelta(minutes=10), subject="LJ-0003")])
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    with TestClient(app, headers={"X-API-Key": TOKEN}) as http:
        yield http
    psp.close()
    bus.close()
    store.close()


def get(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_feed_is_throttled_newest_first_with_delivery_state(client: TestClient) -> None:
    alerts = get(client, "/v1/alerts")["alerts"]
    assert [(a["id"], a["count"], a["status"]) for a in alerts] == [
        ("late", 1, "new"),  # not folded yet
        ("h1", 1, "not_sent"),  # info: below the minimum severity
        ("v1", 1, "pending"),
        ("b00", 20, "pending"),  # 20 alerts, one notice; the e-mail is being retried
        ("old", 1, "pending"),
    ]
    burst_alert = alerts[3]
    assert burst_alert["first_at"].startswith("2026-11-24T13:00:00")
    assert burst_alert["last_at"].startswith("2026-11-24T13:00:19")
    [delivery] = burst_alert["deliveries"]
    assert delivery["channel"] == "email" and delivery["status"] == "pending"
    # the e-mail failed on the oldest alert first; this one waits for the same retry
    assert (delivery["attempts"], delivery["last_error"]) == (0, "connection refused (gave up)")
    assert delivery["next_attempt_at"] is not None
    assert burst_alert["details"]["charge_id"] == "pe-0"
    assert burst_alert["message"] == "20 cobranças de R$ 1,00 em 2 minutos"


def test_filters(client: TestClient) -> None:
    def ids(**params: Any) -> list[str]:
        return [a["id"] for a in get(client, "/v1/alerts", **params)["alerts"]]

    assert ids(kind="fraud") == ["late", "v1", "b00", "old"]
    assert ids(kind="fraud.velocity") == ["v1"]
    assert ids(kind="store") == ["h1"]
    assert ids(kind="frau") == []
    assert ids(severity="critical") == ["late", "b00", "old"]
    assert ids(severity="warning", kind="fraud") == ["late", "v1", "b00", "old"]
    assert ids(since="2026-11-24T10:01:00-03:00") == ["late", "h1", "v1"]
    assert ids(since="2026-11-24T13:01:30Z") == ["late", "h1"]
    assert ids(limit=2) == ["late", "h1"]
    assert ids(until="2026-11-24T13:01:00Z") == ["b00", "old"]
    assert ids(since="2026-11-24T00:00:00-03:00", until="2026-11-24T13:05:00Z") == [
        "h1",
        "v1",
        "b00",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"severity": "urgent"}, "severity"),
        ({"kind": "Fraud Velocity"}, "kind"),
        ({"kind": "x" * 65}, "kind"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_parameters_are_problems(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    answer = client.get("/v1/alerts", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == "urn:pulso:problem:validation"
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize("name", ["since", "until"])
def test_a_time_without_a_zone_is_a_problem(client: TestClient, name: str) -> None:
    answer = client.get("/v1/alerts", params={name: "2026-11-24T10:00:00"})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "urn:pulso:problem:bad-query"
    assert problem["detail"].startswith(f"{name} needs a time zone")


def test_the_key_is_required(client: TestClient) -> None:
    for path in ("/v1/alerts", "/v1/alerts/summary"):
        answer = client.get(path, headers={"X-API-Key": "wrong"})
        assert answer.status_code == 401
        assert answer.json()["type"] == "urn:pulso:problem:unauthorized"


def test_the_summary_gives_the_fraud_rate_by_uf(client: TestClient) -> None:
    data = get(client, "/v1/alerts/summary", **{"from": DAY, "to": DAY})
    assert (data["start"], data["end"]) == (DAY, DAY)
    # 15 payments; flagged: pe-0, pe-1, pe-2 (20 alerts), sp-0 (velocity), and "late"
    # (no charge_id: the alert counts once)
    assert (data["payments"], data["flagged"], data["alerts"]) == (15, 5, 22)
    assert data["rate"] == pytest.approx(5 / 15)
    by_uf = {u["uf"]: u for u in data["by_uf"]}
    assert (by_uf["PE"]["payments"], by_uf["PE"]["flagged"], by_uf["PE"]["alerts"]) == (10, 3, 20)
    assert by_uf["PE"]["rate"] == pytest.approx(0.3)
    assert (by_uf["SP"]["flagged"], by_uf["SP"]["rate"]) == (1, pytest.approx(0.2))
    assert by_uf["??"]["payments"] == 0 and by_uf["??"]["flagged"] == 1  # "late": LJ-0003
    assert data["by_kind"] == [
        {"kind": "fraud.card_testing", "alerts": 21},
        {"kind": "fraud.velocity", "alerts": 1},
    ]
    assert (data["notices"], data["undelivered"]) == (2, 2)


def test_the_summary_defaults_and_bad_periods(client: TestClient) -> None:
    data = get(client, "/v1/alerts/summary")
    assert data["start"] < data["end"]
    backwards = client.get("/v1/alerts/summary", params={"from": DAY, "to": "2026-11-01"})
    assert backwards.status_code == 422
    assert backwards.json()["type"] == "urn:pulso:problem:bad-query"
    too_long = client.get("/v1/alerts/summary", params={"from": "2020-01-01", "to": DAY})
    assert too_long.status_code == 422
    bad_day = client.get("/v1/alerts/summary", params={"from": "24/11/2026"})
    assert bad_day.status_code == 422
    assert bad_day.json()["errors"][0]["field"] == "from"


def test_no_cpf_comes_back(client: TestClient) -> None:
    text = client.get("/v1/alerts").text
    assert CPF not in text and CPF_DIGITS not in text
    [velocity] = get(client, "/v1/alerts", kind="fraud.velocity")["alerts"]
    assert velocity["message"] == "Pagador (CPF [documento oculto]) em 7 lojas em 3 minutos"


def test_an_empty_store_answers_empty(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    try:
        with TestClient(app) as http:
            assert http.get("/v1/alerts").json() == {"alerts": []}
            summary = http.get("/v1/alerts/summary").json()
            assert (summary["payments"], summary["rate"], summary["by_uf"]) == (0, None, [])
    finally:
        psp.close()
        bus.close()
        store.close()
