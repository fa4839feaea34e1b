"""Offline Mercado Livre for the demo: the bundled catalogue and a week of best-seller rankings
(``fixtures/mercadolivre/*.json``) served in the API's documented shapes through an
``httpx.MockTransport``, so the offline path runs the same client and parsing as the real one.

``rankings.json`` holds rounds, each ``days_ago`` before today; a round changes ranks, brings
one product in and drops one per category, and moves a few prices, so trends have something
to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

import httpx

from pulso.sources.mercadolivre import API_URL, MercadoLivreClient

FIXTURES: Final = "fixtures/mercadolivre"


@dataclass(frozen=True, slots=True)
class OfflineData:
    catalog: dict[str, Any]
    rounds: tuple[dict[str, Any], ...]


@cache
def offline_data() -> OfflineData:
    folder = resources.files("pulso.sources").joinpath(FIXTURES)
    catalog = json.loads(folder.joinpath("catalog.json").read_text(encoding="utf-8"))
    rankings = json.loads(folder.joinpath("rankings.json").read_text(encoding="utf-8"))
    return OfflineData(catalog, tuple(rankings["rounds"]))


def offline_rounds() -> list[int]:
    """Each round's age in days (oldest first)."""
    return [int(r["days_ago"]) for r in offline_data().rounds]


def offline_client(round_index: int = -1) -> MercadoLivreClient:
    """A client answering from the bundled data as it was at ``round_index`` (default: today)."""
    handler = _Handler(offline_data(), round_index)
    http = httpx.Client(base_url=API_URL, transport=httpx.MockTransport(handler))
    return MercadoLivreClient(http)


class _Handler:
    def __init__(self, data: OfflineData, round_index: int) -> None:
        self._catalog = data.catalog
        self._round = data.rounds[round_index]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        match parts:
            case ["sites", _, "categories"]:
                return _ok(self._catalog["site_categories"])
            case ["categories", category_id]:
                return _found(self._catalog["categories"].get(category_id), "category")
            case ["highlights", _, "category", category_id]:
                return self._highlights(category_id)
            case ["items"]:
                ids = request.url.params.get("ids", "").split(",")
                return _ok([self._item_entry(i) for i in ids if i])
            case ["items", item_id]:
                return _found(self._item(item_id), "item")
            case ["products", product_id]:
                return _found(self._product(product_id), "product")
            case ["reviews", "item", item_id]:
                return _found(self._catalog["reviews"].get(item_id), "reviews")
        return _not_found("resource")

    def _highlights(self, category_id: str) -> httpx.Response:
        ranked = self._round["highlights"].get(category_id)
        if ranked is None:
            return _not_found("highlights")
        content = [
            {"id": ident, "position": n, "type": kind} for n, (ident, kind) in enumerate(ranked, 1)
        ]
        query = {"highlight_type": "BEST_SELLER", "criteria": "CATEGORY", "id": category_id}
        return _ok({"query_data": query, "content": content})

    def _item(self, item_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._catalog["items"].get(item_id)
        if item is None:
            return None
        return item | self._moves(item_id)

    def _item_entry(self, item_id: str) -> dict[str, Any]:
        item = self._item(item_id)
        if item is None:
            return {"code": 404, "body": _error_body("item")}
        return {"code": 200, "body": item}

    def _product(self, product_id: str) -> dict[str, Any] | None:
        product: dict[str, Any] | None = self._catalog["products"].get(product_id)
        if product is None:
            return None
        winner = dict(product["buy_box_winner"]) | self._moves(product_id)
        return product | {"buy_box_winner": winner}

    def _moves(self, ident: str) -> dict[str, Any]:
        moved: dict[str, Any] = {}
        if ident in self._round["prices"]:
            moved["price"] = self._round["prices"][ident]
        if ident in self._round["quantities"]:
            moved["available_quantity"] = self._round["quantities"][ident]
        return moved


def _ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def _found(body: Any, what: str) -> httpx.Response:
    return _ok(body) if body is not None else _not_found(what)


def _error_body(what: str) -> dict[str, Any]:
    return {"message": f"{what} not found", "error": "not_found", "status": 404, "cause": []}


def _not_found(what: str) -> httpx.Response:
    return httpx.Response(404, json=_error_body(what))
