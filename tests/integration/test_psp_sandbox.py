"""SandboxPSP end to end: real BR Codes, the simulated payer, expiry, and Mercado Pago-style
signed webhooks received by a local HTTP server."""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pulso.pix.brcode import parse_brcode
from pulso.pix.errors import ChargeNotFoundError, PSPError, WebhookSignatureError
from pulso.pix.providers import ChargeRequest, PSPCharge, SimulatedPayer, open_psp
from pulso.pix.providers.sandbox import SandboxPSP
from pulso.pix.webhooks import verify_signature

SECRET = "sandbox-webhook-secret"
WAIT_S = 10.0  # upper bound for a webhook to arrive; a healthy run takes milliseconds


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def data_id(self) -> str:
        return self.query["data.id"][0]


class WebhookReceiver:
    """A local HTTP server that records webhooks and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self._statuses = list(statuses or [])
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/webhooks/mercadopago"

    def next(self) -> Received:
        return self.received.get(timeout=WAIT_S)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _status(self) -> int:
        with self._lock:
            return self._statuses.pop(0) if self._statuses else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                status = receiver._status()
                receiver.received.put(
                    Received(
                        path=parts.path,
                        query=parse_qs(parts.query),
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=self.rfile.read(length),
                    )
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxPSP]]:
    opened: list[SandboxPSP] = []

    def make(webhook_url: str, **options: Any) -> SandboxPSP:
        options.setdefault("pay_after_s", 0)
        options.setdefault("webhook_secret", SECRET)
        psp = SandboxPSP(webhook_url=webhook_url, **options)
        opened.append(psp)
        return psp

    yield make
    for psp in opened:
        psp.close()


def charge_request(expires_in: timedelta = timedelta(minutes=15), **changes: Any) -> ChargeRequest:
    fields: dict[str, Any] = {
        "amount": Decimal("25.90"),
        "description": "Pedido 42",
        "txid": "PULSO0001ABC",
        "store_id": "loja-centro",
        "expires_at": datetime.now(UTC) + expires_in,
    }
    fields.update(changes)
    return ChargeRequest(**fields)


def assert_mercado_pago_webhook(received: Received, psp: SandboxPSP, charge: PSPCharge) -> None:
    """The webhook has Mercado Pago's shape and passes the production signature check."""
    assert received.path == "/v1/webhooks/mercadopago"
    assert received.query == {"data.id": [charge.psp_payment_id], "type": ["payment"]}
    assert received.headers["content-type"] == "application/json"
    body = json.loads(received.body)
    assert sorted(body) == sorted(
        ["action", "api_version", "data", "date_created", "id", "live_mode", "type", "user_id"]
    )
    assert body["action"] == "payment.updated"
    assert body["api_version"] == "v1"
    assert body["type"] == "payment"
    assert body["data"] == {"id": charge.psp_payment_id}
    assert body["live_mode"] is False
    assert isinstance(body["id"], int)
    datetime.fromisoformat(body["date_created"])
    verify_signature(SECRET, received.headers, received.data_id)
    notification = psp.read_notification(received.headers, received.body)
    assert notification.psp == "sandbox"
    assert notification.psp_payment_id == charge.psp_payment_id
    assert notification.request_id == received.headers["x-request-id"]
    assert notification.action == "payment.updated"


def test_create_issues_a_real_dynamic_brcode(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)

    charge = psp.create_charge(charge_request(), idempotency_key="k1")

    assert charge.psp == "sandbox"
    assert (charge.status, charge.status_detail) == ("pending", "pending_waiting_transfer")
    assert charge.amount == Decimal("25.90")
    assert charge.paid_at is None
    code = parse_brcode(charge.brcode)
    assert code.is_dynamic
    assert code.is_single_use
    assert code.amount == Decimal("25.90")
    assert code.merchant_name == "PULSO SANDBOX"
    assert code.merchant_city == "SAO PAULO"
    assert code.url is not None
    assert code.url.startswith("sandbox.pulso.local/pix/v2/")
    assert psp.get_charge(charge.psp_payment_id) == charge


def test_pay_sends_a_signed_mercado_pago_webhook(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)
    charge = psp.create_charge(charge_request(), idempotency_key="k1")

    paid = psp.pay(charge.psp_payment_id)
    received = receiver.next()

    assert_mercado_pago_webhook(received, psp, charge)
    assert (paid.status, paid.status_detail) == ("approved", "accredited")
    again = psp.get_charge(charge.psp_payment_id)
    assert again.status == "approved"
    assert again.paid_at is not None
    assert again.end_to_end_id is not None
    assert len(again.end_to_end_id) == 32
    assert again.end_to_end_id.startswith("E")


def test_webhook_signed_for_another_secret_is_rejected(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)
    other = make_sandbox("", webhook_secret="not-the-sandbox-secret")
    charge = psp.create_charge(charge_request(), idempotency_key="k1")
    psp.pay(charge.psp_payment_id)
    received = receiver.next()

    with pytest.raises(WebhookSignatureError, match="bad signature"):
        other.read_notification(received.headers, received.body)


def test_paying_twice_is_one_change(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)
    charge = psp.create_charge(charge_request(), idempotency_key="k1")

    first = psp.pay(charge.psp_payment_id)
    second = psp.pay(charge.psp_payment_id)
    receiver.next()

    assert first == second
    cancel = psp.create_charge(charge_request(), idempotency_key="k2")
    psp.cancel_charge(cancel.psp_payment_id)
    # The next webhook is the cancellation: the second pay() sent none.
    assert receiver.next().data_id == cancel.psp_payment_id


def test_payer_pays_by_itself_after_pay_after_s(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url, pay_after_s=0.05)
    charge = psp.create_charge(charge_request(), idempotency_key="k1")

    received = receiver.next()

    assert_mercado_pago_webhook(received, psp, charge)
    assert psp.get_charge(charge.psp_payment_id).status == "approved"


def test_charge_expires_at_expires_at(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)
    charge = psp.create_charge(
        charge_request(expires_in=timedelta(milliseconds=100)), idempotency_key="k1"
    )

    received = receiver.next()

    assert received.data_id == charge.psp_payment_id
    expired = psp.get_charge(charge.psp_payment_id)
    assert (expired.status, expired.status_detail) == ("expired", "expired")
    with pytest.raises(PSPError, match="expired and can no longer be paid"):
        psp.pay(charge.psp_payment_id)


def test_expiry_follows_the_injected_clock(make_sandbox: Callable[..., SandboxPSP]) -> None:
    now = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    psp = make_sandbox("", clock=lambda: now[0])
    request = charge_request(expires_at=datetime(2030, 1, 1, 12, 15, tzinfo=UTC))
    charge = psp.create_charge(request, idempotency_key="k1")

    now[0] = datetime(2030, 1, 1, 12, 14, 59, tzinfo=UTC)
    assert psp.get_charge(charge.psp_payment_id).status == "pending"
    now[0] = datetime(2030, 1, 1, 12, 15, tzinfo=UTC)
    assert psp.get_charge(charge.psp_payment_id).status == "expired"


def test_payer_after_expiry_does_not_pay(make_sandbox: Callable[..., SandboxPSP]) -> None:
    now = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    psp = make_sandbox("", clock=lambda: now[0])
    charge = psp.create_charge(
        charge_request(expires_at=datetime(2030, 1, 1, 12, 1, tzinfo=UTC)), idempotency_key="k"
    )
    now[0] = datetime(2030, 1, 1, 12, 2, tzinfo=UTC)

    with pytest.raises(PSPError, match="can no longer be paid"):
        psp.pay(charge.psp_payment_id)
    assert psp.get_charge(charge.psp_payment_id).status == "expired"


def test_same_idempotency_key_returns_the_same_charge(
    make_sandbox: Callable[..., SandboxPSP],
) -> None:
    psp = make_sandbox("")

    first = psp.create_charge(charge_request(), idempotency_key="same")
    second = psp.create_charge(charge_request(amount=Decimal("99.00")), idempotency_key="same")
    other = psp.create_charge(charge_request(), idempotency_key="other")

    assert second == first
    assert other.psp_payment_id != first.psp_payment_id
    assert other.brcode != first.brcode


def test_concurrent_creates_get_distinct_ids(make_sandbox: Callable[..., SandboxPSP]) -> None:
    psp = make_sandbox("")
    ids: list[str] = []
    lock = threading.Lock()

    def create(worker: int) -> None:
        for n in range(50):
            charge = psp.create_charge(charge_request(), idempotency_key=f"{worker}-{n}")
            with lock:
                ids.append(charge.psp_payment_id)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 200


def test_cancel_pending_then_pay_is_refused(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    psp = make_sandbox(receiver.url)
    charge = psp.create_charge(charge_request(), idempotency_key="k1")

    cancelled = psp.cancel_charge(charge.psp_payment_id)

    assert (cancelled.status, cancelled.status_detail) == ("cancelled", "by_collector")
    assert receiver.next().data_id == charge.psp_payment_id
    assert psp.cancel_charge(charge.psp_payment_id) == cancelled
    with pytest.raises(PSPError, match="cancelled and can no longer be paid"):
        psp.pay(charge.psp_payment_id)


def test_cancel_approved_is_refused(make_sandbox: Callable[..., SandboxPSP]) -> None:
    psp = make_sandbox("")
    charge = psp.create_charge(charge_request(), idempotency_key="k1")
    psp.pay(charge.psp_payment_id)

    with pytest.raises(PSPError, match="approved and cannot be cancelled"):
        psp.cancel_charge(charge.psp_payment_id)


@pytest.mark.parametrize("operation", ["get_charge", "cancel_charge", "pay"])
def test_unknown_charge_is_not_found(
    make_sandbox: Callable[..., SandboxPSP], operation: str
) -> None:
    psp = make_sandbox("")

    with pytest.raises(ChargeNotFoundError) as caught:
        getattr(psp, operation)("404")

    assert caught.value.charge_id == "404"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"expires_in": timedelta(seconds=-1)}, "not in the future"),
        ({"amount": Decimal("10.001")}, "more than two decimal places"),
        ({"amount": Decimal("0")}, "must be positive"),
        ({"amount": Decimal("-5.00")}, "must be positive"),
    ],
)
def test_bad_requests_are_refused(
    make_sandbox: Callable[..., SandboxPSP], changes: dict[str, Any], reason: str
) -> None:
    psp = make_sandbox("")

    with pytest.raises(PSPError, match=reason):
        psp.create_charge(charge_request(**changes), idempotency_key="k1")


def test_failed_deliveries_are_retried(make_sandbox: Callable[..., SandboxPSP]) -> None:
    flaky = WebhookReceiver(statuses=[500, 503])
    try:
        psp = make_sandbox(flaky.url, webhook_backoff_s=0.01)
        charge = psp.create_charge(charge_request(), idempotency_key="k1")
        psp.pay(charge.psp_payment_id)

        attempts = [flaky.next() for _ in range(3)]
    finally:
        flaky.close()

    assert {a.data_id for a in attempts} == {charge.psp_payment_id}
    # Each attempt is a new request, signed anew.
    assert len({a.headers["x-request-id"] for a in attempts}) == 3
    for attempt in attempts:
        verify_signature(SECRET, attempt.headers, attempt.data_id)


def test_refused_delivery_is_not_retried(
    make_sandbox: Callable[..., SandboxPSP], caplog: pytest.LogCaptureFixture
) -> None:
    refusing = WebhookReceiver(statuses=[401])
    try:
        psp = make_sandbox(refusing.url, webhook_backoff_s=0.01)
        charge = psp.create_charge(charge_request(), idempotency_key="k1")
        with caplog.at_level(logging.WARNING, logger="pulso.pix.providers.sandbox"):
            psp.pay(charge.psp_payment_id)
            refused = refusing.next()
            _wait_for(lambda: any("not retrying" in r.getMessage() for r in caplog.records))
    finally:
        refusing.close()

    assert refused.data_id == charge.psp_payment_id
    assert refusing.received.empty()
    assert not any("dropped after" in r.getMessage() for r in caplog.records)


def test_unreachable_receiver_never_stops_the_timers(
    receiver: WebhookReceiver, make_sandbox: Callable[..., SandboxPSP]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    dead = make_sandbox(dead_url, pay_after_s=0.01, webhook_attempts=2, webhook_backoff_s=0.01)
    lost = [dead.create_charge(charge_request(), idempotency_key=f"k{n}") for n in range(5)]

    # The payer timer ran for all of them although every webhook failed.
    live = make_sandbox(receiver.url, pay_after_s=0.01)
    marker = live.create_charge(charge_request(), idempotency_key="marker")
    assert receiver.next().data_id == marker.psp_payment_id
    later = dead.create_charge(charge_request(), idempotency_key="later")
    for charge in [*lost, later]:
        _wait_for(partial(_has_status, dead, charge.psp_payment_id, "approved"))


def test_open_psp_defaults_to_the_sandbox(settings_factory: Any, receiver: WebhookReceiver) -> None:
    public_url = receiver.url.removesuffix("/v1/webhooks/mercadopago")
    settings = settings_factory(public_url=public_url, sandbox_pay_after_s=0)
    psp = open_psp(settings)
    try:
        charge = psp.create_charge(charge_request(), idempotency_key="k1")
        assert isinstance(psp, SimulatedPayer)
        psp.pay(charge.psp_payment_id)
        received = receiver.next()
        # No PULSO_WEBHOOK_SECRET: a per-process random secret still verifies in-process.
        notification = psp.read_notification(received.headers, received.body)
    finally:
        psp.close()

    assert psp.name == "sandbox"
    assert notification.psp_payment_id == charge.psp_payment_id


def test_open_psp_signs_with_the_configured_secret(
    settings_factory: Any, receiver: WebhookReceiver
) -> None:
    public_url = receiver.url.removesuffix("/v1/webhooks/mercadopago")
    settings = settings_factory(public_url=public_url, webhook_secret=SECRET, sandbox_pay_after_s=0)
    psp = open_psp(settings)
    try:
        charge = psp.create_charge(charge_request(), idempotency_key="k1")
        psp.cancel_charge(charge.psp_payment_id)
        received = receiver.next()
    finally:
        psp.close()

    verify_signature(SECRET, received.headers, received.data_id)


def _has_status(psp: SandboxPSP, psp_payment_id: str, status: str) -> bool:
    return psp.get_charge(psp_payment_id).status == status


def _wait_for(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds; fails after WAIT_S (a hang, not a timing check)."""
    pause = threading.Event()
    for _ in range(int(WAIT_S / 0.01)):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the awaited condition never held")
