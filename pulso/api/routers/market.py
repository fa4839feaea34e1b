"""Mercado Livre best-seller trends as data (``GET /v1/market/trends``), what the dashboard's
Marketplace page shows. Money is an exact decimal string; times are UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pulso.api.deps import ApiKeyDep, StateDep
from pulso.api.problems import BAD_ANALYTICS_QUERY, ApiError
from pulso.market.history import load_snapshots, market_alerts
from pulso.market.trends import CategoryTrends, TrendRow, category_trends
from pulso.store.protocol import Store

router = APIRouter(prefix="/v1/market", tags=["market"], dependencies=[ApiKeyDep])

CATEGORY_PATTERN = r"^[A-Za-z]{3}\d{1,17}$"


class TrendRowOut(BaseModel):
    product_id: str
    title: str
    kind: str
    status: Literal["rising", "falling", "steady", "new", "left"]
    position_before: int | None = Field(description="At the window's first snapshot")
    position_now: int | None = Field(description="At the latest snapshot")
    change: int | None = Field(description="Positions climbed (negative: fell)")
    velocity_per_day: float | None = Field(description="Positions climbed per day")
    price_before: str | None
    price_now: str | None

    @classmethod
    def of(cls, row: TrendRow) -> TrendRowOut:
        return cls(
            product_id=row.product_id,
            title=row.title,
            kind=row.kind,
            status=row.status,
            position_before=row.position_before,
            position_now=row.position_now,
            change=row.change,
            velocity_per_day=row.velocity_per_day,
            price_before=_money(row.price_before),
            price_now=_money(row.price_now),
        )


class CategoryTrendsOut(BaseModel):
    category_id: str
    first_at: datetime
    last_at: datetime
    snapshots: int
    rising: int
    falling: int
    entered: int
    left: int
    rows: list[TrendRowOut]

    @classmethod
    def of(cls, report: CategoryTrends) -> CategoryTrendsOut:
        return cls(
            category_id=report.category_id,
            first_at=report.first_at,
            last_at=report.last_at,
            snapshots=report.snapshots,
            rising=len(report.rising),
            falling=len(report.falling),
            entered=len(report.with_status("new")),
            left=len(report.with_status("left")),
            rows=[TrendRowOut.of(row) for row in report.rows],
        )


class MarketAlertOut(BaseModel):
    raised_at: datetime
    subject: str
    message: str


class MarketTrendsOut(BaseModel):
    """Trends of each category with snapshots in ``[since, until]``, and the latest alerts."""

    since: datetime
    until: datetime
    categories: list[CategoryTrendsOut]
    alerts: list[MarketAlertOut]


@router.get("/trends")
async def get_trends(
    state: StateDep,
    category: Annotated[
        list[str] | None,
        Query(description="Only these categories (repeat the parameter), e.g. MLB1051"),
    ] = None,
    days: Annotated[float, Query(gt=0, le=365, description="Window, in days")] = 7.0,
) -> MarketTrendsOut:
    """Rising and falling products, new entrants and leavers, and rank velocity."""
    for ident in category or []:
        if not re.match(CATEGORY_PATTERN, ident):
            raise ApiError(BAD_ANALYTICS_QUERY, f"{ident!r} is not a category id such as MLB1051")
    return await run_in_threadpool(_trends, state.store, category or [], days)


def _trends(store: Store, categories: list[str], days: float) -> MarketTrendsOut:
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    ids = [c.upper() for c in categories]
    snapshots = load_snapshots(store, since=since, until=until, category_ids=ids)
    alerts = [
        MarketAlertOut(raised_at=at, subject=subject, message=message)
        for at, subject, message in market_alerts(store, limit=20)
        if not ids or subject.split(":")[0] in ids
    ]
    return MarketTrendsOut(
        since=since,
        until=until,
        categories=[CategoryTrendsOut.of(r) for r in category_trends(snapshots)],
        alerts=alerts,
    )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"
