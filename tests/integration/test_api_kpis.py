"""GET /v1/kpis/sales and /v1/kpis/payments: the live KPIs as JSON, money as exact decimal
strings, bad input as problem documents. On DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_sales_kpis import SALES_ROWS, insert_sales

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS

TOKEN = "kpis-token"


def insert_payments(store: Store) -> None:
    """On 20/11/2026 (local, UTC−3): three confirmed PIX payments and one failed charge."""
    rows = [
        ("p1", "LJ-A", "confirmed", 1000, datetime(2026, 11, 20, 12, 5, tzinfo=UTC), 10.0),
        ("p2", "LJ-A", "confirmed", 2550, datetime(2026, 11, 20, 12, 40, tzinfo=UTC), 20.0),
        ("p3", "LJ-B", "confirmed", 700, datetime(2026, 11, 20, 22, 0, tzinfo=UTC), 30.0),
        ("p4", "LJ-B", "failed", 900, datetime(2026, 11, 20, 22, 5, tzinfo=UTC), None),
    ]
    columns: dict[str, list[Any]] = {name: [] for name in PAYMENTS.column_names}
    for charge_id, store_id, status, cents, created_at, seconds in rows:
        values: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
        confirmed = status == "confirmed"
        values.update(
            charge_id=charge_id,
            store_id=store_id,
            city="Recife",
            uf="PE",
            amount_cents=cents,
            paid_cents=cents if confirmed else None,
            status=status,
            status_rank=3,
            created_at=created_at,
            confirmed_at=created_at + timedelta(seconds=seconds) if seconds else None,
            failed_at=None if confirmed else created_at,
            confirmation_seconds=seconds,
            updated_at=created_at + timedelta(seconds=40),
        )
        for name in PAYMENTS.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, columns)


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Iterator[TestClient]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    settings = settings_factory(api_token=TOKEN, store_url=url)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    insert_sales(store, SALES_ROWS)
    insert_payments(store)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    with TestClient(app, headers={"X-API-Key": TOKEN}) as http:
        yield http
    psp.close()
    bus.close()
    store.close()


def test_sales_kpis_of_a_day(client: TestClient) -> None:
    answer = client.get("/v1/kpis/sales", params={"date": "2026-11-20", "top": 2})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["date"] == "2026-11-20" and data["store"] is None
    assert (data["total"], data["sales"], data["quantity"]) == ("175.85", 5, 12)
    assert data["average_ticket"] == "35.17"
    assert data["top_products"] == [
        {"product": "Caderno", "sales": 1, "quantity": 5, "total": "99.95"},
        {"product": "Bolo", "sales": 1, "quantity": 1, "total": "39.90"},
    ]
    assert [(c["category"], c["total"]) for c in data["by_category"]] == [
        ("Papelaria", "99.95"),
        ("Padaria", "53.40"),
        ("Bebidas", "22.50"),
    ]
    assert [h["hour"] for h in data["by_hour"]] == list(range(24))
    assert data["by_hour"][9] == {"hour": 9, "sales": 2, "quantity": 5, "total": "28.50"}
    assert (data["start"], data["end"]) == ("2026-10-22", "2026-11-20")
    assert len(data["by_day"]) == 30
    assert data["by_day"][-1] == {
        "date": "2026-11-20",
        "sales": 5,
        "quantity": 12,
        "total": "175.85",
    }


def test_sales_kpis_of_one_store_over_a_range(client: TestClient) -> None:
    params = {"date": "2026-11-20", "store": "LJ-B", "from": "2026-11-18", "to": "2026-11-21"}
    data = client.get("/v1/kpis/sales", params=params).json()
    assert (data["store"], data["total"], data["average_ticket"]) == ("LJ-B", "147.35", "49.12")
    assert [(d["date"], d["total"]) for d in data["by_day"]] == [
        ("2026-11-18", "79.80"),
        ("2026-11-19", "0.00"),
        ("2026-11-20", "147.35"),
        ("2026-11-21", "0.00"),
    ]


def test_a_day_without_sales_has_a_null_ticket(client: TestClient) -> None:
    data = client.get("/v1/kpis/sales", params={"date": "2027-01-01"}).json()
    assert (data["total"], data["sales"], data["average_ticket"]) == ("0.00", 0, None)


def test_payment_kpis_of_a_day(client: TestClient) -> None:
    answer = client.get("/v1/kpis/payments", params={"date": "2026-11-20"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["payments"], data["total"], data["average_ticket"]) == (3, "42.50", "14.17")
    assert (data["failed"], data["expired"]) == (1, 0)
    assert data["confirmation_mean_s"] == pytest.approx(20.0)
    assert data["confirmation_p95_s"] == pytest.approx(29.0)  # percentile_cont of 10, 20, 30
    assert len(data["by_hour"]) == 24
    assert data["by_hour"][9] == {"hour": 9, "payments": 2, "total": "35.50"}
    assert data["by_hour"][19] == {"hour": 19, "payments": 1, "total": "7.00"}
    one = client.get("/v1/kpis/payments", params={"date": "2026-11-20", "store": "LJ-B"}).json()
    assert (one["store"], one["payments"], one["total"]) == ("LJ-B", 1, "7.00")


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/kpis/sales", {"date": "20/11/2026"}, 422),
        ("/v1/kpis/sales", {"date": "2026-02-30"}, 422),
        ("/v1/kpis/sales", {"from": "2026-11-21", "to": "2026-11-20"}, 422),
        ("/v1/kpis/sales", {"from": "2020-01-01", "to": "2026-11-20"}, 422),
        ("/v1/kpis/sales", {"top": "0"}, 422),
        ("/v1/kpis/sales", {"top": "lots"}, 422),
        ("/v1/kpis/sales", {"store": "x" * 65}, 422),
        ("/v1/kpis/payments", {"date": "ontem"}, 422),
        ("/v1/kpis/nope", {}, 404),
    ],
)
def test_bad_queries_are_problem_documents(
    client: TestClient, path: str, params: dict[str, str], status: int
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == status


def test_a_reversed_range_says_how_to_fix_it(client: TestClient) -> None:
    answer = client.get("/v1/kpis/sales", params={"from": "2026-11-21", "to": "2026-11-20"})
    problem = answer.json()
    assert problem["type"] == "urn:pulso:problem:bad-query"
    assert "swap from and to" in problem["detail"]


@pytest.mark.parametrize("path", ["/v1/kpis/sales", "/v1/kpis/payments"])
def test_the_api_key_is_required(client: TestClient, path: str) -> None:
    answer = client.get(path, headers={"X-API-Key": "wrong"})
    assert answer.status_code == 401
    assert answer.json()["type"] == "urn:pulso:problem:unauthorized"
