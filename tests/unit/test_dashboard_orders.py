"""The "Pedidos" page under Streamlit's AppTest, reading a real API served by uvicorn on
loopback over a DuckDB store with hand-made orders: the page shows what GET /v1/query/{name}
returns, formatted as Brazilians write it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import TODAY, Api, dashboard, local, metrics, serve, table_rows

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.domain.events import new_event
from pulso.domain.orders import Order
from pulso.pipeline.processors.orders import OrdersProcessor
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store

TOKEN = "dashboard-token"
WAIT_S = 30.0

# (id, days ago, city, uf, region, product, category, qty, unit R$, channel, status)
ORDERS = (
    ("p1", 0, "Recife", "PE", "Nordeste", "Camiseta", "Vestuário", 2, "50.00", "Site", "Pago"),
    ("p2", 0, "Natal", "RN", "Nordeste", "Fone", "Eletrônicos", 1, "150.00", "App", "Pago"),
    ("p3", 1, "Recife", "PE", "Nordeste", "Fone", "Eletrônicos", 1, "150.00", "App", "Cancelado"),
    ("p4", 40, "Curitiba", "PR", "Sul", "Ração", "Pet Shop", 3, "20.00", "Marketplace", "Pago"),
)


def insert_orders(store: Store) -> None:
    orders = []
    for oid, ago, city, uf, region, product, category, qty, price, channel, status in ORDERS:
        at = local(TODAY - timedelta(days=ago), 10, 0)
        unit = Decimal(price)
        orders.append(
            Order(
                order_id=oid,
                ordered_at=at,
                updated_at=at,
                customer_id="CLI-1",
                city=city,
                uf=uf,
                region=region,
                product=product,
                category=category,
                quantity=qty,
                unit_price=unit,
                total=unit * qty,
                channel=channel,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
            )
        )
    events = [new_event(o, source="test", key=o.order_id, occurred_at=o.updated_at) for o in orders]
    with store.transaction() as tx:
        OrdersProcessor().process(events, tx)


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Api]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    insert_orders(store)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    url, server, thread = serve(app)
    yield Api(url)
    server.should_exit = True
    thread.join(timeout=WAIT_S)
    psp.close()
    bus.close()
    store.close()


def pedidos(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    app = dashboard(monkeypatch, url).run()
    app.switch_page("views/pedidos.py").run()
    assert not app.exception, app.exception
    return app


def test_pedidos_shows_the_order_analyses(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pedidos(monkeypatch, api.url)
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value == "Pedidos"
    assert app.subheader[0].value == "Todo o período"
    # 4 orders; paid 100,00 + 150,00 + 60,00 = 310,00 in 3: ticket 103,33; 1 of 4 cancelled
    assert metrics(app) == {
        "Pedidos": "4",
        "Receita paga": "R$ 310,00",
        "Ticket médio": "R$ 103,33",
        "Cancelados e reembolsados": "25,0%",
    }
    products = table_rows(app, 0)
    assert products[0] == {
        "Nº": "1",
        "Produto": "Ração",
        "Categoria": "Pet Shop",
        "Pedidos": "1",
        "Qtd.": "3",
        "Receita": "R$ 60,00",
    }
    cities = table_rows(app, 1)
    assert [(c["Cidade"], c["Receita"]) for c in cities] == [
        ("Natal", "R$ 150,00"),
        ("Recife", "R$ 100,00"),
        ("Curitiba", "R$ 60,00"),
    ]
    categories = table_rows(app, 2)
    assert categories[0]["Categoria"] == "Eletrônicos"
    assert categories[0]["Participação"] == "48,4%"  # 150 / 310
    channels = {row["Canal"]: row for row in table_rows(app, 3)}
    assert channels["App"]["Cancelados e reembolsados"] == "50,0%"
    statuses = {row["Status"]: row["Pedidos"] for row in table_rows(app, 4)}
    assert statuses == {"Pago": "3", "Cancelado": "1"}
    regions = table_rows(app, 5)
    assert {r["Região"] for r in regions} == {"Nordeste", "Sul"}
    assert len(app.get("vega_lite_chart")) == 1
    expected = api.get("/v1/query/status")
    assert expected["rows"][0] == {
        "status": "Pago",
        "orders": 3,
        "value": "310.00",
        "orders_share": 75.0,
        "value_share": 67.39,
    }


def test_pedidos_for_the_last_days(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pedidos(monkeypatch, api.url)
    app.sidebar.selectbox(key="pedidos_periodo").set_value("Últimos 7 dias").run()
    assert metrics(app)["Pedidos"] == "3"  # p4, 40 days ago, is out
    assert metrics(app)["Receita paga"] == "R$ 250,00"
    assert "a" in app.subheader[0].value and TODAY.strftime("%d/%m/%Y") in app.subheader[0].value


def test_pedidos_with_no_orders_says_so(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    app_api = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    url, server, thread = serve(app_api)
    try:
        app = pedidos(monkeypatch, url)
        assert not app.error, [e.value for e in app.error]
        assert metrics(app)["Pedidos"] == "0" and metrics(app)["Ticket médio"] == "—"
        assert "Nenhum pedido no período" in app.info[0].value
        assert not app.table
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)
        psp.close()
        bus.close()
        store.close()


def test_pedidos_api_down_is_a_friendly_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = pedidos(monkeypatch, closed)
    assert "Não foi possível conectar à API do pulso" in app.error[0].value
    assert not app.metric
