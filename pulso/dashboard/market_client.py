"""The dashboard's view of ``GET /v1/market/trends`` (only what the Marketplace page uses)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pulso.dashboard.client import ApiClient, _Read
from pulso.dashboard.settings import DashboardSettings


class TrendRow(_Read):
    product_id: str
    title: str
    kind: str
    status: Literal["rising", "falling", "steady", "new", "left"]
    position_before: int | None
    position_now: int | None
    change: int | None
    velocity_per_day: float | None
    price_now: Decimal | None


class CategoryTrends(_Read):
    category_id: str
    first_at: datetime
    last_at: datetime
    snapshots: int
    rising: int
    falling: int
    entered: int
    left: int
    rows: list[TrendRow]


class MarketAlert(_Read):
    raised_at: datetime
    subject: str
    message: str


class MarketTrends(_Read):
    since: datetime
    until: datetime
    categories: list[CategoryTrends]
    alerts: list[MarketAlert]


class MarketApiClient(ApiClient):
    """``ApiClient`` plus the marketplace endpoint."""

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> MarketApiClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.api_url, token=token, timeout_s=settings.timeout_s)

    def __enter__(self) -> MarketApiClient:
        return self

    def market_trends(self, *, days: float = 7.0, category: str | None = None) -> MarketTrends:
        params: dict[str, str] = {"days": f"{days:g}"}
        if category:
            params["category"] = category
        return self._get("/v1/market/trends", params, MarketTrends.model_validate)
