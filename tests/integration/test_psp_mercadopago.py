"""MercadoPagoPSP against a local HTTP server speaking Mercado Pago's wire format."""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fake_mercadopago import FakeMercadoPago, mp_error

from pulso.errors import ConfigError
from pulso.pix.brcode import parse_brcode
from pulso.pix.errors import ChargeNotFoundError, PSPError, PSPUnavailableError
from pulso.pix.providers import ChargeRequest, SimulatedPayer, open_psp
from pulso.pix.providers.mercadopago import MercadoPagoPSP, map_status
from pulso.pix.webhooks import sign_notification

TOKEN = "APP_USR-1234567890-test-token"
SECRET = "webhook-secret-for-tests"
NOTIFY_URL = "https://pulso.example.com/v1/webhooks/mercadopago"
CPF = "52998224725"
CNPJ = "11222333000181"


class SleepRecorder:
    """Stands in for time.sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits_s: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits_s.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeMercadoPago]:
    with FakeMercadoPago(access_token=TOKEN) as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def make_psp(fake: FakeMercadoPago, sleeps: SleepRecorder, **options: Any) -> MercadoPagoPSP:
    options.setdefault("timeout_s", 2.0)
    return MercadoPagoPSP(
        TOKEN,
        base_url=fake.base_url,
        webhook_secret=SECRET,
        notification_url=NOTIFY_URL,
        sleep=sleeps,
        **options,
    )


@pytest.fixture
def psp(fake: FakeMercadoPago, sleeps: SleepRecorder) -> Iterator[MercadoPagoPSP]:
    client = make_psp(fake, sleeps)
    yield client
    client.close()


def charge_request(**changes: Any) -> ChargeRequest:
    fields: dict[str, Any] = {
        "amount": Decimal("25.90"),
        "description": "Pedido 42 - Loja Centro",
        "txid": "PULSO0001ABC",
        "store_id": "loja-centro",
        "expires_at": datetime(2030, 5, 30, 23, 59, 59, tzinfo=UTC),
        "payer_email": "cliente@example.com",
        "payer_document": CPF,
    }
    fields.update(changes)
    return ChargeRequest(**fields)


def test_create_charge_sends_mercado_pagos_documented_request(
    fake: FakeMercadoPago, psp: MercadoPagoPSP
) -> None:
    psp.create_charge(charge_request(), idempotency_key="key-1")

    (sent,) = fake.requests_to("POST")
    assert sent.path == "/v1/payments"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["x-idempotency-key"] == "key-1"
    assert sent.headers["content-type"] == "application/json"
    body = sent.json()
    assert body["transaction_amount"] == 25.9
    assert body["payment_method_id"] == "pix"
    assert body["description"] == "Pedido 42 - Loja Centro"
    assert body["external_reference"] == "PULSO0001ABC"
    assert body["notification_url"] == NOTIFY_URL
    assert body["payer"] == {
        "email": "cliente@example.com",
        "identification": {"type": "CPF", "number": CPF},
    }
    assert body["date_of_expiration"] == "2030-05-30T23:59:59.000+00:00"


def test_create_charge_reads_the_pix_code_and_expiry(psp: MercadoPagoPSP) -> None:
    charge = psp.create_charge(charge_request(), idempotency_key="key-1")

    assert charge.psp == "mercadopago"
    assert charge.psp_payment_id.isdigit()
    assert (charge.status, charge.status_detail) == ("pending", "pending_waiting_transfer")
    assert charge.amount == Decimal("25.90")
    assert charge.expires_at == datetime(2030, 5, 30, 23, 59, 59, tzinfo=UTC)
    assert charge.paid_at is None
    code = parse_brcode(charge.brcode)
    assert code.is_dynamic
    assert code.amount == Decimal("25.90")
    assert charge.qr_png_base64 is not None
    assert base64.b64decode(charge.qr_png_base64).startswith(b"\x89PNG\r\n\x1a\n")
    assert charge.ticket_url is not None
    assert charge.psp_payment_id in charge.ticket_url


def test_expiry_keeps_its_offset_with_milliseconds(
    fake: FakeMercadoPago, psp: MercadoPagoPSP
) -> None:
    expires_at = datetime.fromisoformat("2030-01-02T03:04:05.678-03:00")
    charge = psp.create_charge(charge_request(expires_at=expires_at), idempotency_key="k")

    assert fake.requests_to("POST")[0].json()["date_of_expiration"] == (
        "2030-01-02T03:04:05.678-03:00"
    )
    assert charge.expires_at == expires_at


def test_a_cnpj_payer_is_identified_as_cnpj(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    psp.create_charge(charge_request(payer_document="11.222.333/0001-81"), idempotency_key="k")

    payer = fake.requests_to("POST")[0].json()["payer"]
    assert payer["identification"] == {"type": "CNPJ", "number": CNPJ}


def test_a_document_that_is_neither_cpf_nor_cnpj_is_refused_before_calling(
    fake: FakeMercadoPago, psp: MercadoPagoPSP
) -> None:
    with pytest.raises(PSPError, match=r"CPF .* or a CNPJ") as caught:
        psp.create_charge(charge_request(payer_document="123456"), idempotency_key="k")

    assert "123456" not in str(caught.value)
    assert fake.requests == []


def test_naive_expiry_is_refused(psp: MercadoPagoPSP) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        psp.create_charge(charge_request(expires_at=datetime(2030, 1, 1)), idempotency_key="k")


def test_same_idempotency_key_creates_one_payment(
    fake: FakeMercadoPago, psp: MercadoPagoPSP
) -> None:
    first = psp.create_charge(charge_request(), idempotency_key="same-key")
    second = psp.create_charge(charge_request(), idempotency_key="same-key")
    other = psp.create_charge(charge_request(), idempotency_key="other-key")

    assert first.psp_payment_id == second.psp_payment_id
    assert other.psp_payment_id != first.psp_payment_id
    assert len(fake.payments) == 2


def test_get_charge_follows_the_payment(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    created = psp.create_charge(charge_request(), idempotency_key="k")
    fake.approve(created.psp_payment_id)

    charge = psp.get_charge(created.psp_payment_id)

    assert (charge.status, charge.status_detail) == ("approved", "accredited")
    assert charge.paid_at is not None
    assert charge.paid_at.tzinfo is not None
    assert charge.end_to_end_id is not None
    assert len(charge.end_to_end_id) == 32
    assert charge.brcode == created.brcode
    (sent,) = fake.requests_to("GET")
    assert sent.path == f"/v1/payments/{created.psp_payment_id}"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"


def test_expired_pix_reads_as_expired(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    created = psp.create_charge(charge_request(), idempotency_key="k")
    fake.expire(created.psp_payment_id)

    charge = psp.get_charge(created.psp_payment_id)

    assert (charge.status, charge.status_detail) == ("expired", "expired")


def test_unknown_payment_is_charge_not_found(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    with pytest.raises(ChargeNotFoundError) as caught:
        psp.get_charge("999999")

    assert caught.value.charge_id == "999999"
    assert len(fake.requests_to("GET")) == 1


def test_a_non_numeric_id_never_reaches_the_api(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    with pytest.raises(ChargeNotFoundError):
        psp.get_charge("../v1/users/me")

    assert fake.requests == []


def test_cancel_pending_charge(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    created = psp.create_charge(charge_request(), idempotency_key="k")

    cancelled = psp.cancel_charge(created.psp_payment_id)
    again = psp.cancel_charge(created.psp_payment_id)

    assert (cancelled.status, cancelled.status_detail) == ("cancelled", "by_collector")
    assert again.status == "cancelled"
    (put,) = fake.requests_to("PUT")
    assert put.path == f"/v1/payments/{created.psp_payment_id}"
    assert put.json() == {"status": "cancelled"}


def test_cancel_approved_charge_is_refused(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    created = psp.create_charge(charge_request(), idempotency_key="k")
    fake.approve(created.psp_payment_id)

    with pytest.raises(PSPError, match="HTTP 400"):
        psp.cancel_charge(created.psp_payment_id)


def test_429_waits_retry_after_then_succeeds(
    fake: FakeMercadoPago, psp: MercadoPagoPSP, sleeps: SleepRecorder
) -> None:
    fake.fail_next(
        429, headers={"Retry-After": "2"}, body=mp_error(429, "too_many_requests", "slow down")
    )

    charge = psp.create_charge(charge_request(), idempotency_key="key-429")

    assert charge.status == "pending"
    assert sleeps.waits_s == [2.0]
    posts = fake.requests_to("POST")
    assert [p.headers["x-idempotency-key"] for p in posts] == ["key-429", "key-429"]
    assert len(fake.payments) == 1


def test_500_then_success_backs_off_once(
    fake: FakeMercadoPago, psp: MercadoPagoPSP, sleeps: SleepRecorder
) -> None:
    fake.fail_next(500)

    charge = psp.create_charge(charge_request(), idempotency_key="k")

    assert charge.status == "pending"
    assert len(sleeps.waits_s) == 1
    assert 0.125 <= sleeps.waits_s[0] <= 0.25  # first backoff: half fixed, half jitter
    assert len(fake.requests_to("POST")) == 2


def test_backoff_grows_exponentially_and_is_capped(
    fake: FakeMercadoPago, sleeps: SleepRecorder
) -> None:
    fake.fail_next(503, times=6)
    psp = make_psp(fake, sleeps, max_retries=5, backoff_base_s=1.0, backoff_max_s=4.0)

    with pytest.raises(PSPUnavailableError):
        psp.get_charge("1")
    psp.close()

    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(sleeps.waits_s) == len(ceilings)
    for wait_s, ceiling_s in zip(sleeps.waits_s, ceilings, strict=True):
        assert ceiling_s / 2 <= wait_s <= ceiling_s


def test_permanent_500_is_psp_unavailable(
    fake: FakeMercadoPago, psp: MercadoPagoPSP, sleeps: SleepRecorder
) -> None:
    fake.fail_next(500, times=10)

    with pytest.raises(PSPUnavailableError, match=r"4 attempts .*HTTP 500") as caught:
        psp.create_charge(charge_request(), idempotency_key="k")

    assert len(fake.requests_to("POST")) == 4  # the first try and 3 retries
    assert len(sleeps.waits_s) == 3
    assert TOKEN not in str(caught.value)


def test_timeout_is_retried_with_the_same_key_and_creates_one_payment(
    fake: FakeMercadoPago, sleeps: SleepRecorder
) -> None:
    psp = make_psp(fake, sleeps, timeout_s=0.2)
    fake.answer_late(0.6, method="POST")  # created at once, answered after the client gave up

    charge = psp.create_charge(charge_request(), idempotency_key="slow-key")

    posts = fake.requests_to("POST")
    assert len(posts) >= 2  # more only when this machine is slower than the 0.2 s timeout
    assert {p.headers["x-idempotency-key"] for p in posts} == {"slow-key"}
    assert list(fake.payments) == [charge.psp_payment_id]
    psp.close()


def test_timeouts_every_time_are_psp_unavailable(
    fake: FakeMercadoPago, sleeps: SleepRecorder
) -> None:
    psp = make_psp(fake, sleeps, timeout_s=0.1, max_retries=1)
    fake.answer_late(0.4, times=2)

    with pytest.raises(PSPUnavailableError, match="timeout"):
        psp.get_charge("1300000001")
    psp.close()


def test_unreachable_api_is_psp_unavailable(sleeps: SleepRecorder) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    psp = MercadoPagoPSP(
        TOKEN,
        base_url=f"http://127.0.0.1:{port}",
        webhook_secret=SECRET,
        notification_url=None,
        sleep=sleeps,
        timeout_s=1.0,
    )

    with pytest.raises(PSPUnavailableError, match="network error") as caught:
        psp.create_charge(charge_request(), idempotency_key="k")

    assert len(sleeps.waits_s) == 3
    assert TOKEN not in str(caught.value)
    psp.close()


def test_400_carries_mercado_pagos_message_and_is_not_retried(
    fake: FakeMercadoPago, psp: MercadoPagoPSP, sleeps: SleepRecorder
) -> None:
    with pytest.raises(PSPError, match=r"HTTP 400.*payer\.email must be a valid email") as caught:
        psp.create_charge(charge_request(payer_email=None), idempotency_key="k")

    assert not isinstance(caught.value, PSPUnavailableError)
    assert "[4050]" in str(caught.value)
    assert len(fake.requests_to("POST")) == 1
    assert sleeps.waits_s == []
    assert TOKEN not in str(caught.value)


def test_scripted_400_error_body_is_reported(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    fake.fail_next(
        400,
        body=mp_error(400, "bad_request", "Invalid user identification number", 2067),
    )

    with pytest.raises(PSPError, match=r"\[2067\] Invalid user identification number"):
        psp.create_charge(charge_request(), idempotency_key="k")


def test_wrong_token_names_the_setting_not_the_token(
    fake: FakeMercadoPago, sleeps: SleepRecorder
) -> None:
    psp = MercadoPagoPSP(
        "APP_USR-wrong-token",
        base_url=fake.base_url,
        webhook_secret=SECRET,
        notification_url=None,
        sleep=sleeps,
    )

    with pytest.raises(PSPError, match="PULSO_MERCADOPAGO_ACCESS_TOKEN") as caught:
        psp.create_charge(charge_request(), idempotency_key="k")

    assert "wrong-token" not in str(caught.value)
    assert "wrong-token" not in repr(psp)
    psp.close()


def test_read_notification_verifies_mercado_pagos_signature(psp: MercadoPagoPSP) -> None:
    ts = int(time.time())
    headers = {
        "x-signature": sign_notification(SECRET, "1300000001", "req-1", ts),
        "x-request-id": "req-1",
    }
    body = b'{"action": "payment.updated", "data": {"id": "1300000001"}, "type": "payment"}'

    notification = psp.read_notification(headers, body, query_data_id="1300000001")

    assert (notification.psp, notification.psp_payment_id) == ("mercadopago", "1300000001")
    assert notification.request_id == "req-1"


@pytest.mark.parametrize(
    ("mp_status", "detail", "expected"),
    [
        ("pending", "pending_waiting_transfer", "pending"),
        ("approved", "accredited", "approved"),
        ("authorized", "", "in_process"),
        ("in_process", "pending_review_manual", "in_process"),
        ("in_mediation", "", "in_process"),
        ("rejected", "rejected_by_bank", "rejected"),
        ("cancelled", "by_collector", "cancelled"),
        ("cancelled", "expired", "expired"),
        ("refunded", "refunded", "refunded"),
        ("charged_back", "settled", "refunded"),
    ],
)
def test_status_mapping(mp_status: str, detail: str, expected: str) -> None:
    status, kept_detail = map_status(mp_status, detail)

    assert status == expected
    assert kept_detail == (detail or mp_status)


def test_unknown_status_is_an_error_not_a_guess() -> None:
    with pytest.raises(PSPError, match="unknown payment status 'teleported'"):
        map_status("teleported", "")


def test_unknown_status_from_the_api_surfaces(fake: FakeMercadoPago, psp: MercadoPagoPSP) -> None:
    created = psp.create_charge(charge_request(), idempotency_key="k")
    fake.set_status(created.psp_payment_id, "teleported", "")

    with pytest.raises(PSPError, match="unknown payment status"):
        psp.get_charge(created.psp_payment_id)


def test_open_psp_builds_mercado_pago_from_settings(
    fake: FakeMercadoPago, settings_factory: Any
) -> None:
    settings = settings_factory(
        psp="mercadopago",
        mercadopago_access_token=TOKEN,
        mercadopago_base_url=fake.base_url,
        webhook_secret=SECRET,
        public_url="https://pulso.example.com/",
    )
    psp = open_psp(settings)
    try:
        charge = psp.create_charge(charge_request(), idempotency_key="k")
    finally:
        psp.close()

    assert psp.name == "mercadopago"
    assert not isinstance(psp, SimulatedPayer)
    assert charge.status == "pending"
    assert fake.requests_to("POST")[0].json()["notification_url"] == NOTIFY_URL


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("mercadopago_access_token", "PULSO_MERCADOPAGO_ACCESS_TOKEN"),
        ("webhook_secret", "PULSO_WEBHOOK_SECRET"),
    ],
)
def test_open_psp_names_the_missing_setting(
    settings_factory: Any, missing: str, variable: str
) -> None:
    values = {"mercadopago_access_token": TOKEN, "webhook_secret": SECRET}
    del values[missing]
    settings = settings_factory(psp="mercadopago", **values)

    with pytest.raises(ConfigError) as caught:
        open_psp(settings)

    assert caught.value.variable == variable


def test_expiry_format_matches_mercado_pagos_pattern() -> None:
    from pulso.pix.providers.mercadopago import format_mp_datetime

    text = format_mp_datetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(microseconds=7))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", text)
