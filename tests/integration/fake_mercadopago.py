"""A local HTTP server that speaks Mercado Pago's Payments API for PIX, for tests.

Mercado Pago cannot run here, so this fake speaks its documented wire format; what it
follows, and where it comes from:

- ``POST /v1/payments`` (API reference "Create payment", PIX integration guide):
  ``Authorization: Bearer <access token>``; ``X-Idempotency-Key`` is mandatory and a repeated
  key answers the payment already created; body ``transaction_amount`` (number),
  ``description``, ``payment_method_id: "pix"``, ``payer.email``,
  ``payer.identification {type: CPF|CNPJ, number}``, ``external_reference``,
  ``notification_url``, ``date_of_expiration`` as ``yyyy-MM-dd'T'HH:mm:ss.SSSz`` (e.g.
  ``2020-05-30T23:59:59.000-04:00``; a bad date is error code 23 in the reference).
  Answer 201 with ``id`` (a number), ``status: "pending"``,
  ``status_detail: "pending_waiting_transfer"``, ``payment_type_id: "bank_transfer"``,
  ``date_of_expiration``, ``date_approved: null`` and
  ``point_of_interaction.transaction_data`` with ``qr_code`` (the "copia e cola" BR Code),
  ``qr_code_base64`` (a PNG) and ``ticket_url``.
- ``GET /v1/payments/{id}``: the payment; unknown id → 404.
- ``PUT /v1/payments/{id}`` with ``{"status": "cancelled"}`` cancels a pending payment.
- An expired PIX reads ``status: "cancelled"``, ``status_detail: "expired"``; a paid one
  ``status: "approved"``, ``status_detail: "accredited"`` and ``date_approved``.
- Errors: ``{"message", "error", "status", "cause": [{"code", "description", "data"}]}``
  (as Mercado Pago's SDK issues show). Cause codes other than 23 are illustrative.
- Webhook signature: see :mod:`pulso.pix.webhooks` (``ts`` in seconds, as Mercado Pago's
  documentation example ``ts=1704908010`` and its SDK fixes sdk-nodejs#458 establish).

Tests script failures with :meth:`FakeMercadoPago.fail_next` (an error status, optionally
with ``Retry-After``) and :meth:`FakeMercadoPago.answer_late` (process, then answer after a
delay: the client times out although the payment exists). Every request is recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback_http import LoopbackHttp

from pulso.pix.brcode import build_dynamic
from pulso.pix.qr import qr_png

MP_TZ = timezone(timedelta(hours=-4))  # Mercado Pago's examples carry -04:00
_MP_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
_PAYMENT_PATH = re.compile(r"/v1/payments/(\d+)")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class _Fault:
    method: str | None
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    answer_late: bool = False  # process normally, then answer after delay_s


def mp_error(status: int, error: str, message: str, code: int | str = 0) -> dict[str, Any]:
    """An error body in Mercado Pago's shape."""
    cause = [{"code": code, "description": message, "data": None}] if code else []
    return {"message": message, "error": error, "status": status, "cause": cause}


class FakeMercadoPago:
    """Mercado Pago's PIX payments on 127.0.0.1, a random port. Use as a context manager."""

    def __init__(self, *, access_token: str = "TEST-0000-fake-access-token") -> None:
        self.access_token = access_token
        self.requests: list[RecordedRequest] = []
        self.payments: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1_300_000_001)
        self._http = LoopbackHttp(_handler_for(self))

    @property
    def base_url(self) -> str:
        return self._http.url

    def __enter__(self) -> FakeMercadoPago:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    # ---------------------------------------------------------------- scripting from tests

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> None:
        """The next ``times`` requests (of ``method``, if given) get this error instead."""
        fault_body = body if body is not None else mp_error(status, "error", f"HTTP {status}")
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(method, status, fault_body, dict(headers or {})))

    def answer_late(self, delay_s: float, *, times: int = 1, method: str | None = None) -> None:
        """The next requests are processed at once but answered ``delay_s`` later."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(method, delay_s=delay_s, answer_late=True))

    def approve(self, payment_id: str) -> None:
        """The payer pays."""
        e2e = f"E10573521{datetime.now(UTC):%Y%m%d%H%M}{uuid.uuid4().hex[:11]}"
        self.set_status(payment_id, "approved", "accredited", approved=True, e2e_id=e2e)

    def expire(self, payment_id: str) -> None:
        self.set_status(payment_id, "cancelled", "expired")

    def set_status(
        self,
        payment_id: str,
        status: str,
        status_detail: str,
        *,
        approved: bool = False,
        e2e_id: str | None = None,
    ) -> None:
        with self._lock:
            payment = self.payments[payment_id]
            payment["status"], payment["status_detail"] = status, status_detail
            payment["date_last_updated"] = _mp_now()
            if approved:
                payment["date_approved"] = _mp_now()
                payment["point_of_interaction"]["transaction_data"]["e2e_id"] = e2e_id

    def requests_to(self, method: str, path_prefix: str = "/v1/payments") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # ------------------------------------------------------------------------ the API

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any], float]:
        """Status, headers, body and how long to wait before answering."""
        with self._lock:
            self.requests.append(request)
            fault = self._take_fault(request.method)
        if fault is not None and not fault.answer_late:
            return fault.status, fault.headers, fault.body or {}, fault.delay_s
        status, body = self._route(request)
        return status, {}, body, fault.delay_s if fault else 0.0

    def _take_fault(self, method: str) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.method in (None, method):
                return self._faults.pop(index)
        return None

    def _route(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return 401, mp_error(401, "unauthorized", "invalid access token")
        match = _PAYMENT_PATH.fullmatch(request.path)
        if request.method == "POST" and request.path == "/v1/payments":
            return self._create(request)
        if match and request.method == "GET":
            return self._get(match.group(1))
        if match and request.method == "PUT":
            return self._update(match.group(1), request)
        return 404, mp_error(404, "not_found", f"resource {request.path} not found")

    def _create(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        key = request.headers.get("x-idempotency-key")
        if not key:
            return 400, mp_error(400, "bad_request", "X-Idempotency-Key header is required", 4292)
        try:
            body = json.loads(request.body)
        except json.JSONDecodeError:
            return 400, mp_error(400, "bad_request", "invalid JSON body", 1)
        problem = _check_create(body)
        if problem:
            return 400, problem
        with self._lock:
            known = self._by_key.get(key)
            if known is None:
                known = self._new_payment(body)
                self._by_key[key] = known
            return 201, dict(self.payments[known])

    def _new_payment(self, body: dict[str, Any]) -> str:
        payment_id = str(next(self._ids))
        amount = Decimal(str(body["transaction_amount"])).quantize(Decimal("0.01"))
        brcode = build_dynamic(
            url=f"pix-qr.mercadopago.fake/instore/o/v2/{uuid.uuid4()}",
            name="PULSO TESTE",
            city="SAO PAULO",
            amount=amount,
        )
        self.payments[payment_id] = {
            "id": int(payment_id),
            "date_created": _mp_now(),
            "date_approved": None,
            "date_last_updated": _mp_now(),
            "date_of_expiration": body["date_of_expiration"],
            "status": "pending",
            "status_detail": "pending_waiting_transfer",
            "currency_id": "BRL",
            "description": body.get("description"),
            "transaction_amount": float(amount),
            "transaction_amount_refunded": 0,
            "payment_method_id": "pix",
            "payment_type_id": "bank_transfer",
            "external_reference": body.get("external_reference"),
            "notification_url": body.get("notification_url"),
            "metadata": body.get("metadata", {}),
            "payer": body["payer"],
            "point_of_interaction": {
                "type": "OPENPLATFORM",
                "transaction_data": {
                    "qr_code": brcode,
                    "qr_code_base64": base64.b64encode(qr_png(brcode)).decode(),
                    "ticket_url": f"https://www.mercadopago.com.br/payments/{payment_id}/ticket",
                    "e2e_id": None,
                },
            },
        }
        return payment_id

    def _get(self, payment_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            payment = self.payments.get(payment_id)
            if payment is None:
                return 404, mp_error(404, "not_found", "Payment not found", 2000)
            return 200, dict(payment)

    def _update(self, payment_id: str, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        if json.loads(request.body or b"{}").get("status") != "cancelled":
            return 400, mp_error(400, "bad_request", "only status=cancelled is supported", 1)
        with self._lock:
            payment = self.payments.get(payment_id)
            if payment is None:
                return 404, mp_error(404, "not_found", "Payment not found", 2000)
            if payment["status"] not in ("pending", "in_process"):
                return 400, mp_error(
                    400, "bad_request", f"cannot cancel a payment {payment['status']}", 2078
                )
            payment.update(status="cancelled", status_detail="by_collector")
            return 200, dict(payment)


def _check_create(body: Any) -> dict[str, Any] | None:
    """Mercado Pago's validation of a PIX payment, as far as pulso relies on it."""
    if not isinstance(body, dict):
        return mp_error(400, "bad_request", "invalid JSON body", 1)
    amount = body.get("transaction_amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        return mp_error(400, "bad_request", "transaction_amount must be a positive number", 4037)
    if body.get("payment_method_id") != "pix":
        return mp_error(400, "bad_request", "payment_method_id must be pix here", 4020)
    payer = body.get("payer") or {}
    if not isinstance(payer, dict) or "@" not in str(payer.get("email", "")):
        return mp_error(400, "bad_request", "payer.email must be a valid email", 4050)
    identification = payer.get("identification")
    if identification is not None and (
        identification.get("type") not in ("CPF", "CNPJ")
        or not str(identification.get("number", "")).isdigit()
    ):
        return mp_error(400, "bad_request", "Invalid user identification number", 2067)
    if not _MP_DATE.fullmatch(str(body.get("date_of_expiration", ""))):
        return mp_error(
            400,
            "bad_request",
            "The following parameters must be valid date and format "
            "(yyyy-MM-dd'T'HH:mm:ssz) date_of_expiration",
            23,
        )
    return None


def _mp_now() -> str:
    return datetime.now(MP_TZ).isoformat(timespec="milliseconds")


def _handler_for(fake: FakeMercadoPago) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            status, headers, body, delay_s = fake.handle(request)
            if delay_s:
                time.sleep(delay_s)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
