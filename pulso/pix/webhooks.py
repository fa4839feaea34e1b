"""Mercado Pago's webhook signature (``x-signature``), verified and produced.

Mercado Pago signs each notification with the application's secret:

- header ``x-signature: ts=<unix time>,v1=<hex HMAC-SHA256>`` and header ``x-request-id``;
- the signed text (the *manifest*) is ``id:<data.id>;request-id:<x-request-id>;ts:<ts>;``
  where ``data.id`` is the query parameter of the notification URL (the body's ``data.id``
  carries the same value); an alphanumeric id is signed lowercased, so both forms are tried.

``ts`` is in seconds in Mercado Pago's documentation and in its SDKs since they fixed a
seconds/milliseconds mix-up (sdk-nodejs#458, sdk-python#142), but notifications with a
millisecond ``ts`` have been seen in the wild, so a value too large to be seconds is read as
milliseconds. Notifications older (or further in the future) than the tolerance are refused,
which bounds how long a captured notification can be replayed.

The sandbox PSP signs with :func:`sign_notification`, so the production check runs on it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pulso.pix.errors import WebhookSignatureError
from pulso.pix.providers.protocol import Notification

SIGNATURE_HEADER: Final = "x-signature"
REQUEST_ID_HEADER: Final = "x-request-id"
DEFAULT_TOLERANCE_S: Final = 300.0
# 1e11 seconds is the year 5138, while 1e11 milliseconds is 1973: no real ts is ambiguous.
_MILLISECONDS_FROM: Final = 100_000_000_000
_TS = re.compile(r"[0-9]{1,16}")
_V1 = re.compile(r"[0-9a-fA-F]{64}")
_DATA_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MAX_REQUEST_ID_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """The parts of an ``x-signature`` header."""

    ts: str
    v1: str


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a valid signature vouches for."""

    request_id: str
    signed_at: datetime


def signature_manifest(data_id: str, request_id: str, ts: int | str) -> str:
    """The text Mercado Pago signs."""
    return f"id:{data_id};request-id:{request_id};ts:{ts};"


def compute_signature(secret: str, data_id: str, request_id: str, ts: int | str) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of the manifest under the webhook secret."""
    manifest = signature_manifest(data_id, request_id, ts).encode()
    return hmac.new(secret.encode(), manifest, hashlib.sha256).hexdigest()


def sign_notification(secret: str, data_id: str, request_id: str, ts: int | str) -> str:
    """A complete ``x-signature`` header value, signed exactly as Mercado Pago does."""
    return f"ts={ts},v1={compute_signature(secret, data_id, request_id, ts)}"


def parse_signature_header(value: str) -> SignatureHeader:
    """Split ``ts=...,v1=...`` (any order, other fields ignored) or raise."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        key, sep, field_value = part.partition("=")
        if not sep or not key.strip():
            raise WebhookSignatureError(
                f"malformed {SIGNATURE_HEADER} header: expected 'ts=<unix time>,v1=<hex>'"
            )
        fields[key.strip().lower()] = field_value.strip()
    ts, v1 = fields.get("ts", ""), fields.get("v1", "")
    if not _TS.fullmatch(ts):
        raise WebhookSignatureError(
            f"malformed {SIGNATURE_HEADER} header: ts must be a Unix time in digits"
        )
    if not _V1.fullmatch(v1):
        raise WebhookSignatureError(
            f"malformed {SIGNATURE_HEADER} header: v1 must be 64 hexadecimal digits"
        )
    return SignatureHeader(ts=ts, v1=v1.lower())


def timestamp_seconds(ts: str) -> float:
    """The Unix time of a ``ts`` field given in seconds or in milliseconds."""
    value = int(ts)
    return value / 1000 if value >= _MILLISECONDS_FROM else float(value)


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    data_id: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> VerifiedSignature:
    """Check the ``x-signature`` of a notification about ``data_id``, or raise
    WebhookSignatureError saying why (missing header, malformed header, bad signature,
    stale or future timestamp)."""
    if not secret:
        raise WebhookSignatureError(
            "no webhook secret is configured, so no notification can be trusted: "
            "set PULSO_WEBHOOK_SECRET to the secret of the PSP application"
        )
    check_data_id(data_id)
    signature = parse_signature_header(_required_header(headers, SIGNATURE_HEADER))
    request_id = _required_header(headers, REQUEST_ID_HEADER)
    if len(request_id) > _MAX_REQUEST_ID_CHARS:
        raise WebhookSignatureError(
            f"malformed {REQUEST_ID_HEADER} header: longer than {_MAX_REQUEST_ID_CHARS} chars"
        )
    if not _signature_matches(secret, signature, data_id, request_id):
        raise WebhookSignatureError(
            "bad signature: x-signature does not match the notification under the configured "
            "secret (forged or altered, or PULSO_WEBHOOK_SECRET is not the PSP's secret)"
        )
    signed_at_s = timestamp_seconds(signature.ts)
    _check_freshness(signed_at_s, time.time() if now_s is None else now_s, tolerance_s)
    return VerifiedSignature(
        request_id=request_id, signed_at=datetime.fromtimestamp(signed_at_s, UTC)
    )


def read_notification(
    psp: str,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    query_data_id: str | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> Notification:
    """Verify a Mercado Pago-style webhook and say which payment it is about.

    The id is the ``data.id`` query parameter when given, else the body's ``data.id``; when
    both are present they must agree.
    """
    payload = _decode_body(body)
    data_id = _notification_data_id(payload, query_data_id)
    verified = verify_signature(secret, headers, data_id, tolerance_s=tolerance_s, now_s=now_s)
    return Notification(
        psp=psp,
        psp_payment_id=data_id,
        request_id=verified.request_id,
        action=_action(payload),
        signed_at=verified.signed_at,
    )


def check_data_id(data_id: str) -> None:
    if not _DATA_ID.fullmatch(data_id):
        raise WebhookSignatureError(
            "malformed notification: data.id must be 1-64 letters, digits, '.', '_' or '-'"
        )


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive, HTTP header names are not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise WebhookSignatureError(
            f"missing {name} header: the notification was not signed by the PSP"
        )
    return value.strip()


def _signature_matches(
    secret: str, signature: SignatureHeader, data_id: str, request_id: str
) -> bool:
    matched = False
    for candidate in dict.fromkeys((data_id, data_id.lower())):
        expected = compute_signature(secret, candidate, request_id, signature.ts)
        # No early exit: both candidates always cost the same time.
        matched |= hmac.compare_digest(expected, signature.v1)
    return matched


def _check_freshness(signed_at_s: float, now_s: float, tolerance_s: float) -> None:
    age_s = now_s - signed_at_s
    if age_s > tolerance_s:
        raise WebhookSignatureError(
            f"stale notification: signed {age_s:.0f} s ago, more than the {tolerance_s:.0f} s "
            "tolerated (a replay, or this server's clock is wrong)"
        )
    if -age_s > tolerance_s:
        raise WebhookSignatureError(
            f"notification from the future: signed {-age_s:.0f} s ahead of this server's "
            f"clock, more than the {tolerance_s:.0f} s tolerated (check the clock, e.g. NTP)"
        )


def _decode_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WebhookSignatureError("malformed notification: the body is not JSON") from e
    if not isinstance(payload, dict):
        raise WebhookSignatureError("malformed notification: the body is not a JSON object")
    return payload


def _body_data_id(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data")
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _notification_data_id(payload: Mapping[str, Any], query_data_id: str | None) -> str:
    body_id = _body_data_id(payload)
    if query_data_id and body_id and query_data_id.lower() != body_id.lower():
        raise WebhookSignatureError(
            "malformed notification: data.id in the query string and in the body differ"
        )
    data_id = query_data_id or body_id
    if not data_id:
        raise WebhookSignatureError(
            "malformed notification: no data.id in the query string or in the body"
        )
    return data_id


def _action(payload: Mapping[str, Any]) -> str:
    action = payload.get("action")
    if isinstance(action, str) and action:
        return action[:100]
    topic = payload.get("type")
    return f"{topic[:50]}.updated" if isinstance(topic, str) and topic else "unknown"
