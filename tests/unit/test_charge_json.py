"""The create route's hand-written answer equals the ``ChargeOut`` schema's, and the charge id
computed by hand equals ``uuid5``: both are shortcuts that must never drift."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pulso.api.schemas import ChargeOut, charge_json
from pulso.pix.charge import (
    CHARGE_ID_NAMESPACE,
    Charge,
    NewCharge,
    charge_id_for,
    draft_charge,
    expire_if_due,
    fail_creation,
    follow_psp,
)
from pulso.pix.providers.protocol import PSPCharge
from pulso.pix.stores import StoreInfo

STORE = StoreInfo("LJ-0007", "Mercearia São João", "Belém", "PA")
NOW = datetime(2026, 11, 24, 12, 30, 0, tzinfo=UTC)  # whole seconds: no fraction printed


def _draft(now: datetime = NOW, **changes: object) -> Charge:
    new = NewCharge(
        amount=Decimal("1234.5"), description='Açaí "grande" \\ 1/2', store_id=STORE.store_id
    )
    return replace(draft_charge(new, STORE, psp="sandbox", idempotency_key="k", now=now), **changes)  # type: ignore[arg-type]


def _psp(status: str, **changes: object) -> PSPCharge:
    base = PSPCharge(
        psp="sandbox",
        psp_payment_id="1732451234567",
        status="pending",
        status_detail="pending_waiting_transfer",
        amount=Decimal("1234.50"),
        brcode="00020101021226830014br.gov.bcb.pix",
        qr_png_base64=None,
        ticket_url=None,
        expires_at=NOW + timedelta(minutes=10),
        paid_at=None,
    )
    return replace(base, status=status, **changes)  # type: ignore[arg-type]


def _issued(now: datetime = NOW) -> Charge:
    issued = follow_psp(_psp("pending"), now)(_draft(now))
    assert issued is not None
    return issued


def _confirmed() -> Charge:
    paid_at = datetime(2026, 11, 24, 12, 31, 5, 123456, tzinfo=UTC)
    after = follow_psp(_psp("approved", paid_at=paid_at, end_to_end_id="E1"), NOW)(_issued())
    assert after is not None
    return after


def _failed() -> Charge:
    after = fail_creation("rejected: cc_rejected_other_reason", NOW)(_draft())
    assert after is not None
    return after


def _expired() -> Charge:
    issued = _issued()
    after = expire_if_due(issued.expires_at + timedelta(microseconds=1))(issued)
    assert after is not None
    return after


@pytest.mark.parametrize(
    "charge",
    [
        _draft(),
        _issued(),
        _issued(datetime(2026, 11, 24, 12, 30, 0, 5, tzinfo=UTC)),
        _issued(datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=timezone(timedelta(hours=-3)))),
        _confirmed(),
        replace(_confirmed(), paid_cents=100_000_000),
        _failed(),
        _expired(),
    ],
    ids=[
        "creating",
        "pending",
        "microseconds",
        "offset",
        "confirmed",
        "large",
        "failed",
        "expired",
    ],
)
@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8000/", "https://pulso.example.com", "http://[::1]:9/api/"]
)
def test_the_hand_written_answer_is_the_schemas(charge: Charge, base_url: str) -> None:
    assert (
        charge_json(charge, base_url) == ChargeOut.of(charge, base_url).model_dump_json().encode()
    )


@pytest.mark.parametrize(
    "key", ["k", "", "bench-1a2b3c4d-17", "till 3 · venda 9", "😀" * 20, "x" * 255]
)
def test_the_charge_id_is_uuid5_of_the_key(key: str) -> None:
    assert charge_id_for(key) == str(uuid.uuid5(CHARGE_ID_NAMESPACE, key))
