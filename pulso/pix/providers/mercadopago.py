"""Mercado Pago's Payments API as a PSP: PIX charges over ``/v1/payments`` (httpx).

Retries: 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors are retried
with exponential backoff and jitter. Retrying a ``POST`` is safe because it carries an
``X-Idempotency-Key``: Mercado Pago answers a repeated key with the payment it already
created. Other 4xx answers are final and become PSPError with Mercado Pago's own message.
The access token only ever travels in the ``Authorization`` header; no message carries it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from pulso.domain.money import CENT
from pulso.domain.validators import only_digits
from pulso.pix import webhooks
from pulso.pix.errors import ChargeNotFoundError, PSPError, PSPUnavailableError
from pulso.pix.providers.protocol import ChargeRequest, Notification, PSPCharge, PSPStatus

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.mercadopago.com"
_RETRY_AFTER_MAX_S: Final = 30.0
_MESSAGE_MAX_CHARS: Final = 300

# Mercado Pago's payment statuses, as documented for GET /v1/payments/{id}.
_STATUS_MAP: Final[dict[str, PSPStatus]] = {
    "pending": "pending",
    "approved": "approved",
    "authorized": "in_process",  # authorized but not captured yet: money not settled
    "in_process": "in_process",
    "in_mediation": "in_process",  # a dispute holds the money
    "rejected": "rejected",
    "cancelled": "cancelled",  # "expired" when status_detail says so
    "refunded": "refunded",
    "charged_back": "refunded",  # the money went back to the payer
}


class MercadoPagoPSP:
    """PIX charges through Mercado Pago's Payments API."""

    name = "mercadopago"

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        webhook_secret: str,
        notification_url: str | None,
        http: httpx.Client | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 4.0,
        webhook_tolerance_s: float = webhooks.DEFAULT_TOLERANCE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not access_token:
            raise ValueError("a Mercado Pago access token is required")
        if max_retries < 0 or timeout_s <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")
        self._token = access_token
        self._base_url = base_url.rstrip("/")
        self._webhook_secret = webhook_secret
        self._notification_url = notification_url
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client()
        self._timeout = httpx.Timeout(timeout_s)
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._webhook_tolerance_s = webhook_tolerance_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"MercadoPagoPSP(base_url={self._base_url!r})"

    def create_charge(self, request: ChargeRequest, *, idempotency_key: str) -> PSPCharge:
        if not idempotency_key:
            raise ValueError("an idempotency key is required to create a charge")
        data = self._request(
            "POST",
            "/v1/payments",
            body=payment_body(request, self._notification_url),
            idempotency_key=idempotency_key,
        )
        charge = parse_payment(data, fallback_expires_at=request.expires_at)
        if not charge.brcode:
            raise PSPError(
                f"Mercado Pago created payment {charge.psp_payment_id} without a PIX code "
                "(point_of_interaction.transaction_data.qr_code): is PIX enabled on the account?"
            )
        return charge

    def get_charge(self, psp_payment_id: str) -> PSPCharge:
        return parse_payment(self._request("GET", _payment_path(psp_payment_id)))

    def cancel_charge(self, psp_payment_id: str) -> PSPCharge:
        current = self.get_charge(psp_payment_id)
        if current.status in ("cancelled", "expired"):
            return current
        data = self._request("PUT", _payment_path(psp_payment_id), body={"status": "cancelled"})
        return parse_payment(data)

    def read_notification(
        self, headers: Mapping[str, str], body: bytes, *, query_data_id: str | None = None
    ) -> Notification:
        return webhooks.read_notification(
            self.name,
            self._webhook_secret,
            headers,
            body,
            query_data_id=query_data_id,
            tolerance_s=self._webhook_tolerance_s,
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if idempotency_key:
            headers["X-Idempotency-Key"] = idempotency_key
        content = json.dumps(body).encode() if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        failure = _Failure("not attempted")
        for attempt in range(self._max_retries + 1):
            if attempt:
                self._sleep(self._backoff_s(attempt, failure))
            outcome = self._send(method, path, headers, content)
            if isinstance(outcome, httpx.Response):
                return _answer(outcome, path)
            failure = outcome
            log.warning("Mercado Pago %s %s failed: %s", method, path, failure.reason)
        raise PSPUnavailableError(
            f"Mercado Pago did not answer {method} {path} after {self._max_retries + 1} "
            f"attempts (last: {failure.reason}); try again later or check "
            "PULSO_MERCADOPAGO_BASE_URL"
        )

    def _send(
        self, method: str, path: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response | _Failure:
        """One attempt: a final response, or the reason it is worth retrying."""
        try:
            response = self._http.request(
                method,
                self._base_url + path,
                headers=headers,
                content=content,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as e:
            return _Failure(f"timeout ({type(e).__name__})")
        except httpx.TransportError as e:
            return _Failure(f"network error ({type(e).__name__})")
        if response.status_code != 429 and response.status_code < 500:
            return response
        retry_after_s = _parse_retry_after(response.headers.get("Retry-After"))
        return _Failure(f"HTTP {response.status_code}", retry_after_s)

    def _backoff_s(self, attempt: int, failure: _Failure) -> float:
        if failure.retry_after_s is not None:
            return failure.retry_after_s
        ceiling_s = min(self._backoff_max_s, self._backoff_base_s * 2.0 ** (attempt - 1))
        # Half fixed, half random: spreads the retries of many tills apart.
        return ceiling_s / 2 + random.uniform(0, ceiling_s / 2)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why an attempt is worth retrying, and how long the PSP asked us to wait."""

    reason: str
    retry_after_s: float | None = None


def payment_body(request: ChargeRequest, notification_url: str | None) -> dict[str, Any]:
    """The ``POST /v1/payments`` body for a PIX charge."""
    if request.expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    body: dict[str, Any] = {
        # A float prints its shortest exact decimal, so 2-place amounts stay exact in JSON.
        "transaction_amount": float(request.amount),
        "description": request.description,
        "payment_method_id": "pix",
        "external_reference": request.txid,
        "date_of_expiration": format_mp_datetime(request.expires_at),
        "metadata": {"store_id": request.store_id, "txid": request.txid},
    }
    payer = _payer(request)
    if payer:
        body["payer"] = payer
    if notification_url:
        body["notification_url"] = notification_url
    return body


def parse_payment(
    data: Mapping[str, Any], *, fallback_expires_at: datetime | None = None
) -> PSPCharge:
    """A Mercado Pago payment resource as a PSPCharge."""
    status, detail = map_status(str(data.get("status", "")), str(data.get("status_detail") or ""))
    poi = data.get("point_of_interaction")
    transaction = poi.get("transaction_data") if isinstance(poi, dict) else None
    transaction = transaction if isinstance(transaction, dict) else {}
    expires_at = _optional_datetime(data.get("date_of_expiration")) or fallback_expires_at
    if expires_at is None:
        raise PSPError("Mercado Pago's payment has no date_of_expiration: not a PIX payment?")
    return PSPCharge(
        psp=MercadoPagoPSP.name,
        psp_payment_id=str(data["id"]),
        status=status,
        status_detail=detail,
        amount=Decimal(str(data.get("transaction_amount", "0"))).quantize(CENT),
        brcode=str(transaction.get("qr_code") or ""),
        qr_png_base64=transaction.get("qr_code_base64") or None,
        ticket_url=transaction.get("ticket_url") or None,
        expires_at=expires_at,
        paid_at=_optional_datetime(data.get("date_approved")),
        end_to_end_id=transaction.get("e2e_id") or None,
    )


def map_status(mp_status: str, status_detail: str) -> tuple[PSPStatus, str]:
    """Mercado Pago's (status, status_detail) as pulso's status and the detail kept."""
    if mp_status == "cancelled" and status_detail == "expired":
        return "expired", status_detail
    status = _STATUS_MAP.get(mp_status)
    if status is None:
        raise PSPError(
            f"Mercado Pago reported an unknown payment status {mp_status!r}: "
            "pulso needs an update to map it"
        )
    return status, status_detail or mp_status


def format_mp_datetime(moment: datetime) -> str:
    """ISO 8601 with milliseconds and offset, as Mercado Pago documents it
    (``2020-05-30T23:59:59.000-04:00``)."""
    return moment.isoformat(timespec="milliseconds")


def _payer(request: ChargeRequest) -> dict[str, Any]:
    payer: dict[str, Any] = {}
    if request.payer_email:
        payer["email"] = request.payer_email
    if request.payer_document:
        digits = only_digits(request.payer_document)
        kinds = {11: "CPF", 14: "CNPJ"}
        if len(digits) not in kinds:
            raise PSPError("the payer document must be a CPF (11 digits) or a CNPJ (14 digits)")
        payer["identification"] = {"type": kinds[len(digits)], "number": digits}
    return payer


def _payment_path(psp_payment_id: str) -> str:
    if not psp_payment_id.isascii() or not psp_payment_id.isdigit():
        raise ChargeNotFoundError(psp_payment_id)
    return f"/v1/payments/{psp_payment_id}"


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX_S)


def _answer(response: httpx.Response, path: str) -> dict[str, Any]:
    if response.status_code == 404 and path.startswith("/v1/payments/"):
        raise ChargeNotFoundError(path.rsplit("/", 1)[-1])
    if response.status_code >= 400:
        raise PSPError(_error_message(response))
    try:
        data = json.loads(response.content, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PSPError(
            f"Mercado Pago answered HTTP {response.status_code} with a body that is not JSON"
        ) from e
    if not isinstance(data, dict) or "id" not in data:
        raise PSPError("Mercado Pago answered without a payment object (no 'id')")
    return data


def _error_message(response: httpx.Response) -> str:
    status = response.status_code
    detail = _mp_error_detail(response)
    if status in (401, 403):
        return (
            f"Mercado Pago refused the access token (HTTP {status}: {detail}): "
            "check PULSO_MERCADOPAGO_ACCESS_TOKEN"
        )
    return f"Mercado Pago refused the request (HTTP {status}): {detail}"


def _mp_error_detail(response: httpx.Response) -> str:
    """Mercado Pago's ``message`` plus each ``cause``'s code and description."""
    try:
        data = response.json()
    except (UnicodeDecodeError, json.JSONDecodeError):
        return response.reason_phrase or "no details"
    if not isinstance(data, dict):
        return "no details"
    parts = [str(data.get("message") or data.get("error") or "no details")]
    causes = data.get("cause")
    for cause in causes if isinstance(causes, list) else []:
        if isinstance(cause, dict) and cause.get("description"):
            parts.append(f"[{cause.get('code', '?')}] {cause['description']}")
    return "; ".join(parts)[:_MESSAGE_MAX_CHARS]


def _optional_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as e:
        raise PSPError(f"Mercado Pago sent a date that is not ISO 8601: {value[:40]!r}") from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
