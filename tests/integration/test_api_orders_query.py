"""GET /v1/query/{name}: the order queries over HTTP, equal to the engine's own answer, and
problem documents for unknown names, bad dates, reversed periods and bad limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from order_rows import ORDERS, order, process

from pulso.analytics.order_queries import QUERIES, run_query
from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store

TOKEN = "orders-token"


@pytest.fixture
def client_and_store(
    settings_factory: Callable[..., Settings],
) -> Iterator[tuple[TestClient, Store]]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    process(store, [order(values) for values in ORDERS])
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    with TestClient(app, headers={"X-API-Key": TOKEN}) as client:
        yield client, store
    psp.close()
    bus.close()
    store.close()


def test_every_query_answers_what_the_engine_answers(
    client_and_store: tuple[TestClient, Store],
) -> None:
    client, store = client_and_store
    listed = client.get("/v1/query").json()
    assert [q["name"] for q in listed] == list(QUERIES)
    for name in QUERIES:
        answer = client.get(f"/v1/query/{name}", params={"from": "2026-11-01", "limit": 3})
        assert answer.status_code == 200, answer.text
        expected = run_query(store, name, start=date(2026, 11, 1), limit=3).document()
        assert answer.json() == expected


def test_money_is_an_exact_string_and_periods_are_echoed(
    client_and_store: tuple[TestClient, Store],
) -> None:
    client, _ = client_and_store
    body = client.get(
        "/v1/query/top-cities", params={"from": "2026-11-10", "to": "2026-11-12", "limit": 1}
    ).json()
    assert (body["from"], body["to"], body["limit"]) == ("2026-11-10", "2026-11-12", 1)
    assert body["rows"] == [
        {
            "rank": 1,
            "city": "São Paulo",
            "uf": "SP",
            "region": "Sudeste",
            "orders": 2,
            "revenue": "200.00",
            "average_ticket": "100.00",
        }
    ]
    assert body["columns"][5] == {"name": "revenue", "label": "Receita", "kind": "money"}


@pytest.mark.parametrize(
    ("path", "params", "status", "problem", "says"),
    [
        ("/v1/query/top-sellers", {}, 404, "unknown-query", "top-products"),
        ("/v1/query/status", {"from": "2026-13-01"}, 422, "validation", "from"),
        ("/v1/query/status", {"to": "20/11/2026"}, 422, "validation", "to"),
        ("/v1/query/status", {"from": "2026-11-20", "to": "2026-11-01"}, 422, "bad-query", "swap"),
        ("/v1/query/status", {"limit": "0"}, 422, "validation", "limit"),
        ("/v1/query/status", {"limit": "1001"}, 422, "validation", "limit"),
        ("/v1/query/status", {"limit": "dez"}, 422, "validation", "limit"),
    ],
)
def test_bad_requests_are_problem_documents(
    client_and_store: tuple[TestClient, Store],
    path: str,
    params: dict[str, str],
    status: int,
    problem: str,
    says: str,
) -> None:
    client, _ = client_and_store
    answer = client.get(path, params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == f"urn:pulso:problem:{problem}"
    assert says in body["detail"]


def test_the_api_key_is_required(client_and_store: tuple[TestClient, Store]) -> None:
    client, _ = client_and_store
    answer = client.get("/v1/query/status", headers={"X-API-Key": "wrong"})
    assert answer.status_code == 401
