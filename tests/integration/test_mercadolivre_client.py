"""The Mercado Livre client against a local server speaking ML's documented shapes
(fake_mercadolivre.py): categories, best sellers, items, products, OAuth refresh, rate
limits, timeouts and malformed answers. Waits are recorded, never slept."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fake_mercadolivre import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH_TOKEN,
    FakeMercadoLivre,
    item,
    product,
)

from pulso.market.sync import take_snapshot
from pulso.sources.mercadolivre import (
    Credentials,
    MercadoLivreAuthError,
    MercadoLivreClient,
    MercadoLivreError,
    MercadoLivreNotFoundError,
    MercadoLivreUnavailableError,
)

CELULARES = "MLB1055"


@pytest.fixture
def fake() -> Iterator[FakeMercadoLivre]:
    with FakeMercadoLivre() as server:
        server.site_categories = [
            {"id": "MLB5672", "name": "Acessórios para Veículos"},
            {"id": "MLB1051", "name": "Celulares e Telefones"},
            {"id": "MLB1648", "name": "Informática"},
        ]
        server.categories["MLB1051"] = {
            "id": "MLB1051",
            "name": "Celulares e Telefones",
            "path_from_root": [{"id": "MLB1051", "name": "Celulares e Telefones"}],
            "children_categories": [
                {
                    "id": "MLB1055",
                    "name": "Celulares e Smartphones",
                    "total_items_in_this_category": 412345,
                },
                {
                    "id": "MLB3813",
                    "name": "Acessórios para Celulares",
                    "total_items_in_this_category": 1200000,
                },
            ],
            "total_items_in_this_category": 1873420,
        }
        server.items = {
            "MLB3001": item("MLB3001", "Smartphone Samsung Galaxy A15 128GB", 999.0, quantity=150),
            "MLB3002": item("MLB3002", "Motorola Moto G24 128GB", 849.9, quantity=None),
            "MLB3003": item("MLB3003", "Xiaomi Redmi Note 13 256GB", 1349.9),
        }
        server.products = {
            "MLB19615320": product(
                "MLB19615320",
                "Apple iPhone 15 (128 GB) - Preto",
                {
                    "item_id": "MLB4100",
                    "price": 4999,
                    "currency_id": "BRL",
                    "seller_id": 1234,
                    "available_quantity": 40,
                },
            ),
            "MLB22015088": product("MLB22015088", "Samsung Galaxy S24 FE 5G", None),
        }
        server.ratings = {"MLB3001": 4.8, "MLB4100": 4.9}
        server.highlights[CELULARES] = [
            {"id": "MLB3002", "position": 2, "type": "ITEM"},
            {"id": "MLB19615320", "position": 1, "type": "PRODUCT"},
            {"id": "MLBU3013800008", "position": 3, "type": "USER_PRODUCT"},
            {"id": "MLB3001", "position": 4, "type": "ITEM"},
            {"id": "MLB22015088", "position": 5, "type": "PRODUCT"},
        ]
        yield server


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    fake: FakeMercadoLivre, waits: Waits | None = None, *, timeout_s: float = 5.0
) -> MercadoLivreClient:
    http = httpx.Client(base_url=fake.base_url, timeout=timeout_s)
    creds = Credentials(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH_TOKEN)
    return MercadoLivreClient(http, creds, sleep=waits if waits is not None else Waits())


def test_categories_and_a_category(fake: FakeMercadoLivre) -> None:
    with make_client(fake) as client:
        categories = client.categories()
        detail = client.category("MLB1051")
    assert [(c.id, c.name) for c in categories][1] == ("MLB1051", "Celulares e Telefones")
    assert detail.name == "Celulares e Telefones"
    assert [c.id for c in detail.children] == ["MLB1055", "MLB3813"]
    assert detail.total_items == 1873420
    assert fake.paths("/oauth") == []  # public resources need no token


def test_best_sellers_refresh_the_token_first_and_keep_items_and_products(
    fake: FakeMercadoLivre,
) -> None:
    with make_client(fake) as client:
        best = client.best_sellers(CELULARES)
    assert [(h.position, h.id, h.kind) for h in best] == [
        (1, "MLB19615320", "PRODUCT"),
        (2, "MLB3002", "ITEM"),
        (4, "MLB3001", "ITEM"),
        (5, "MLB22015088", "PRODUCT"),
    ]  # USER_PRODUCT left out, sorted by position
    token_call, highlights_call = fake.requests
    assert token_call.path == "/oauth/token"
    assert b"grant_type=refresh_token" in token_call.body
    assert highlights_call.authorization == f"Bearer {fake.access_token}"


def test_best_sellers_are_cut_at_twenty(fake: FakeMercadoLivre) -> None:
    fake.highlights["MLB1648"] = [
        {"id": f"MLB{900 + n}", "position": n, "type": "ITEM"} for n in range(25, 0, -1)
    ]
    with make_client(fake) as client:
        best = client.best_sellers("MLB1648")
    assert [h.position for h in best] == list(range(1, 21))


def test_items_are_fetched_twenty_at_a_time_and_unknown_ones_left_out(
    fake: FakeMercadoLivre,
) -> None:
    for n in range(25):
        fake.items[f"MLB5{n:03d}"] = item(f"MLB5{n:03d}", f"Capa {n}", 19.9)
    wanted = [f"MLB5{n:03d}" for n in range(25)] + ["MLB404"]
    with make_client(fake) as client:
        found = client.items(wanted)
        one = client.item("MLB3002")
    assert sorted(found) == sorted(wanted[:25])
    multigets = [r for r in fake.requests if r.path == "/items"]
    assert [len(r.query["ids"][0].split(",")) for r in multigets] == [20, 6]
    assert found["MLB5000"].price == Decimal("19.90")
    assert (one.title, one.price, one.available_quantity) == (
        "Motorola Moto G24 128GB",
        Decimal("849.90"),
        None,
    )


def test_a_product_with_and_without_a_buy_box_winner(fake: FakeMercadoLivre) -> None:
    with make_client(fake) as client:
        iphone = client.product("MLB19615320")
        s24 = client.product("MLB22015088")
    assert (iphone.name, iphone.price, iphone.available_quantity) == (
        "Apple iPhone 15 (128 GB) - Preto",
        Decimal("4999.00"),
        40,
    )
    assert iphone.winner_item_id == "MLB4100" and iphone.seller_id == "1234"
    assert (s24.price, s24.winner_item_id) == (None, None)


def test_a_snapshot_of_a_category(fake: FakeMercadoLivre) -> None:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with make_client(fake) as client:
        snapshots = take_snapshot(client, CELULARES, at)
    rows = [
        (s.position, s.product_id, s.kind, s.price, s.rating, s.available_quantity)
        for s in snapshots
    ]
    assert rows == [
        (1, "MLB19615320", "PRODUCT", Decimal("4999.00"), 4.9, 40),
        (2, "MLB3002", "ITEM", Decimal("849.90"), None, None),
        (4, "MLB3001", "ITEM", Decimal("999.00"), 4.8, 150),
        (5, "MLB22015088", "PRODUCT", None, None, None),
    ]
    assert {s.taken_at for s in snapshots} == {at}
    assert snapshots[0].title == "Apple iPhone 15 (128 GB) - Preto"


def test_a_401_refreshes_once_and_retries_with_the_new_token(fake: FakeMercadoLivre) -> None:
    with make_client(fake) as client:
        client.best_sellers(CELULARES)
        first_token = fake.access_token
        fake.expire_access_token()
        best = client.best_sellers(CELULARES)
        assert client.refreshes == 2
    assert len(best) == 4
    refreshes = [r for r in fake.requests if r.path == "/oauth/token"]
    # the refresh token is single use: the second refresh sends the one the first returned
    assert f"refresh_token={FIRST_REFRESH_TOKEN}".encode() in refreshes[0].body
    assert b"refresh_token=TG-next0001" in refreshes[1].body
    last = fake.requests[-1]
    assert last.authorization == f"Bearer {fake.access_token}" != f"Bearer {first_token}"


def test_a_token_refused_after_the_refresh_is_an_auth_error(fake: FakeMercadoLivre) -> None:
    fake.fail_next("/highlights", 401, times=3)
    with make_client(fake) as client, pytest.raises(MercadoLivreAuthError) as caught:
        client.best_sellers(CELULARES)
    assert len(fake.paths("/oauth/token")) == 1  # one refresh, not a loop
    assert "PULSO_MERCADOLIVRE" in str(caught.value)


def test_a_refused_refresh_names_the_setting_and_hides_the_secrets(
    fake: FakeMercadoLivre,
) -> None:
    fake.refresh_token = "TG-someone-else"
    with make_client(fake) as client, pytest.raises(MercadoLivreAuthError) as caught:
        client.best_sellers(CELULARES)
    message = str(caught.value)
    assert "invalid_grant" in message and "PULSO_MERCADOLIVRE_REFRESH_TOKEN" in message
    assert FIRST_REFRESH_TOKEN not in message and CLIENT_SECRET not in message


def test_tokens_never_reach_the_logs(
    fake: FakeMercadoLivre, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with make_client(fake) as client:
        client.best_sellers(CELULARES)
        fake.expire_access_token()
        client.best_sellers(CELULARES)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refreshed" in logged
    for secret in (FIRST_REFRESH_TOKEN, CLIENT_SECRET, fake.access_token, fake.refresh_token):
        assert secret not in logged


def test_429_waits_as_told_by_retry_after_then_succeeds(fake: FakeMercadoLivre) -> None:
    fake.fail_next("/categories", 429, times=2, retry_after="3")
    waits = Waits()
    with make_client(fake, waits) as client:
        detail = client.category("MLB1051")
    assert detail.id == "MLB1051"
    assert waits == [3.0, 3.0]


def test_429_without_retry_after_backs_off_exponentially_then_gives_up(
    fake: FakeMercadoLivre,
) -> None:
    fake.fail_next("/sites", 429, times=4)
    waits = Waits()
    with make_client(fake, waits) as client, pytest.raises(MercadoLivreUnavailableError) as e:
        client.categories()
    assert waits == [0.5, 1.0, 2.0]
    assert e.value.status == 429 and "4 times" in str(e.value)


def test_server_errors_are_retried(fake: FakeMercadoLivre) -> None:
    fake.fail_next("/items/", 503)
    waits = Waits()
    with make_client(fake, waits) as client:
        assert client.item("MLB3001").title.startswith("Smartphone Samsung")
    assert waits == [0.5]


def test_a_slow_answer_is_a_timeout_error(fake: FakeMercadoLivre) -> None:
    fake.answer_late("/sites", 1.0)
    client = make_client(fake, timeout_s=0.2)
    with client, pytest.raises(MercadoLivreUnavailableError) as caught:
        client.categories()
    assert "in time" in str(caught.value)


def test_nobody_listening_is_an_unavailable_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    http = httpx.Client(base_url=url, timeout=2)
    with MercadoLivreClient(http) as client, pytest.raises(MercadoLivreUnavailableError) as e:
        client.categories()
    assert "PULSO_MERCADOLIVRE_API_URL" in str(e.value)


def test_unknown_category_is_not_found(fake: FakeMercadoLivre) -> None:
    with make_client(fake) as client, pytest.raises(MercadoLivreNotFoundError) as caught:
        client.best_sellers("MLB999999")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>Bad gateway</html>", "not JSON"),
        (b'{"query_data": {}, "content": {"id": "x"}}', "no content list"),
        (b'{"content": [{"id": "MLB1", "position": "1", "type": "ITEM"}]}', "position"),
        (b'{"content": [{"position": 1, "type": "ITEM"}]}', "id None"),
        (b'["not", "an", "object"]', "expected an object"),
    ],
)
def test_malformed_best_sellers_are_clear_errors(
    fake: FakeMercadoLivre, body: bytes, detail: str
) -> None:
    with make_client(fake) as client:
        client.best_sellers(CELULARES)  # a token first
        fake.fail_next("/highlights", 200, body=body)
        with pytest.raises(MercadoLivreError) as caught:
            client.best_sellers(CELULARES)
    assert "documented shape" in str(caught.value) and detail in str(caught.value)


def test_a_malformed_item_price_is_refused(fake: FakeMercadoLivre) -> None:
    fake.items["MLB3001"]["price"] = "mil reais"
    with make_client(fake) as client, pytest.raises(MercadoLivreError, match="price"):
        client.item("MLB3001")
