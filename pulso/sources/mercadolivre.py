"""Mercado Livre's public API (api.mercadolibre.com), the few resources the best-seller monitor
reads, over an injected ``httpx.Client``.

Resources and their documented shapes (developers.mercadolivre.com.br):

- ``GET /sites/MLB/categories`` → ``[{"id": "MLB1051", "name": "Celulares e Telefones"}]``
- ``GET /categories/{id}`` → ``{"id", "name", "path_from_root": [{"id", "name"}],
  "children_categories": [{"id", "name", "total_items_in_this_category"}],
  "total_items_in_this_category"}``
- ``GET /highlights/MLB/category/{id}`` (Bearer token) → ``{"query_data": {"highlight_type":
  "BEST_SELLER", "criteria": "CATEGORY", "id"}, "content": [{"id", "position", "type"}]}``,
  the top 20; ``type`` is ``ITEM`` (a listing) or ``PRODUCT`` (a catalogue product)
- ``GET /items?ids=A,B`` (at most 20) → ``[{"code": 200, "body": {item}}, {"code": 404,
  "body": {"error", "message"}}]``; ``GET /items/{id}`` → the item: ``{"id", "title",
  "category_id", "price", "currency_id", "available_quantity", "sold_quantity", "seller_id",
  "catalog_product_id", "permalink", "status"}``
- ``GET /products/{id}`` → ``{"id", "name", "domain_id", "status", "buy_box_winner":
  {"item_id", "price", "currency_id", "seller_id", "available_quantity"} | null}``
- ``GET /reviews/item/{id}`` → ``{"rating_average": 4.7, "paging": {"total"}, ...}``
- ``POST /oauth/token`` (form: ``grant_type=refresh_token``, ``client_id``, ``client_secret``,
  ``refresh_token``) → ``{"access_token", "token_type": "bearer", "expires_in": 21600,
  "scope", "user_id", "refresh_token"}``; the refresh token is single use, so the new one
  replaces it in memory.
- Errors: ``{"message", "error", "status", "cause": []}``; 429 may carry ``Retry-After``.

A 401 refreshes the access token once and retries; a 429 or 5xx waits (``Retry-After`` or
exponential backoff) and retries up to ``max_attempts``. Tokens never reach a log or an
error message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import httpx

from pulso.errors import PulsoError
from pulso.notify.http import retry_after_s
from pulso.notify.redact import hide_in_http_logs

log = logging.getLogger(__name__)

API_URL: Final = "https://api.mercadolibre.com"
SITE: Final = "MLB"
TOP_N: Final = 20
ITEMS_PER_MULTIGET: Final = 20
HighlightKind = Literal["ITEM", "PRODUCT"]


class MercadoLivreError(PulsoError):
    """Mercado Livre's API did not give a usable answer."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class MercadoLivreAuthError(MercadoLivreError):
    """The credentials were refused (refresh token expired or revoked, wrong client)."""


class MercadoLivreNotFoundError(MercadoLivreError):
    """The category, item or product does not exist."""


class MercadoLivreUnavailableError(MercadoLivreError):
    """Timeouts, network errors, 429 or 5xx that outlasted the retries."""


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class CategoryDetail:
    id: str
    name: str
    path: tuple[Category, ...]
    children: tuple[Category, ...]
    total_items: int | None


@dataclass(frozen=True, slots=True)
class Highlight:
    """One entry of a category's best-seller list."""

    id: str
    position: int
    kind: HighlightKind


@dataclass(frozen=True, slots=True)
class ItemDetail:
    id: str
    title: str
    category_id: str | None
    price: Decimal | None
    currency_id: str | None
    available_quantity: int | None
    sold_quantity: int | None
    seller_id: str | None
    catalog_product_id: str | None


@dataclass(frozen=True, slots=True)
class ProductDetail:
    id: str
    name: str
    domain_id: str | None
    winner_item_id: str | None
    price: Decimal | None
    currency_id: str | None
    available_quantity: int | None
    seller_id: str | None


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str = ""


class MercadoLivreClient:
    """A synchronous client; close it, or use ``with``."""

    def __init__(
        self,
        http: httpx.Client,
        credentials: Credentials | None = None,
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._access_token = credentials.access_token if credentials else ""
        self._refresh_token = credentials.refresh_token if credentials else ""
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self.refreshes = 0
        if credentials:
            hide_in_http_logs(
                *(s for s in (credentials.client_secret, credentials.refresh_token) if s)
            )

    # -- resources -------------------------------------------------------------------------

    def categories(self, site: str = SITE) -> list[Category]:
        body = self._get(f"/sites/{site}/categories")
        return [_category(entry, "/sites/categories") for entry in _list(body, "categories")]

    def category(self, category_id: str) -> CategoryDetail:
        path = f"/categories/{category_id}"
        body = _dict(self._get(path), path)
        try:
            return CategoryDetail(
                id=str(body["id"]),
                name=str(body["name"]),
                path=tuple(_category(c, path) for c in body.get("path_from_root") or ()),
                children=tuple(_category(c, path) for c in body.get("children_categories") or ()),
                total_items=_int_or_none(body.get("total_items_in_this_category")),
            )
        except (KeyError, TypeError) as e:
            raise _malformed(path, e) from None

    def best_sellers(self, category_id: str, site: str = SITE) -> list[Highlight]:
        """The category's best sellers (ITEM and PRODUCT entries), by position, at most 20."""
        path = f"/highlights/{site}/category/{category_id}"
        body = _dict(self._get(path, auth=True), path)
        content = body.get("content")
        if not isinstance(content, list):
            raise _malformed(path, "no content list")
        entries = [_highlight(entry, path) for entry in content]
        kept = [e for e in entries if e is not None]
        return sorted(kept, key=lambda h: h.position)[:TOP_N]

    def item(self, item_id: str) -> ItemDetail:
        path = f"/items/{item_id}"
        return _item(_dict(self._get(path), path), path)

    def items(self, item_ids: Sequence[str]) -> dict[str, ItemDetail]:
        """Many items, 20 per request; ids the API does not know are left out."""
        found: dict[str, ItemDetail] = {}
        for start in range(0, len(item_ids), ITEMS_PER_MULTIGET):
            chunk = item_ids[start : start + ITEMS_PER_MULTIGET]
            body = self._get("/items", params={"ids": ",".join(chunk)})
            for entry in _list(body, "/items"):
                if not isinstance(entry, dict) or entry.get("code") != 200:
                    continue
                detail = _item(_dict(entry.get("body"), "/items"), "/items")
                found[detail.id] = detail
        return found

    def product(self, product_id: str) -> ProductDetail:
        path = f"/products/{product_id}"
        return _product(_dict(self._get(path, auth=True), path), path)

    def item_rating(self, item_id: str) -> float | None:
        """The item's average review rating (0..5), or None when it has no reviews."""
        path = f"/reviews/item/{item_id}"
        try:
            body = _dict(self._get(path), path)
        except MercadoLivreNotFoundError:
            return None
        rating = body.get("rating_average")
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            return None
        return float(rating) if 0 <= rating <= 5 and rating else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MercadoLivreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def _get(self, path: str, *, params: dict[str, str] | None = None, auth: bool = False) -> Any:
        refreshed = False
        if auth and not self._access_token and self._credentials:
            self._refresh()
            refreshed = True
        for attempt in range(1, self._max_attempts + 1):
            response = self._send(path, params, auth)
            if response.status_code == 401 and self._credentials and not refreshed:
                self._refresh()
                refreshed = True
                response = self._send(path, params, auth)
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self._max_attempts:
                    raise MercadoLivreUnavailableError(
                        f"Mercado Livre answered HTTP {response.status_code} to GET {path} "
                        f"{attempt} times; try again later",
                        status=response.status_code,
                        path=path,
                    )
                self._sleep(self._wait_s(response, attempt))
                continue
            return self._json(response, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, path: str, params: dict[str, str] | None, auth: bool) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if auth and self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        try:
            return self._http.get(path, params=params, headers=headers)
        except httpx.TimeoutException as e:
            raise MercadoLivreUnavailableError(
                f"Mercado Livre did not answer GET {path} in time ({type(e).__name__}); "
                "try again, or raise PULSO_MERCADOLIVRE_TIMEOUT_S",
                path=path,
            ) from None
        except httpx.TransportError as e:
            raise MercadoLivreUnavailableError(
                f"cannot reach Mercado Livre at {self._http.base_url} ({type(e).__name__}); "
                "check PULSO_MERCADOLIVRE_API_URL and the network",
                path=path,
            ) from None

    def _wait_s(self, response: httpx.Response, attempt: int) -> float:
        told = retry_after_s(response.headers.get("Retry-After"))
        return told if told is not None else self._backoff_s * 2 ** (attempt - 1)

    def _json(self, response: httpx.Response, path: str) -> Any:
        status = response.status_code
        if status == 404:
            raise MercadoLivreNotFoundError(
                f"Mercado Livre has no {path.lstrip('/')} ({_reason(response)})",
                status=status,
                path=path,
            )
        if status in (401, 403):
            raise MercadoLivreAuthError(
                f"Mercado Livre refused GET {path} (HTTP {status}: {_reason(response)}); "
                "check PULSO_MERCADOLIVRE_CLIENT_ID, _CLIENT_SECRET and _REFRESH_TOKEN",
                status=status,
                path=path,
            )
        if status >= 400:
            raise MercadoLivreError(
                f"Mercado Livre refused GET {path} (HTTP {status}: {_reason(response)})",
                status=status,
                path=path,
            )
        try:
            return response.json()
        except ValueError:
            raise _malformed(path, "not JSON") from None

    def _refresh(self) -> None:
        """Exchange the refresh token for a new access token (and a new refresh token)."""
        creds = self._credentials
        if creds is None:  # pragma: no cover - callers check
            return
        form = {
            "grant_type": "refresh_token",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            response = self._http.post(
                "/oauth/token", data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as e:
            raise MercadoLivreUnavailableError(
                f"cannot refresh the Mercado Livre token ({type(e).__name__})", path="/oauth/token"
            ) from None
        if response.status_code != 200:
            raise MercadoLivreAuthError(
                f"Mercado Livre refused the token refresh (HTTP {response.status_code}: "
                f"{_reason(response)}); get a new refresh token and set "
                "PULSO_MERCADOLIVRE_REFRESH_TOKEN",
                status=response.status_code,
                path="/oauth/token",
            )
        body = _token_body(response)
        self._access_token = body[0]
        if body[1]:
            self._refresh_token = body[1]
        hide_in_http_logs(*(t for t in body if t))
        self.refreshes += 1
        log.info("Mercado Livre access token refreshed")


def _token_body(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise MercadoLivreAuthError(
            "Mercado Livre's token answer has no access_token", path="/oauth/token"
        )
    refresh = body.get("refresh_token") if isinstance(body, dict) else None
    return token, refresh if isinstance(refresh, str) else ""


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)[:200]
    return "no reason given"


def _malformed(path: str, detail: object) -> MercadoLivreError:
    return MercadoLivreError(
        f"Mercado Livre's answer to GET {path} is not in the documented shape ({detail})",
        path=path,
    )


def _dict(body: Any, path: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _malformed(path, f"expected an object, got {type(body).__name__}")
    return body


def _list(body: Any, path: str) -> list[Any]:
    if not isinstance(body, list):
        raise _malformed(path, f"expected a list, got {type(body).__name__}")
    return body


def _category(entry: Any, path: str) -> Category:
    if not isinstance(entry, dict) or not entry.get("id") or not entry.get("name"):
        raise _malformed(path, "a category without id or name")
    return Category(id=str(entry["id"]), name=str(entry["name"]))


def _highlight(entry: Any, path: str) -> Highlight | None:
    """An ITEM or PRODUCT entry; other kinds (e.g. USER_PRODUCT) are skipped."""
    if not isinstance(entry, dict):
        raise _malformed(path, "a content entry that is not an object")
    kind, position, ident = entry.get("type"), entry.get("position"), entry.get("id")
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise _malformed(path, f"position {position!r}")
    if not isinstance(ident, str) or not ident:
        raise _malformed(path, f"id {ident!r}")
    if kind == "ITEM" or kind == "PRODUCT":
        return Highlight(id=ident, position=position, kind=kind)
    log.debug("skipping highlight %s of type %r", ident, kind)
    return None


def _item(body: dict[str, Any], path: str) -> ItemDetail:
    if not body.get("id") or not body.get("title"):
        raise _malformed(path, "an item without id or title")
    return ItemDetail(
        id=str(body["id"]),
        title=str(body["title"]),
        category_id=_str_or_none(body.get("category_id")),
        price=_price(body.get("price"), path),
        currency_id=_str_or_none(body.get("currency_id")),
        available_quantity=_int_or_none(body.get("available_quantity")),
        sold_quantity=_int_or_none(body.get("sold_quantity")),
        seller_id=_str_or_none(body.get("seller_id")),
        catalog_product_id=_str_or_none(body.get("catalog_product_id")),
    )


def _product(body: dict[str, Any], path: str) -> ProductDetail:
    if not body.get("id") or not body.get("name"):
        raise _malformed(path, "a product without id or name")
    winner = body.get("buy_box_winner")
    win = winner if isinstance(winner, dict) else {}
    return ProductDetail(
        id=str(body["id"]),
        name=str(body["name"]),
        domain_id=_str_or_none(body.get("domain_id")),
        winner_item_id=_str_or_none(win.get("item_id")),
        price=_price(win.get("price"), path),
        currency_id=_str_or_none(win.get("currency_id")),
        available_quantity=_int_or_none(win.get("available_quantity")),
        seller_id=_str_or_none(win.get("seller_id")),
    )


def _price(value: Any, path: str) -> Decimal | None:
    """A JSON number as exact reais (two places); None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _malformed(path, f"price {value!r}")
    try:
        price = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise _malformed(path, f"price {value!r}") from None
    if price < 0:
        raise _malformed(path, f"negative price {value!r}")
    return price


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
