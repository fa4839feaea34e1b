"""The API answers the "Pedidos" page reads: ``GET /v1/query/{name}``, turned back into the
:class:`~pulso.analytics.order_queries.QueryResult` the CLI prints."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from pulso.analytics.order_queries import QueryResult, result_from_document
from pulso.dashboard.client import ApiClient
from pulso.dashboard.settings import DashboardSettings


class OrdersApiClient(ApiClient):
    """:class:`ApiClient` with the order queries."""

    @classmethod
    def for_settings(cls, settings: DashboardSettings) -> OrdersApiClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.api_url, token=token, timeout_s=settings.timeout_s)

    def order_query(
        self, name: str, *, start: date | None = None, end: date | None = None, limit: int = 10
    ) -> QueryResult:
        params: dict[str, Any] = {"limit": limit}
        if start is not None:
            params["from"] = start.isoformat()
        if end is not None:
            params["to"] = end.isoformat()
        return self._get(f"/v1/query/{quote(name, safe='')}", params, _parse)


def _parse(document: Any) -> QueryResult:
    try:
        return result_from_document(document)
    except (KeyError, TypeError) as e:  # the client reports ValueError as an unexpected answer
        raise ValueError(f"not a query answer: {e}") from e
