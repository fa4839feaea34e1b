"""An offline PSP that behaves like Mercado Pago, for development, demos, tests and benchmarks.

It issues real dynamic BR Codes, keeps charges in memory, plays the payer after
``pay_after_s`` (or when :meth:`SandboxPSP.pay` is called) and expires charges at their
expiry. Every status change is announced with a webhook shaped and signed exactly like
Mercado Pago's, so pulso's production webhook path (signature check, re-read of the
payment) runs unchanged against it.

Threads: one scheduler runs the payer and expiry timers for every charge (a timer thread per
charge would not survive thousands of charges a second); a few workers post webhooks, and a
failed delivery is rescheduled with backoff instead of blocking a worker.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from pulso.pix import webhooks
from pulso.pix.brcode import build_dynamic
from pulso.pix.errors import BRCodeError, ChargeNotFoundError, PSPError
from pulso.pix.providers.protocol import (
    ChargeRequest,
    Notification,
    PSPCharge,
    PSPStatus,
)

log = logging.getLogger(__name__)

DEFAULT_LOCATION_HOST: Final = "sandbox.pulso.local"
SANDBOX_USER_ID: Final = 1  # the sandbox's collector account, as "user_id" in webhooks
SANDBOX_ISPB: Final = "99999999"  # fictitious institution in end-to-end ids
_STATUS_DETAIL: Final[dict[PSPStatus, str]] = {
    "pending": "pending_waiting_transfer",
    "approved": "accredited",
    "cancelled": "by_collector",
    "expired": "expired",
}
_E2E_ALPHABET: Final = string.ascii_letters + string.digits


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxPSP:
    """In-memory PSP that pays its own charges and signs its webhooks like Mercado Pago."""

    name = "sandbox"
    in_memory = True  # no call waits on I/O: see providers.protocol.answers_from_memory

    def __init__(
        self,
        *,
        webhook_url: str,
        webhook_secret: str,
        pay_after_s: float,
        merchant_name: str = "PULSO SANDBOX",
        merchant_city: str = "SAO PAULO",
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] = _utc_now,
        location_host: str = DEFAULT_LOCATION_HOST,
        webhook_attempts: int = 4,
        webhook_backoff_s: float = 0.5,
        webhook_timeout_s: float = 5.0,
        webhook_workers: int = 4,
        webhook_tolerance_s: float = webhooks.DEFAULT_TOLERANCE_S,
    ) -> None:
        if pay_after_s < 0:
            raise ValueError("pay_after_s must be >= 0 (0 = the payer never pays by itself)")
        if not webhook_secret:
            raise ValueError("the sandbox needs a webhook secret to sign its notifications")
        self._pay_after_s = pay_after_s
        self._merchant_name = merchant_name
        self._merchant_city = merchant_city
        self._clock = clock
        self._location_host = location_host
        self._secret = webhook_secret
        self._webhook_tolerance_s = webhook_tolerance_s
        self._lock = threading.Lock()
        self._charges: dict[str, _Charge] = {}
        self._by_idempotency_key: dict[str, str] = {}
        self._ids = itertools.count(int(time.time() * 1000))
        self._scheduler = _Scheduler()
        self._sender = _WebhookSender(
            url=webhook_url,
            secret=webhook_secret,
            http=http,
            scheduler=self._scheduler,
            attempts=webhook_attempts,
            backoff_s=webhook_backoff_s,
            timeout_s=webhook_timeout_s,
            workers=webhook_workers,
        )

    def __repr__(self) -> str:
        return f"SandboxPSP(pay_after_s={self._pay_after_s})"

    def create_charge(self, request: ChargeRequest, *, idempotency_key: str) -> PSPCharge:
        if not idempotency_key:
            raise ValueError("an idempotency key is required to create a charge")
        now = self._clock()
        _check_request(request, now)
        brcode = self._brcode(request)  # outside the lock: the slowest step
        with self._lock:
            known = self._by_idempotency_key.get(idempotency_key)
            if known is not None:
                return self._charges[known].snapshot()
            charge = _Charge(str(next(self._ids)), request, brcode, "pending", created_at=now)
            self._charges[charge.psp_payment_id] = charge
            self._by_idempotency_key[idempotency_key] = charge.psp_payment_id
        self._schedule_timers(charge.psp_payment_id, request.expires_at, now)
        return charge.snapshot()

    def get_charge(self, psp_payment_id: str) -> PSPCharge:
        self._expire_if_due(psp_payment_id)
        with self._lock:
            return self._find(psp_payment_id).snapshot()

    def cancel_charge(self, psp_payment_id: str) -> PSPCharge:
        self._expire_if_due(psp_payment_id)
        with self._lock:
            charge = self._find(psp_payment_id)
            if charge.status in ("cancelled", "expired"):
                return charge.snapshot()
            if charge.status != "pending":
                raise PSPError(
                    f"sandbox charge {psp_payment_id} is {charge.status} and cannot be cancelled"
                )
            return self._transition(charge, "cancelled")

    def pay(self, psp_payment_id: str) -> PSPCharge:
        """Play the payer now: a pending charge becomes approved (paying twice is a no-op)."""
        self._expire_if_due(psp_payment_id)
        with self._lock:
            charge = self._find(psp_payment_id)
            if charge.status == "approved":
                return charge.snapshot()
            if charge.status != "pending":
                raise PSPError(
                    f"sandbox charge {psp_payment_id} is {charge.status} and can no longer be paid"
                )
            paid_at = self._clock()
            return self._transition(
                charge, "approved", paid_at=paid_at, end_to_end_id=_end_to_end_id(paid_at)
            )

    def read_notification(
        self, headers: Mapping[str, str], body: bytes, *, query_data_id: str | None = None
    ) -> Notification:
        return webhooks.read_notification(
            self.name,
            self._secret,
            headers,
            body,
            query_data_id=query_data_id,
            tolerance_s=self._webhook_tolerance_s,
        )

    def close(self) -> None:
        self._scheduler.close()
        self._sender.close()

    def _brcode(self, request: ChargeRequest) -> str:
        location = f"{self._location_host}/pix/v2/{secrets.token_hex(16)}"
        try:
            return build_dynamic(
                url=location,
                name=self._merchant_name,
                city=self._merchant_city,
                amount=request.amount,
            )
        except BRCodeError as e:
            raise PSPError(f"the sandbox cannot issue this charge: {e}") from e

    def _schedule_timers(self, psp_payment_id: str, expires_at: datetime, now: datetime) -> None:
        expires_in_s = max((expires_at - now).total_seconds(), 0.0)
        self._scheduler.call_later(expires_in_s, lambda: self._expire_if_due(psp_payment_id))
        if self._pay_after_s > 0:
            self._scheduler.call_later(
                self._pay_after_s, lambda: self._pay_if_pending(psp_payment_id)
            )

    def _pay_if_pending(self, psp_payment_id: str) -> None:
        try:
            self.pay(psp_payment_id)
        except PSPError:  # cancelled or expired before the payer came: nothing to pay
            log.debug("sandbox payer skipped charge %s: no longer pending", psp_payment_id)

    def _expire_if_due(self, psp_payment_id: str) -> None:
        now = self._clock()
        with self._lock:
            charge = self._find(psp_payment_id)
            if charge.status == "pending" and now >= charge.request.expires_at:
                self._transition(charge, "expired")

    def _find(self, psp_payment_id: str) -> _Charge:
        charge = self._charges.get(psp_payment_id)
        if charge is None:
            raise ChargeNotFoundError(psp_payment_id)
        return charge

    def _transition(self, charge: _Charge, status: PSPStatus, **changes: Any) -> PSPCharge:
        """Move a charge (lock held) and announce it with a webhook."""
        updated = replace(charge, status=status, **changes)
        self._charges[charge.psp_payment_id] = updated
        self._sender.send(charge.psp_payment_id)
        log.info("sandbox charge %s: %s -> %s", charge.psp_payment_id, charge.status, status)
        return updated.snapshot()


@dataclass(frozen=True, slots=True)
class _Charge:
    psp_payment_id: str
    request: ChargeRequest
    brcode: str
    status: PSPStatus
    created_at: datetime
    paid_at: datetime | None = None
    end_to_end_id: str | None = None

    def snapshot(self) -> PSPCharge:
        return PSPCharge(
            psp=SandboxPSP.name,
            psp_payment_id=self.psp_payment_id,
            status=self.status,
            status_detail=_STATUS_DETAIL.get(self.status, self.status),
            amount=self.request.amount,
            brcode=self.brcode,
            qr_png_base64=None,
            ticket_url=None,
            expires_at=self.request.expires_at,
            paid_at=self.paid_at,
            end_to_end_id=self.end_to_end_id,
        )


def _check_request(request: ChargeRequest, now: datetime) -> None:
    if request.expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    if request.expires_at <= now:
        raise PSPError(
            f"the charge would expire at {request.expires_at.isoformat()}, which is not in "
            "the future; give a later expires_at"
        )


def _end_to_end_id(paid_at: datetime) -> str:
    """A PIX end-to-end id: E + ISPB + yyyyMMddHHmm (UTC) + 11 alphanumerics (32 chars)."""
    suffix = "".join(secrets.choice(_E2E_ALPHABET) for _ in range(11))
    return f"E{SANDBOX_ISPB}{paid_at.astimezone(UTC):%Y%m%d%H%M}{suffix}"


class _Scheduler:
    """Runs callbacks after a delay, on one daemon thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sandbox-psp-timers", daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        with self._wake:
            if self._closed:
                return
            due = time.monotonic() + delay_s
            heapq.heappush(self._heap, (due, next(self._order), callback))
            if self._heap[0][2] is callback:
                self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while (callback := self._next_due()) is not None:
            try:
                callback()
            except Exception:  # a timer must never kill the thread that runs all of them
                log.exception("sandbox PSP timer failed")

    def _next_due(self) -> Callable[[], None] | None:
        with self._wake:
            while not self._closed:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    return heapq.heappop(self._heap)[2]
                wait_s = self._heap[0][0] - time.monotonic() if self._heap else None
                self._wake.wait(timeout=wait_s)
            return None


@dataclass(frozen=True, slots=True)
class _Delivery:
    psp_payment_id: str
    attempt: int = 1


class _WebhookSender:
    """Posts Mercado Pago-shaped, signed notifications; retries failures with backoff."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        http: httpx.Client | None,
        scheduler: _Scheduler,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        workers: int,
    ) -> None:
        self._url = url
        self._secret = secret
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client()
        self._scheduler = scheduler
        self._attempts = max(attempts, 1)
        self._backoff_s = backoff_s
        self._timeout = httpx.Timeout(timeout_s)
        self._queue: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"sandbox-psp-webhooks-{n}", daemon=True)
            for n in range(max(workers, 1) if url else 0)
        ]
        for worker in self._workers:
            worker.start()

    def send(self, psp_payment_id: str) -> None:
        if self._url:
            self._queue.put(_Delivery(psp_payment_id))

    def close(self, *, drain_s: float = 5.0) -> None:
        """Deliver what is queued within ``drain_s``, then stop."""
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + drain_s
        for worker in self._workers:
            worker.join(timeout=max(deadline - time.monotonic(), 0.0))
        if self._owns_http:
            self._http.close()

    def _work(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                done = self._post(delivery)
            except Exception:  # never let one delivery kill the worker
                log.exception("sandbox webhook for charge %s failed", delivery.psp_payment_id)
                done = False
            if not done:
                self._retry_later(delivery)

    def _post(self, delivery: _Delivery) -> bool:
        """One attempt; True when no retry is due (delivered, or refused for good)."""
        data_id = delivery.psp_payment_id
        request_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "MercadoPago WebHook v1.0 payment",
            webhooks.REQUEST_ID_HEADER: request_id,
            webhooks.SIGNATURE_HEADER: webhooks.sign_notification(
                self._secret, data_id, request_id, int(time.time())
            ),
        }
        try:
            response = self._http.post(
                self._url,
                params={"data.id": data_id, "type": "payment"},
                json=notification_body(data_id),
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TransportError as e:
            log.warning(
                "sandbox webhook for charge %s not delivered: %s", data_id, type(e).__name__
            )
            return False
        return self._done(delivery, response.status_code)

    def _done(self, delivery: _Delivery, status_code: int) -> bool:
        if 200 <= status_code < 300:
            return True
        log.warning(
            "sandbox webhook for charge %s answered HTTP %s (attempt %s of %s)",
            delivery.psp_payment_id,
            status_code,
            delivery.attempt,
            self._attempts,
        )
        if 400 <= status_code < 500 and status_code not in (408, 429):
            # Refused for good (e.g. 401: the receiver's secret is not the sandbox's).
            log.error(
                "sandbox webhook for charge %s refused; not retrying", delivery.psp_payment_id
            )
            return True
        return False

    def _retry_later(self, delivery: _Delivery) -> None:
        if delivery.attempt >= self._attempts:
            log.error(
                "sandbox webhook for charge %s dropped after %s attempts; the reconciler will "
                "still see the change when it polls",
                delivery.psp_payment_id,
                delivery.attempt,
            )
            return
        delay_s = self._backoff_s * 2.0 ** (delivery.attempt - 1)
        retry = replace(delivery, attempt=delivery.attempt + 1)
        self._scheduler.call_later(delay_s, lambda: self._queue.put(retry))


def notification_body(data_id: str, *, action: str = "payment.updated") -> dict[str, Any]:
    """A webhook body in Mercado Pago's shape for a payment notification."""
    return {
        "action": action,
        "api_version": "v1",
        "data": {"id": data_id},
        "date_created": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "id": secrets.randbelow(10**12),
        "live_mode": False,
        "type": "payment",
        "user_id": SANDBOX_USER_ID,
    }
