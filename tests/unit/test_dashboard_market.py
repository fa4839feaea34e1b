"""``GET /v1/market/trends`` and the dashboard's Marketplace page (Streamlit AppTest) over a
real API on loopback, with a week of the bundled offline rankings in a DuckDB store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from test_dashboard import TOKEN, WAIT_S, dashboard, metrics, serve

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.market.history import sync_category
from pulso.market.sync import snapshot_time
from pulso.pix.providers import open_psp
from pulso.sources.mercadolivre_offline import offline_client, offline_rounds
from pulso.store import open_store


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": TOKEN}) as http:
            return http.get(path, params=params)


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Api]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    now = snapshot_time(datetime.now(UTC) - timedelta(minutes=1))
    for index, days_ago in enumerate(offline_rounds()):
        with offline_client(index) as client:
            for category in ("MLB1051", "MLB1648"):
                sync_category(client, store, category, now - timedelta(days=days_ago), top_n=5)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    url, server, thread = serve(app)
    yield Api(url)
    server.should_exit = True
    thread.join(timeout=WAIT_S)
    psp.close()
    bus.close()
    store.close()


def test_the_trends_endpoint(api: Api) -> None:
    answer = api.get("/v1/market/trends", days=7)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [c["category_id"] for c in data["categories"]] == ["MLB1051", "MLB1648"]
    celulares = data["categories"][0]
    assert celulares["snapshots"] == 5
    now = [r for r in celulares["rows"] if r["position_now"] is not None]
    assert [r["position_now"] for r in now] == list(range(1, 21))
    assert celulares["entered"] == sum(r["status"] == "new" for r in celulares["rows"]) > 0
    assert celulares["left"] == sum(r["status"] == "left" for r in celulares["rows"]) > 0
    priced = next(r for r in now if r["price_now"])
    assert "." in priced["price_now"] and len(priced["price_now"].split(".")[1]) == 2
    assert data["alerts"] and all("entrou no top 5" in a["message"] for a in data["alerts"])

    one = api.get("/v1/market/trends", category="MLB1648", days=1.5).json()
    assert [c["category_id"] for c in one["categories"]] == ["MLB1648"]
    assert one["categories"][0]["snapshots"] == 2  # 1 day ago and now
    assert all(a["subject"].startswith("MLB1648:") for a in one["alerts"])


@pytest.mark.parametrize(
    ("params", "status"),
    [({"category": "celulares"}, 422), ({"days": 0}, 422), ({"days": "uma semana"}, 422)],
)
def test_bad_parameters_are_refused(api: Api, params: dict[str, Any], status: int) -> None:
    assert api.get("/v1/market/trends", **params).status_code == status


def test_the_trends_need_the_api_key(api: Api) -> None:
    with httpx.Client(base_url=api.url) as http:
        assert http.get("/v1/market/trends").status_code == 401


def test_the_marketplace_page_shows_the_trends(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = api.get("/v1/market/trends", days=7).json()
    app = dashboard(monkeypatch, api.url).run()
    app.switch_page("views/marketplace.py").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value == "Marketplace"
    assert [s.value for s in app.subheader] == ["Categoria MLB1051", "Categoria MLB1648"]
    celulares = expected["categories"][0]
    shown = metrics(app)  # the last category's metrics win the label; check the first apart
    assert set(shown) == {"Subiram", "Caíram", "Entraram", "Saíram"}
    assert app.metric[0].value == str(celulares["rising"])
    assert app.metric[2].value == str(celulares["entered"])
    rows = app.table[0].value.to_dict("records")
    first = celulares["rows"][0]
    assert rows[0]["Agora"] == "1º" and rows[0]["Produto"] == first["title"]
    assert rows[0]["Preço"].startswith("R$ ")
    assert {r["Situação"] for r in rows} >= {"★ entrou", "✕ saiu"}
    assert any("entrou no top 5" in w.value for w in app.warning)

    app.sidebar.text_input(key="market_categoria").input("MLB1648").run()
    assert [s.value for s in app.subheader] == ["Categoria MLB1648"]


def test_an_empty_store_says_how_to_fill_it(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    url, server, thread = serve(
        create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    )
    try:
        app = dashboard(monkeypatch, url).run()
        app.switch_page("views/marketplace.py").run()
        assert not app.exception
        assert "pulso market sync" in app.info[0].value
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)
        psp.close()
        bus.close()
        store.close()
