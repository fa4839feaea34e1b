"""Live KPIs as data: a local day's sales (``/v1/kpis/sales``) and PIX payments
(``/v1/kpis/payments``), what the dashboard shows. Money is an exact decimal string."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pulso.analytics.kpis import KpiError, KpiRow, PeriodKpis, period_kpis
from pulso.analytics.sales_kpis import (
    DEFAULT_TOP,
    MAX_TOP,
    SalesFigures,
    SalesKpiError,
    SalesKpis,
    local_today,
    sales_kpis,
)
from pulso.api.deps import ApiKeyDep, StateDep
from pulso.api.problems import BAD_ANALYTICS_QUERY, ApiError

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], dependencies=[ApiKeyDep])

_BAD_QUERY: Final[dict[int | str, dict[str, Any]]] = {
    422: {"description": "Bad date, range or parameter"}
}
DayParam = Annotated[
    date | None, Query(alias="date", description="Local day (America/Sao_Paulo); default today")
]
StoreParam = Annotated[str | None, Query(max_length=64, description="Only this store id")]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


class Figures(BaseModel):
    """Sales, units sold and their total (BRL, decimal string)."""

    sales: int
    quantity: int
    total: Annotated[str, Field(examples=["1234.56"])]

    @classmethod
    def of(cls, figures: SalesFigures) -> Figures:
        return cls(sales=figures.sales, quantity=figures.quantity, total=f"{figures.revenue:.2f}")


class ProductOut(Figures):
    product: str


class CategoryOut(Figures):
    category: str
    share: float = Field(description="Fraction of the day's total, 0..1")


class HourOut(Figures):
    hour: int = Field(description="Local hour, 0..23")


class DayOut(Figures):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    day: date = Field(alias="date")


class SalesKpisOut(BaseModel):
    """A local day's sales KPIs and the daily trend over ``start``..``end``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    day: date = Field(alias="date")
    store: str | None
    total: Annotated[str, Field(description="Total sold on the day (BRL)", examples=["1234.56"])]
    sales: int
    quantity: int
    average_ticket: str | None = Field(description="Ticket médio: total / sales; null if none")
    last_sale_at: datetime | None
    top_products: list[ProductOut]
    by_category: list[CategoryOut]
    by_hour: list[HourOut] = Field(description="24 rows, local hours 0..23")
    start: date = Field(description="First day of the trend")
    end: date = Field(description="Last day of the trend")
    by_day: list[DayOut]

    @classmethod
    def of(cls, kpis: SalesKpis) -> SalesKpisOut:
        totals = kpis.totals
        return cls(
            day=kpis.day,
            store=kpis.store_id,
            total=f"{totals.revenue:.2f}",
            sales=totals.sales,
            quantity=totals.quantity,
            average_ticket=_money(totals.average_ticket),
            last_sale_at=kpis.last_sale_at,
            top_products=[
                ProductOut(product=p.product, **Figures.of(p.figures).model_dump())
                for p in kpis.top_products
            ],
            by_category=[
                CategoryOut(
                    category=c.category, share=c.share, **Figures.of(c.figures).model_dump()
                )
                for c in kpis.by_category
            ],
            by_hour=[
                HourOut(hour=h.hour, **Figures.of(h.figures).model_dump()) for h in kpis.by_hour
            ],
            start=kpis.trend_start,
            end=kpis.trend_end,
            by_day=[DayOut(day=d.day, **Figures.of(d.figures).model_dump()) for d in kpis.by_day],
        )


class PaymentsHourOut(BaseModel):
    hour: int = Field(description="Local hour, 0..23")
    payments: int
    total: str


class PaymentsKpisOut(BaseModel):
    """A local day's confirmed PIX payments: volume and confirmation time."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    day: date = Field(alias="date")
    store: str | None
    payments: int = Field(description="Confirmed payments")
    total: str = Field(description="Confirmed amount (BRL)")
    average_ticket: str | None
    failed: int
    expired: int
    confirmation_mean_s: float | None
    confirmation_p95_s: float | None
    by_hour: list[PaymentsHourOut] = Field(description="24 rows, local hours 0..23")

    @classmethod
    def of(cls, kpis: PeriodKpis, store: str | None) -> PaymentsKpisOut:
        return cls(
            day=kpis.start,
            store=store,
            payments=kpis.payments,
            total=f"{kpis.revenue:.2f}",
            average_ticket=_money(kpis.average_ticket),
            failed=kpis.failed,
            expired=kpis.expired,
            confirmation_mean_s=kpis.confirmation_mean_s,
            confirmation_p95_s=kpis.confirmation_p95_s,
            by_hour=[_payments_hour(h, row) for h, row in enumerate(kpis.by_hour)],
        )


def _payments_hour(hour: int, row: KpiRow) -> PaymentsHourOut:
    return PaymentsHourOut(hour=hour, payments=row.payments, total=f"{row.revenue:.2f}")


@router.get("/sales", responses=_BAD_QUERY)
async def get_sales_kpis(
    state: StateDep,
    day: DayParam = None,
    start: Annotated[
        date | None, Query(alias="from", description="First day of the trend; default to - 29")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="Last day of the trend; default the day")
    ] = None,
    store: StoreParam = None,
    top: Annotated[int, Query(ge=1, le=MAX_TOP, description="How many top products")] = DEFAULT_TOP,
) -> SalesKpisOut:
    """Total sold, number of sales, ticket médio, top products, sales by category and the
    trend by hour of the day and by day over a range, optionally for one store."""
    try:
        kpis = await run_in_threadpool(
            sales_kpis, state.store, day=day, start=start, end=end, store_id=store, top=top
        )
    except SalesKpiError as e:
        raise ApiError(BAD_ANALYTICS_QUERY, str(e)) from e
    return SalesKpisOut.of(kpis)


@router.get("/payments", responses=_BAD_QUERY)
async def get_payment_kpis(
    state: StateDep, day: DayParam = None, store: StoreParam = None
) -> PaymentsKpisOut:
    """Confirmed PIX payments of a local day: count, amount, confirmation time, by hour."""
    the_day = day or local_today()
    try:
        kpis = await run_in_threadpool(
            period_kpis,
            state.store,
            start=the_day,
            end=the_day,
            store_id=store,
            with_previous=False,
        )
    except KpiError as e:
        raise ApiError(BAD_ANALYTICS_QUERY, str(e)) from e
    return PaymentsKpisOut.of(kpis, store)
