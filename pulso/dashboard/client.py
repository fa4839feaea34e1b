"""The dashboard's view of the pulso API: the few endpoints it reads, as typed answers.

The models here describe only what the dashboard uses (unknown fields are ignored), so the
dashboard imports neither FastAPI nor the store. Every failure becomes one
:class:`DashboardApiError` whose message is meant for the person looking at the page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pulso.dashboard.settings import DashboardSettings
from pulso.errors import PulsoError

API_KEY_HEADER: Final = "X-API-Key"

Answer = TypeVar("Answer")


class DashboardApiError(PulsoError):
    """The API did not give the dashboard an answer; the message is for the user (pt-BR)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Figures(_Read):
    sales: int
    quantity: int
    total: Decimal


class ProductFigures(Figures):
    product: str


class CategoryFigures(Figures):
    category: str
    share: float


class HourFigures(Figures):
    hour: int


class DayFigures(Figures):
    day: date = Field(alias="date")


class SalesKpis(_Read):
    """``GET /v1/kpis/sales``."""

    day: date = Field(alias="date")
    store: str | None
    total: Decimal
    sales: int
    quantity: int
    average_ticket: Decimal | None
    last_sale_at: datetime | None
    top_products: list[ProductFigures]
    by_category: list[CategoryFigures]
    by_hour: list[HourFigures]
    start: date
    end: date
    by_day: list[DayFigures]


class PaymentsHour(_Read):
    hour: int
    payments: int
    total: Decimal


class PaymentKpis(_Read):
    """``GET /v1/kpis/payments``."""

    day: date = Field(alias="date")
    store: str | None
    payments: int
    total: Decimal
    average_ticket: Decimal | None
    failed: int
    expired: int
    confirmation_mean_s: float | None
    confirmation_p95_s: float | None
    by_hour: list[PaymentsHour]


class HeatmapInfo(_Read):
    """One entry of ``GET /v1/analytics/heatmaps``."""

    name: str
    title: str
    rows: str
    columns: str
    unit: str


class HeatmapGrid(HeatmapInfo):
    """``GET /v1/analytics/heatmaps/{name}``: ``values[i][j]`` is row ``i``, column ``j``."""

    start: date
    end: date
    row_labels: list[str]
    column_labels: list[str]
    values: list[list[int | float | str | None]]


_HEATMAP_LIST: Final = TypeAdapter(list[HeatmapInfo])


class ApiClient:
    """A synchronous client of the pulso API for one page run (close it, or use ``with``)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {API_KEY_HEADER: token} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> ApiClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.api_url, token=token, timeout_s=settings.timeout_s)

    def sales(
        self,
        day: date,
        *,
        store: str | None = None,
        start: date | None = None,
        end: date | None = None,
        top: int = 5,
    ) -> SalesKpis:
        params: dict[str, Any] = {"date": day.isoformat(), "top": top}
        params |= _optional(store=store, start=start, end=end)
        return self._get("/v1/kpis/sales", params, SalesKpis.model_validate)

    def payments(self, day: date, *, store: str | None = None) -> PaymentKpis:
        params = {"date": day.isoformat(), **_optional(store=store)}
        return self._get("/v1/kpis/payments", params, PaymentKpis.model_validate)

    def heatmaps(self) -> list[HeatmapInfo]:
        return self._get("/v1/analytics/heatmaps", {}, _HEATMAP_LIST.validate_python)

    def heatmap(
        self, name: str, *, start: date, end: date, store: str | None = None
    ) -> HeatmapGrid:
        params = {"from": start.isoformat(), "to": end.isoformat(), **_optional(store=store)}
        path = f"/v1/analytics/heatmaps/{quote(name, safe='')}"
        return self._get(path, params, HeatmapGrid.model_validate)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any], parse: Callable[[Any], Answer]) -> Answer:
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as e:
            raise DashboardApiError(
                f"A API do pulso em {self.base_url} não respondeu a tempo. "
                "Tente de novo em instantes."
            ) from e
        except httpx.TransportError as e:
            raise DashboardApiError(
                f"Não foi possível conectar à API do pulso em {self.base_url}. "
                "Verifique se o servidor está no ar (pulso up) e se PULSO_DASHBOARD_API_URL "
                "aponta para ele."
            ) from e
        if response.status_code >= 400:
            raise _problem(response)
        try:
            return parse(response.json())
        except (ValueError, ValidationError) as e:
            raise DashboardApiError(
                f"A API do pulso em {self.base_url} deu uma resposta inesperada em {path}; "
                "o servidor e o dashboard são da mesma versão?"
            ) from e


def _optional(**values: object) -> dict[str, str]:
    """Query parameters for the values given (dates as ISO), leaving out the Nones."""
    names = {"start": "from", "end": "to"}
    return {
        names.get(k, k): v.isoformat() if isinstance(v, date) else str(v)
        for k, v in values.items()
        if v is not None
    }


def _problem(response: httpx.Response) -> DashboardApiError:
    status = response.status_code
    if status == 401:
        return DashboardApiError(
            "A API recusou a chave de acesso: defina PULSO_API_TOKEN com o token do servidor.",
            status=status,
        )
    detail = _detail(response)
    if status >= 500:
        message = f"A API do pulso está com problemas (HTTP {status}). Tente de novo em instantes."
    else:
        message = f"A API não aceitou o pedido (HTTP {status})."
    return DashboardApiError(f"{message} Detalhe: {detail}" if detail else message, status=status)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else ""
