"""A local HTTP server that speaks Mercado Livre's public API, for tests.

Mercado Livre cannot be reached here, so this fake speaks its documented wire format
(developers.mercadolivre.com.br: "Mais vendidos no Mercado Livre", "Categorias e
atributos", "Itens e buscas" multiget, "Produtos", "Opiniões", "Autenticação e
autorização"):

- ``GET /sites/MLB/categories`` → ``[{"id": "MLB1051", "name": "Celulares e Telefones"}]``
- ``GET /categories/{id}`` → ``{"id", "name", "path_from_root": [{"id", "name"}],
  "children_categories": [{"id", "name", "total_items_in_this_category"}],
  "total_items_in_this_category"}``; unknown → 404
- ``GET /highlights/MLB/category/{id}`` with ``Authorization: Bearer <token>`` →
  ``{"query_data": {"highlight_type": "BEST_SELLER", "criteria": "CATEGORY", "id"},
  "content": [{"id": "MLB1481736854", "position": 1, "type": "ITEM"}, ...]}``; types ITEM,
  PRODUCT (and, in newer answers, USER_PRODUCT)
- ``GET /items?ids=A,B`` (at most 20) → ``[{"code": 200, "body": {item}}, {"code": 404,
  "body": {"error": "not_found", ...}}]``; ``GET /items/{id}`` → the item
- ``GET /products/{id}`` (Bearer) → ``{"id", "name", "domain_id", "buy_box_winner": {"item_id",
  "price", "currency_id", "seller_id", "available_quantity"} | null}``
- ``GET /reviews/item/{id}`` → ``{"paging": {"total"}, "rating_average", "rating_levels"}``
- ``POST /oauth/token`` (``application/x-www-form-urlencoded``: ``grant_type=refresh_token``,
  ``client_id``, ``client_secret``, ``refresh_token``) → ``{"access_token", "token_type":
  "bearer", "expires_in": 21600, "scope", "user_id", "refresh_token"}``; the refresh token is
  single use (the answer carries the next one); a bad one → 400 ``invalid_grant``
- Errors: ``{"message", "error", "status", "cause": []}``; an expired token → 401.

Tests script failures with :meth:`FakeMercadoLivre.fail_next` (a status, optionally with
``Retry-After``, or a raw body) and :meth:`FakeMercadoLivre.answer_late`. Every request is
recorded (the Authorization header too, so tests can check which token was sent).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback_http import LoopbackFake, QuietHandler

CLIENT_ID = "1234567890123456"
CLIENT_SECRET = "fake-client-secret-abcdef"
FIRST_REFRESH_TOKEN = "TG-6750a0f0d1e2f3-241983636"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    body: bytes


@dataclass(slots=True)
class _Fault:
    path_prefix: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def ml_error(status: int, error: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": error, "status": status, "cause": []}


def item(
    item_id: str,
    title: str,
    price: float | None,
    *,
    quantity: int | None = 50,
    category_id: str = "MLB1055",
    seller_id: int = 241983636,
) -> dict[str, Any]:
    """An item body as ``GET /items/{id}`` answers it."""
    return {
        "id": item_id,
        "site_id": "MLB",
        "title": title,
        "category_id": category_id,
        "price": price,
        "base_price": price,
        "currency_id": "BRL",
        "initial_quantity": 200,
        "available_quantity": quantity,
        "sold_quantity": 5000,
        "seller_id": seller_id,
        "buying_mode": "buy_it_now",
        "listing_type_id": "gold_special",
        "condition": "new",
        "permalink": f"https://produto.mercadolivre.com.br/MLB-{item_id[3:]}",
        "catalog_product_id": None,
        "status": "active",
    }


def product(
    product_id: str, name: str, winner: dict[str, Any] | None, domain: str = "MLB-CELLPHONES"
) -> dict[str, Any]:
    """A catalogue product as ``GET /products/{id}`` answers it."""
    return {
        "id": product_id,
        "status": "active",
        "domain_id": domain,
        "name": name,
        "permalink": f"https://www.mercadolivre.com.br/p/{product_id}",
        "pictures": [],
        "buy_box_winner": winner,
    }


class FakeMercadoLivre(LoopbackFake):
    """The fake's state; tests fill ``categories``, ``highlights``, ``items``... directly."""

    def __init__(self) -> None:
        self.site_categories: list[dict[str, Any]] = []
        self.categories: dict[str, dict[str, Any]] = {}
        self.highlights: dict[str, list[dict[str, Any]]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.ratings: dict[str, float] = {}
        self.requests: list[RecordedRequest] = []
        self.refresh_token = FIRST_REFRESH_TOKEN
        self.access_token = ""  # none valid until the client refreshes
        self._serial = itertools.count(1)
        self._faults: list[_Fault] = []
        self._late: list[tuple[str, float]] = []
        super().__init__(_handler_for(self))

    @property
    def base_url(self) -> str:
        return self.url

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """The next ``times`` requests whose path starts with ``path_prefix`` get ``status``."""
        raw = (
            body if body is not None else json.dumps(ml_error(status, "fault", "scripted")).encode()
        )
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._faults.extend(_Fault(path_prefix, status, raw, headers) for _ in range(times))

    def answer_late(self, path_prefix: str, delay_s: float) -> None:
        with self._lock:
            self._late.append((path_prefix, delay_s))

    def expire_access_token(self) -> None:
        """The current access token stops working (as after its 6 hours)."""
        self.access_token = "expired-" + self.access_token

    def paths(self, prefix: str = "") -> list[str]:
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    # -- serving ---------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            late = next((d for p, d in self._late if request.path.startswith(p)), None)
            if late is not None:
                self._late = [(p, d) for p, d in self._late if not request.path.startswith(p)]
            fault = next((f for f in self._faults if request.path.startswith(f.path_prefix)), None)
            if fault is not None:
                self._faults.remove(fault)
        if late is not None:
            time.sleep(late)
        if fault is not None:
            return fault.status, fault.body, fault.headers
        status, body = self._route(request)
        return status, json.dumps(body).encode(), {}

    def _route(self, request: RecordedRequest) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts == ["oauth", "token"]:
            return self._token(request)
        match parts:
            case ["sites", "MLB", "categories"]:
                return 200, self.site_categories
            case ["categories", category_id]:
                return _found(self.categories.get(category_id), "Category not found")
            case ["highlights", "MLB", "category", category_id]:
                return self._authorized(request) or self._highlights(category_id)
            case ["items"]:
                return self._multiget(request.query.get("ids", [""])[0])
            case ["items", item_id]:
                return _found(self.items.get(item_id), f"Item with id {item_id} not found")
            case ["products", product_id]:
                return self._authorized(request) or _found(
                    self.products.get(product_id), "Product not found"
                )
            case ["reviews", "item", item_id]:
                return self._reviews(item_id)
        return 404, ml_error(404, "not_found", f"resource {request.path} not found")

    def _authorized(self, request: RecordedRequest) -> tuple[int, Any] | None:
        if not self.access_token or request.authorization != f"Bearer {self.access_token}":
            return 401, ml_error(401, "unauthorized", "invalid access token")
        return None

    def _highlights(self, category_id: str) -> tuple[int, Any]:
        content = self.highlights.get(category_id)
        if content is None:
            return 404, ml_error(404, "not_found", "Category not found")
        query = {"highlight_type": "BEST_SELLER", "criteria": "CATEGORY", "id": category_id}
        return 200, {"query_data": query, "content": content}

    def _multiget(self, ids_text: str) -> tuple[int, Any]:
        ids = [i for i in ids_text.split(",") if i]
        if not ids or len(ids) > 20:
            return 400, ml_error(400, "bad_request", "ids must hold 1 to 20 ids")
        answer = []
        for ident in ids:
            body = self.items.get(ident)
            if body is None:
                answer.append({"code": 404, "body": ml_error(404, "not_found", "not found")})
            else:
                answer.append({"code": 200, "body": body})
        return 200, answer

    def _reviews(self, item_id: str) -> tuple[int, Any]:
        rating = self.ratings.get(item_id)
        if rating is None:
            return 200, {"paging": {"total": 0}, "rating_average": 0, "rating_levels": {}}
        return 200, {"paging": {"total": 120}, "rating_average": rating, "rating_levels": {}}

    def _token(self, request: RecordedRequest) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return 400, ml_error(400, "unsupported_grant_type", "grant_type not supported")
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 400, ml_error(400, "invalid_client", "invalid client_id or client_secret")
        if form.get("refresh_token") != self.refresh_token:
            return 400, ml_error(
                400,
                "invalid_grant",
                "Error validating grant. Your authorization code or refresh token may be "
                "expired or it was already used",
            )
        n = next(self._serial)
        self.access_token = f"APP_USR-{CLIENT_ID}-112406-fake{n:04d}-241983636"
        self.refresh_token = f"TG-next{n:04d}-241983636"
        return 200, {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": 21600,
            "scope": "offline_access read write",
            "user_id": 241983636,
            "refresh_token": self.refresh_token,
        }


def _found(body: Any, message: str) -> tuple[int, Any]:
    if body is None:
        return 404, ml_error(404, "not_found", message)
    return 200, body


def _handler_for(fake: FakeMercadoLivre) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            recorded = RecordedRequest(
                method=method,
                path=parts.path,
                query=parse_qs(parts.query),
                authorization=self.headers.get("Authorization", ""),
                body=self.read_body(),
            )
            status, payload, headers = fake.handle(recorded)
            self.answer(
                status, payload, content_type="application/json;charset=UTF-8", headers=headers
            )

    return Handler
