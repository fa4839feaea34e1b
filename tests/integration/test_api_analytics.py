"""GET /v1/analytics/heatmaps: the 34 grids as data, equal to the engine's own answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from pulso.analytics.heatmaps import HEATMAPS, heatmap
from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS

TOKEN = "analytics-token"
MONDAY = date(2026, 11, 16)


def confirmed_payments(store: Store) -> None:
    """Six confirmed payments at two stores on a Monday and a Tuesday (local time −03:00)."""
    rows = [
        ("a1", "LJ-A", "Recife", 1000, datetime(2026, 11, 16, 15, 5, tzinfo=UTC)),  # seg 12h
        ("a2", "LJ-A", "Recife", 2550, datetime(2026, 11, 16, 15, 40, tzinfo=UTC)),  # seg 12h
        ("a3", "LJ-A", "Recife", 700, datetime(2026, 11, 17, 22, 0, tzinfo=UTC)),  # ter 19h
        ("b1", "LJ-B", "Natal", 12345, datetime(2026, 11, 16, 12, 0, tzinfo=UTC)),  # seg 9h
        ("b2", "LJ-B", "Natal", 99, datetime(2026, 11, 17, 2, 30, tzinfo=UTC)),  # seg 23h
        ("b3", "LJ-B", "Natal", 5000, datetime(2026, 11, 17, 12, 0, tzinfo=UTC)),  # ter 9h
    ]
    columns: dict[str, list[object]] = {name: [] for name in PAYMENTS.column_names}
    for charge_id, store_id, city, cents, created_at in rows:
        values = dict.fromkeys(PAYMENTS.column_names)
        values.update(
            charge_id=charge_id,
            store_id=store_id,
            city=city,
            uf="PE",
            amount_cents=cents,
            paid_cents=cents,
            status="confirmed",
            status_rank=3,
            created_at=created_at,
            confirmed_at=created_at + timedelta(seconds=12),
            confirmation_seconds=12.0,
            updated_at=created_at + timedelta(seconds=12),
        )
        for name in PAYMENTS.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, columns)  # type: ignore[arg-type]


@pytest.fixture
def client_and_store(
    settings_factory: Callable[..., Settings],
) -> Iterator[tuple[TestClient, Store]]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    confirmed_payments(store)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    with TestClient(app, headers={"X-API-Key": TOKEN}) as client:
        yield client, store
    psp.close()
    bus.close()
    store.close()


def test_the_list_has_all_34_heatmaps(client_and_store: tuple[TestClient, Store]) -> None:
    client, _ = client_and_store
    listed = client.get("/v1/analytics/heatmaps").json()
    assert {h["name"] for h in listed} == set(HEATMAPS) and len(listed) == 34
    assert {h["file_name"] for h in listed} >= {"mapa_calor_semana_count.png"}


def test_a_grid_over_http_equals_the_engine(client_and_store: tuple[TestClient, Store]) -> None:
    client, store = client_and_store
    answer = client.get(
        "/v1/analytics/heatmaps/semana_sum", params={"from": "2026-11-16", "to": "2026-11-22"}
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    grid = heatmap(store, "semana_sum", start=MONDAY, end=MONDAY + timedelta(days=6))
    assert data["row_labels"] == list(grid.rows) and data["column_labels"] == list(grid.columns)
    seg, h12 = data["row_labels"].index("seg"), data["column_labels"].index("12")
    assert data["values"][seg][h12] == "35.50"  # money stays an exact decimal string
    assert data["unit"] == "brl" and data["title"]
    expected = [[None if v is None else f"{v:.2f}" for v in row] for row in grid.values]
    assert data["values"] == expected


def test_filters_by_store_and_city(client_and_store: tuple[TestClient, Store]) -> None:
    client, _ = client_and_store
    params = {"from": "2026-11-16", "to": "2026-11-22"}
    by_store = client.get("/v1/analytics/heatmaps/loja_count", params={**params, "store": "LJ-B"})
    assert by_store.json()["row_labels"] == ["LJ-B"]
    by_city = client.get("/v1/analytics/heatmaps/cidade_count", params={**params, "city": "Recife"})
    assert by_city.json()["row_labels"] == ["Recife"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/analytics/heatmaps/nope", {"from": "2026-11-16", "to": "2026-11-22"}, 404),
        ("/v1/analytics/heatmaps/semana_count", {"from": "2026-11-22", "to": "2026-11-16"}, 422),
        ("/v1/analytics/heatmaps/semana_count", {"from": "16/11/2026", "to": "2026-11-22"}, 422),
        ("/v1/analytics/heatmaps/semana_count", {"to": "2026-11-22"}, 422),
    ],
)
def test_bad_queries_are_problem_documents(
    client_and_store: tuple[TestClient, Store], path: str, params: dict[str, str], status: int
) -> None:
    client, _ = client_and_store
    answer = client.get(path, params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == status


def test_analytics_need_the_api_key(client_and_store: tuple[TestClient, Store]) -> None:
    client, _ = client_and_store
    answer = client.get("/v1/analytics/heatmaps", headers={"X-API-Key": "wrong"})
    assert answer.status_code == 401
