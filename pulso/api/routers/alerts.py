"""Alerts as data: the feed (``GET /v1/alerts``) and the fraud summary by UF
(``GET /v1/alerts/summary``) the dashboard's "Fraude" page shows.

A listed alert is a notice: the alerts of one kind and subject within the throttle window,
``count`` of them; ``status`` says whether every channel has it (``delivered``), a channel
is still being retried (``pending``, with ``last_error``), refused it (``failed``), it was not
meant to be sent (``not_sent``: below PULSO_ALERT_MIN_SEVERITY or no channel), or the
dispatcher has not read it yet (``new``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pulso.alerts.query import (
    KIND_PATTERN,
    MAX_LIMIT,
    AlertQueryError,
    AlertView,
    FraudSummary,
    fraud_summary,
    list_alerts,
)
from pulso.api.deps import ApiKeyDep, StateDep
from pulso.api.problems import ProblemType, problem_responses, raised_as

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], dependencies=[ApiKeyDep])

BAD_ALERTS_QUERY: Final = ProblemType("bad-query", 422, "The alerts query cannot be answered")
SUMMARY_DAYS: Final = 7
_BAD_QUERY: Final = problem_responses({422: "Bad parameter (problem document)"})
_AS_PROBLEM: Final = {AlertQueryError: BAD_ALERTS_QUERY}


class DeliveryOut(BaseModel):
    channel: str = Field(examples=["telegram"])
    status: Literal["pending", "sent", "failed"]
    attempts: int
    sent_count: int = Field(description="The count the last successful send carried")
    next_attempt_at: datetime | None = Field(description="When a pending channel is retried")
    sent_at: datetime | None
    last_error: str | None


class AlertOut(BaseModel):
    """One alert (a notice of ``count`` alerts of one kind and subject)."""

    id: str
    kind: str = Field(examples=["fraud.card_testing"])
    severity: Literal["info", "warning", "critical"] | str
    subject: str = Field(description="Store id or payer hash (never a CPF)")
    message: str = Field(description="Brazilian Portuguese")
    count: int
    first_at: datetime
    last_at: datetime
    status: Literal["new", "not_sent", "pending", "delivered", "failed"]
    details: dict[str, Any]
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, view: AlertView) -> AlertOut:
        return cls(
            id=view.alert_id,
            kind=view.kind,
            severity=view.severity,
            subject=view.subject,
            message=view.message,
            count=view.count,
            first_at=view.first_at,
            last_at=view.last_at,
            status=view.status,
            details=view.details,
            deliveries=[
                DeliveryOut(
                    channel=d.channel,
                    status=d.status,
                    attempts=d.attempts,
                    sent_count=d.sent_count,
                    next_attempt_at=d.next_attempt_at,
                    sent_at=d.sent_at,
                    last_error=d.last_error,
                )
                for d in view.deliveries
            ],
        )


class AlertList(BaseModel):
    alerts: list[AlertOut]


class UfOut(BaseModel):
    uf: str = Field(description="UF; ?? when the payment's place is unknown")
    payments: int
    flagged: int = Field(description="Payments named by a fraud alert")
    alerts: int
    rate: float | None = Field(description="flagged / payments, 0..1; null without payments")


class KindOut(BaseModel):
    kind: str
    alerts: int


class SummaryOut(BaseModel):
    """Fraud over local days ``start``..``end`` (America/Sao_Paulo)."""

    start: date
    end: date
    payments: int = Field(description="Payments created in the period")
    flagged: int = Field(description="Payments named by a fraud alert in the period")
    rate: float | None = Field(description="flagged / payments, 0..1")
    alerts: int = Field(description="Fraud alert rows raised in the period")
    notices: int = Field(description="Those alerts after throttling")
    undelivered: int = Field(description="Notices some channel has not received yet")
    by_uf: list[UfOut]
    by_kind: list[KindOut]

    @classmethod
    def of(cls, s: FraudSummary) -> SummaryOut:
        return cls(
            start=s.start,
            end=s.end,
            payments=s.payments,
            flagged=s.flagged,
            rate=s.rate,
            alerts=s.alerts,
            notices=s.notices,
            undelivered=s.undelivered,
            by_uf=[
                UfOut(uf=u.uf, payments=u.payments, flagged=u.flagged, alerts=u.alerts, rate=u.rate)
                for u in s.by_uf
            ],
            by_kind=[KindOut(kind=k.kind, alerts=k.alerts) for k in s.by_kind],
        )


@router.get("", responses=_BAD_QUERY)
async def get_alerts(
    state: StateDep,
    since: Annotated[
        datetime | None,
        Query(description="Only alerts whose last occurrence is at or after this (with zone)"),
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            pattern=KIND_PATTERN,
            description="A kind (fraud.velocity) or a family (fraud)",
        ),
    ] = None,
    severity: Annotated[
        Literal["info", "warning", "critical"] | None, Query(description="Minimum severity")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    until: Annotated[
        datetime | None,
        Query(description="Only alerts whose first occurrence is before this (with zone)"),
    ] = None,
) -> AlertList:
    """The newest alerts first, each with its count and what every channel did with it."""
    with raised_as(_AS_PROBLEM):
        views = await run_in_threadpool(
            list_alerts,
            state.store,
            since=since,
            kind=kind,
            severity=severity,
            limit=limit,
            until=until,
        )
    return AlertList(alerts=[AlertOut.of(v) for v in views])


@router.get("/summary", responses=_BAD_QUERY)
async def get_alert_summary(
    state: StateDep,
    start: Annotated[
        date | None, Query(alias="from", description="First local day; default to - 6")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="Last local day; default today")
    ] = None,
) -> SummaryOut:
    """Fraud rate (payments flagged / payments created), by UF and by kind, over a period."""
    from pulso.analytics.sales_kpis import local_today

    last = end or local_today()
    first = start or last - timedelta(days=SUMMARY_DAYS - 1)
    with raised_as(_AS_PROBLEM):
        summary = await run_in_threadpool(fraud_summary, state.store, start=first, end=last)
    return SummaryOut.of(summary)
