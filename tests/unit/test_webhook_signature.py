"""Mercado Pago's x-signature scheme: verification of good, forged, stale and malformed
notifications, with explicit times (no wall clock)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from pulso.pix.errors import PixError, WebhookSignatureError
from pulso.pix.webhooks import (
    parse_signature_header,
    read_notification,
    sign_notification,
    signature_manifest,
    timestamp_seconds,
    verify_signature,
)

SECRET = "s3cr3t-webhook-key-for-tests"
DATA_ID = "123456789"
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
TS = 1_704_908_010  # Mercado Pago's documentation example, in seconds


def headers_for(
    data_id: str = DATA_ID, *, ts: int = TS, secret: str = SECRET, request_id: str = REQUEST_ID
) -> dict[str, str]:
    return {
        "x-signature": sign_notification(secret, data_id, request_id, ts),
        "x-request-id": request_id,
    }


def mp_body(data_id: str | int = DATA_ID) -> bytes:
    return json.dumps(
        {
            "action": "payment.updated",
            "api_version": "v1",
            "data": {"id": data_id},
            "date_created": "2024-01-10T17:33:30Z",
            "id": 112233445566,
            "live_mode": False,
            "type": "payment",
            "user_id": 987654321,
        }
    ).encode()


def test_signature_is_hmac_sha256_of_the_documented_manifest() -> None:
    manifest = f"id:{DATA_ID};request-id:{REQUEST_ID};ts:{TS};"
    expected = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()

    assert signature_manifest(DATA_ID, REQUEST_ID, TS) == manifest
    assert sign_notification(SECRET, DATA_ID, REQUEST_ID, TS) == f"ts={TS},v1={expected}"


def test_good_signature_is_accepted() -> None:
    verified = verify_signature(SECRET, headers_for(), DATA_ID, now_s=TS + 1)

    assert verified.request_id == REQUEST_ID
    assert verified.signed_at == datetime.fromtimestamp(TS, UTC)


def test_header_names_are_case_insensitive_and_fields_in_any_order() -> None:
    signature = parse_signature_header(headers_for()["x-signature"])
    headers = {"X-Signature": f"v1={signature.v1}, ts={TS}", "X-Request-Id": REQUEST_ID}

    assert verify_signature(SECRET, headers, DATA_ID, now_s=TS).request_id == REQUEST_ID


def test_millisecond_ts_is_accepted() -> None:
    ts_ms = TS * 1000 + 683
    verified = verify_signature(SECRET, headers_for(ts=ts_ms), DATA_ID, now_s=TS + 2)

    assert verified.signed_at == datetime.fromtimestamp(ts_ms / 1000, UTC)
    assert timestamp_seconds(str(ts_ms)) == pytest.approx(TS + 0.683)
    assert timestamp_seconds(str(TS)) == TS


def test_forged_signature_is_rejected() -> None:
    headers = {"x-signature": f"ts={TS},v1={'ab' * 32}", "x-request-id": REQUEST_ID}

    with pytest.raises(WebhookSignatureError, match="bad signature"):
        verify_signature(SECRET, headers, DATA_ID, now_s=TS)


def test_tampered_id_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="bad signature"):
        verify_signature(SECRET, headers_for("123456789"), "123456780", now_s=TS)


def test_tampered_request_id_or_ts_is_rejected() -> None:
    headers = headers_for()
    with pytest.raises(WebhookSignatureError, match="bad signature"):
        verify_signature(SECRET, {**headers, "x-request-id": "other"}, DATA_ID, now_s=TS)
    v1 = parse_signature_header(headers["x-signature"]).v1
    moved = {**headers, "x-signature": f"ts={TS + 1},v1={v1}"}
    with pytest.raises(WebhookSignatureError, match="bad signature"):
        verify_signature(SECRET, moved, DATA_ID, now_s=TS)


def test_wrong_secret_is_rejected_without_revealing_either_secret() -> None:
    headers = headers_for(secret="another-secret")

    with pytest.raises(WebhookSignatureError, match="bad signature") as caught:
        verify_signature(SECRET, headers, DATA_ID, now_s=TS)
    assert SECRET not in str(caught.value)
    assert "another-secret" not in str(caught.value)


def test_no_configured_secret_trusts_nothing() -> None:
    with pytest.raises(WebhookSignatureError, match="PULSO_WEBHOOK_SECRET"):
        verify_signature("", headers_for(secret=""), DATA_ID, now_s=TS)


def test_stale_notification_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="stale"):
        verify_signature(SECRET, headers_for(), DATA_ID, now_s=TS + 301)


def test_notification_inside_the_tolerance_is_accepted() -> None:
    verify_signature(SECRET, headers_for(), DATA_ID, now_s=TS + 299)
    verify_signature(SECRET, headers_for(), DATA_ID, now_s=TS - 299)


def test_tolerance_is_configurable() -> None:
    with pytest.raises(WebhookSignatureError, match="stale"):
        verify_signature(SECRET, headers_for(), DATA_ID, tolerance_s=10, now_s=TS + 11)
    verify_signature(SECRET, headers_for(), DATA_ID, tolerance_s=3600, now_s=TS + 3000)


def test_notification_from_the_future_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="future"):
        verify_signature(SECRET, headers_for(), DATA_ID, now_s=TS - 301)


def test_stale_millisecond_ts_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="stale"):
        verify_signature(SECRET, headers_for(ts=TS * 1000), DATA_ID, now_s=TS + 301)


@pytest.mark.parametrize("missing", ["x-signature", "x-request-id"])
def test_missing_header_is_rejected(missing: str) -> None:
    headers = headers_for()
    del headers[missing]

    with pytest.raises(WebhookSignatureError, match=f"missing {missing}"):
        verify_signature(SECRET, headers, DATA_ID, now_s=TS)


def test_blank_header_counts_as_missing() -> None:
    with pytest.raises(WebhookSignatureError, match="missing x-request-id"):
        verify_signature(SECRET, {**headers_for(), "x-request-id": "  "}, DATA_ID, now_s=TS)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        f"ts={TS}",
        f"v1={'ab' * 32}",
        f"ts=abc,v1={'ab' * 32}",
        f"ts=-5,v1={'ab' * 32}",
        f"ts={TS},v1=zz",
        f"ts={TS},v1={'ab' * 31}",
        f"ts={TS};v1={'ab' * 32}",
        f"ts=١٧٠٤٩٠٨٠١٠,v1={'ab' * 32}",  # Arabic-Indic digits are not a Unix time
        ",",
    ],
)
def test_malformed_signature_header_is_rejected(value: str) -> None:
    headers = {"x-signature": value, "x-request-id": REQUEST_ID}

    with pytest.raises(WebhookSignatureError, match="malformed x-signature"):
        verify_signature(SECRET, headers, DATA_ID, now_s=TS)


def test_oversized_request_id_is_rejected() -> None:
    request_id = "r" * 201
    headers = headers_for(request_id=request_id)

    with pytest.raises(WebhookSignatureError, match="malformed x-request-id"):
        verify_signature(SECRET, headers, DATA_ID, now_s=TS)


def test_id_signed_lowercased_is_accepted() -> None:
    data_id = "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"
    headers = headers_for(data_id.lower())

    assert verify_signature(SECRET, headers, data_id, now_s=TS).request_id == REQUEST_ID


def test_id_signed_as_received_is_accepted() -> None:
    data_id = "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"

    verify_signature(SECRET, headers_for(data_id), data_id, now_s=TS)


def test_id_with_injected_separators_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match=r"malformed notification: data\.id"):
        verify_signature(SECRET, headers_for(), "1;request-id:x", now_s=TS)


def test_errors_belong_to_the_pix_tree() -> None:
    with pytest.raises(PixError):
        verify_signature(SECRET, {}, DATA_ID, now_s=TS)


def test_read_notification_of_a_mercado_pago_body() -> None:
    notification = read_notification("mercadopago", SECRET, headers_for(), mp_body(), now_s=TS + 5)

    assert notification.psp == "mercadopago"
    assert notification.psp_payment_id == DATA_ID
    assert notification.request_id == REQUEST_ID
    assert notification.action == "payment.updated"
    assert notification.signed_at == datetime.fromtimestamp(TS, UTC)


def test_read_notification_accepts_a_numeric_body_id() -> None:
    notification = read_notification(
        "mercadopago", SECRET, headers_for(), mp_body(int(DATA_ID)), now_s=TS
    )

    assert notification.psp_payment_id == DATA_ID


def test_read_notification_prefers_the_query_id_which_mercado_pago_signs() -> None:
    body = json.dumps({"type": "payment"}).encode()
    notification = read_notification(
        "mercadopago", SECRET, headers_for(), body, query_data_id=DATA_ID, now_s=TS
    )

    assert notification.psp_payment_id == DATA_ID
    assert notification.action == "payment.updated"


def test_read_notification_rejects_query_and_body_ids_that_differ() -> None:
    with pytest.raises(WebhookSignatureError, match="differ"):
        read_notification(
            "mercadopago",
            SECRET,
            headers_for(),
            mp_body("999"),
            query_data_id=DATA_ID,
            now_s=TS,
        )


def test_read_notification_checks_the_signature_of_the_body_id() -> None:
    with pytest.raises(WebhookSignatureError, match="bad signature"):
        read_notification("mercadopago", SECRET, headers_for(), mp_body("987654321"), now_s=TS)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "no data.id"),
        (b'{"data": {"id": true}}', "no data.id"),
        (b'{"data": "123"}', "no data.id"),
    ],
)
def test_read_notification_rejects_malformed_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookSignatureError, match=reason):
        read_notification("mercadopago", SECRET, headers_for(), body, now_s=TS)
