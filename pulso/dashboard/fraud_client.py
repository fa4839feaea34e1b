"""The API answers the "Fraude" page reads: ``GET /v1/alerts`` and ``GET /v1/alerts/summary``
(only the fields the page uses; unknown ones are ignored)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pulso.dashboard.client import ApiClient, _Read
from pulso.dashboard.settings import DashboardSettings


class AlertDelivery(_Read):
    channel: str
    status: str
    attempts: int
    last_error: str | None = None


class AlertItem(_Read):
    """One alert of ``GET /v1/alerts``."""

    id: str
    kind: str
    severity: str
    subject: str
    message: str
    count: int
    first_at: datetime
    last_at: datetime
    status: str
    deliveries: list[AlertDelivery]


class AlertFeed(_Read):
    alerts: list[AlertItem]


class UfFraud(_Read):
    uf: str
    payments: int
    flagged: int
    alerts: int
    rate: float | None


class KindCount(_Read):
    kind: str
    alerts: int


class FraudSummary(_Read):
    """``GET /v1/alerts/summary``."""

    start: date
    end: date
    payments: int
    flagged: int
    rate: float | None
    alerts: int
    notices: int
    undelivered: int
    by_uf: list[UfFraud]
    by_kind: list[KindCount]


class FraudApiClient(ApiClient):
    """:class:`ApiClient` with the alert endpoints."""

    @classmethod
    def for_settings(cls, settings: DashboardSettings) -> FraudApiClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.api_url, token=token, timeout_s=settings.timeout_s)

    def __enter__(self) -> FraudApiClient:
        return self

    def alerts(
        self,
        *,
        since: datetime | None = None,
        kind: str | None = None,
        severity: str | None = None,
        limit: int = 100,
        until: datetime | None = None,
    ) -> AlertFeed:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        if kind:
            params["kind"] = kind
        if severity:
            params["severity"] = severity
        return self._get("/v1/alerts", params, AlertFeed.model_validate)

    def fraud_summary(self, start: date, end: date) -> FraudSummary:
        params = {"from": start.isoformat(), "to": end.isoformat()}
        return self._get("/v1/alerts/summary", params, FraudSummary.model_validate)
