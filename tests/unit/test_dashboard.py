"""The Streamlit dashboard under Streamlit's AppTest, reading a real API served by uvicorn on
loopback over a DuckDB store with hand-made sales: the pages show what the API returns,
formatted as Brazilians write it, and an API that is down or refuses the key is a message."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from streamlit.testing.v1 import AppTest

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.dashboard import APP_FILE
from pulso.dashboard.charts import format_cell, heatmap_chart
from pulso.dashboard.client import HeatmapGrid
from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS, SALES

TOKEN = "dashboard-token"
WAIT_S = 30.0  # a guard against hanging, not a speed assertion
TODAY = datetime.now(UTC).astimezone(DISPLAY_ZONE).date()

# (sale_id, local hour, minute, product, category, quantity, unit price in centavos)
SALES_TODAY = (
    ("d1", 9, 5, "Café", "Bebidas", 2, 750),
    ("d2", 9, 40, "Pão de queijo", "Padaria", 3, 450),
    ("d3", 10, 0, "Caderno", "Papelaria", 5, 1999),
    ("d4", 15, 0, "Bolo", "Padaria", 1, 3990),
)


def local(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=DISPLAY_ZONE)


def insert_sales(store: Store, day: date) -> None:
    columns: dict[str, list[Any]] = {name: [] for name in SALES.column_names}
    for sale_id, hour, minute, product, category, quantity, unit_cents in SALES_TODAY:
        values: dict[str, Any] = dict.fromkeys(SALES.column_names)
        values.update(
            sale_id=sale_id,
            sold_at=local(day, hour, minute).astimezone(UTC),
            store_id="LJ-0001",
            product=product,
            category=category,
            quantity=quantity,
            unit_price_cents=unit_cents,
            total_cents=quantity * unit_cents,
        )
        for name in SALES.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.insert_new(SALES, columns)


def insert_payments(store: Store, day: date) -> None:
    """Two confirmed PIX payments today: R$ 12,50 in 8 s and R$ 30,00 in 20 s."""
    columns: dict[str, list[Any]] = {name: [] for name in PAYMENTS.column_names}
    for charge_id, cents, seconds in (("c1", 1250, 8.0), ("c2", 3000, 20.0)):
        created_at = local(day, 11, 0).astimezone(UTC)
        values: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
        values.update(
            charge_id=charge_id,
            store_id="LJ-0001",
            city="Recife",
            uf="PE",
            amount_cents=cents,
            paid_cents=cents,
            status="confirmed",
            status_rank=3,
            created_at=created_at,
            confirmed_at=created_at + timedelta(seconds=seconds),
            confirmation_seconds=seconds,
            updated_at=created_at + timedelta(seconds=seconds),
        )
        for name in PAYMENTS.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, columns)


@dataclass
class Api:
    url: str

    def get(self, path: str, **params: str) -> Any:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": TOKEN}) as http:
            answer = http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


def serve(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return url, server, thread


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Api]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    insert_sales(store, TODAY)
    insert_payments(store, TODAY)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    url, server, thread = serve(app)
    yield Api(url)
    server.should_exit = True
    thread.join(timeout=WAIT_S)
    psp.close()
    bus.close()
    store.close()


def dashboard(monkeypatch: pytest.MonkeyPatch, url: str, token: str = TOKEN) -> AppTest:
    monkeypatch.setenv("PULSO_DASHBOARD_API_URL", url)
    monkeypatch.setenv("PULSO_API_TOKEN", token)
    return AppTest.from_file(str(APP_FILE), default_timeout=WAIT_S)


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def table_rows(app: AppTest, index: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = app.table[index].value.to_dict("records")
    return rows


def test_vendas_shows_the_kpis_the_api_returns(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app = dashboard(monkeypatch, api.url).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    expected = api.get("/v1/kpis/sales", date=TODAY.isoformat())
    # 15,00 + 13,50 + 99,95 + 39,90 = 168,35 in 4 sales: ticket 42,0875 → 42,09
    assert (expected["total"], expected["average_ticket"]) == ("168.35", "42.09")
    assert metrics(app) == {
        "Total do dia": format_brl(Decimal(expected["total"])),
        "Vendas": "4",
        "Ticket médio": "R$ 42,09",
        "Itens vendidos": format_count(expected["quantity"]),
    }
    assert metrics(app)["Total do dia"] == "R$ 168,35"
    products = table_rows(app, 0)
    assert [(p["Produto"], p["Total"]) for p in products] == [
        (p["product"], format_brl(Decimal(p["total"]))) for p in expected["top_products"]
    ]
    assert products[0] == {
        "Nº": "1",
        "Produto": "Caderno",
        "Qtd.": "5",
        "Vendas": "1",
        "Total": "R$ 99,95",
    }
    categories = table_rows(app, 1)
    assert [(c["Categoria"], c["Total"]) for c in categories] == [
        ("Papelaria", "R$ 99,95"),
        ("Padaria", "R$ 53,40"),
        ("Bebidas", "R$ 15,00"),
    ]
    assert categories[0]["Participação"] == "59,4%"  # 99,95 / 168,35
    assert len(app.get("vega_lite_chart")) == 2  # trend by hour and by day
    assert TODAY.strftime("%d/%m/%Y") in app.subheader[0].value


def test_vendas_for_one_store_and_another_day(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app = dashboard(monkeypatch, api.url).run()
    app.sidebar.text_input(key="vendas_loja").input("LJ-9999").run()
    assert metrics(app)["Total do dia"] == "R$ 0,00"
    assert metrics(app)["Ticket médio"] == "—"
    assert "Nenhuma venda registrada" in app.info[0].value
    app.sidebar.text_input(key="vendas_loja").input("").run()
    app.sidebar.date_input(key="vendas_dia").set_value(TODAY - timedelta(days=1)).run()
    assert metrics(app)["Vendas"] == "0"


def test_pagamentos_pix_shows_volume_confirmation_time_and_a_heatmap(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = dashboard(monkeypatch, api.url).run()
    app.switch_page("views/pagamentos_pix.py").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    expected = api.get("/v1/kpis/payments", date=TODAY.isoformat())
    shown = metrics(app)
    assert shown["Volume confirmado"] == format_brl(Decimal(expected["total"])) == "R$ 42,50"
    assert shown["Pagamentos confirmados"] == "2"
    assert shown["Ticket médio"] == "R$ 21,25"
    assert shown["Tempo médio de confirmação"] == "14 s"
    picker = app.selectbox(key="pix_mapa")
    assert picker.value == "semana_count"
    assert len(picker.options) == 34
    assert any("Pagamentos por dia da semana e hora" in c.value for c in app.caption)
    assert len(app.get("vega_lite_chart")) == 2  # volume by hour, and the heatmap


def test_api_down_is_a_friendly_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens after this
    app = dashboard(monkeypatch, closed).run()
    assert not app.exception
    assert "Não foi possível conectar à API do pulso" in app.error[0].value
    assert not app.metric
    app.switch_page("views/pagamentos_pix.py").run()
    assert not app.exception
    assert all("Não foi possível conectar" in e.value for e in app.error) and app.error


def test_a_wrong_token_says_which_setting_to_fix(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app = dashboard(monkeypatch, api.url, token="wrong").run()
    assert not app.exception
    assert "PULSO_API_TOKEN" in app.error[0].value
    assert "wrong" not in app.error[0].value  # the token is never shown


def test_heatmap_cells_are_formatted_the_brazilian_way() -> None:
    assert format_cell("brl", "1234.5") == "R$ 1.234,50"
    assert format_cell("count", 1234) == "1.234"
    assert format_cell("seconds", 12.34) == "12,3 s"
    assert format_cell("minutes", 7.0) == "7,0 min"
    grid = HeatmapGrid(
        name="semana_sum",
        title="Total pago",
        rows="weekday",
        columns="hour",
        unit="brl",
        start=date(2026, 11, 16),
        end=date(2026, 11, 22),
        row_labels=["seg", "ter"],
        column_labels=["09", "10"],
        values=[["35.50", None], [None, "7.00"]],
    )
    spec = heatmap_chart(grid)
    assert spec["data"]["values"] == [
        {"linha": "seg", "coluna": "09", "valor": 35.5, "texto": "R$ 35,50"},
        {"linha": "ter", "coluna": "10", "valor": 7.0, "texto": "R$ 7,00"},
    ]
    assert spec["encoding"]["tooltip"][0]["title"] == "Dia da semana"
