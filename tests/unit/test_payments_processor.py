from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pulso.domain.events import Event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.pipeline.processors.payments import PaymentsProcessor

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def created(charge_id: str = "ch_1", document: str | None = "52998224725") -> Event:
    payload = ChargeCreated(
        charge_id=charge_id,
        txid="TX1",
        store_id="LJ-0001",
        city="Recife",
        uf="PE",
        amount=Decimal("50.10"),
        created_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        payer_document=document,
    )
    return new_event(payload, source="t", key=charge_id, occurred_at=T0)


def confirmed(charge_id: str = "ch_1", after_s: int = 12) -> Event:
    at = T0 + timedelta(seconds=after_s)
    payload = ChargeConfirmed(charge_id=charge_id, confirmed_at=at, amount_paid=Decimal("50.10"))
    return new_event(payload, source="t", key=charge_id, occurred_at=at)


def failed(charge_id: str = "ch_1") -> Event:
    at = T0 + timedelta(seconds=5)
    payload = ChargeFailed(charge_id=charge_id, failed_at=at, reason="saldo insuficiente")
    return new_event(payload, source="t", key=charge_id, occurred_at=at)


def expired(charge_id: str = "ch_1") -> Event:
    at = T0 + timedelta(minutes=30)
    return new_event(
        ChargeExpired(charge_id=charge_id, expired_at=at), source="t", key=charge_id, occurred_at=at
    )


PROCESSOR = PaymentsProcessor(b"k" * 32)


def fold_one(*events: Event) -> dict[str, object]:
    columns = PROCESSOR.fold(events)
    assert len(columns["charge_id"]) == 1
    return {name: values[0] for name, values in columns.items()}


def test_created_then_confirmed_is_one_confirmed_row() -> None:
    row = fold_one(created(), confirmed())
    assert row["status"] == "confirmed"
    assert row["amount_cents"] == 5010 and row["paid_cents"] == 5010
    assert row["created_at"] == T0 and row["confirmed_at"] == T0 + timedelta(seconds=12)
    assert row["store_id"] == "LJ-0001" and row["uf"] == "PE"


def test_order_of_events_does_not_matter() -> None:
    assert fold_one(confirmed(), created()) == fold_one(created(), confirmed())


def test_repeated_events_change_nothing() -> None:
    assert fold_one(created(), confirmed(), created(), confirmed()) == fold_one(
        created(), confirmed()
    )


def test_confirmation_outranks_failure_and_expiry() -> None:
    assert fold_one(created(), failed(), confirmed())["status"] == "confirmed"
    assert fold_one(created(), confirmed(), expired())["status"] == "confirmed"
    assert fold_one(created(), failed())["status"] == "failed"
    assert fold_one(created(), expired())["status"] == "expired"
    assert fold_one(created())["status"] == "pending"


def test_first_confirmation_time_is_kept() -> None:
    row = fold_one(created(), confirmed(after_s=12), confirmed(after_s=40))
    assert row["confirmed_at"] == T0 + timedelta(seconds=12)


def test_payer_document_is_only_kept_as_a_keyed_hash() -> None:
    row = fold_one(created())
    digest = str(row["payer_hash"])
    assert "52998224725" not in digest and len(digest) == 32
    other_key = PaymentsProcessor(b"x" * 32).payer_hash("52998224725")
    assert other_key != digest
    assert fold_one(created(document=None))["payer_hash"] is None


def test_many_charges_fold_separately() -> None:
    columns = PROCESSOR.fold([created("a"), created("b"), confirmed("a")])
    rows = sorted(zip(columns["charge_id"], columns["status"], strict=True))
    assert rows == [("a", "confirmed"), ("b", "pending")]


def _by_charge(columns: dict[str, list[object]]) -> dict[object, dict[str, object]]:
    return {
        charge_id: {name: values[i] for name, values in columns.items()}
        for i, charge_id in enumerate(columns["charge_id"])
    }


def _mixed_events(seed: int) -> list[Event]:
    """Charges with every mix of lifecycle events, some only terminal (created earlier),
    shuffled; with ``seed`` odd, some events repeated (the per-event fold's path)."""
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(300):
        charge = f"ch_{n}"
        if rng.random() < 0.8:
            events.append(created(charge, document=rng.choice([None, "52998224725"])))
        for make in (confirmed, failed, expired):
            if rng.random() < 0.3:
                events.append(make(charge))
    if seed % 2:
        events += rng.sample(events, 20)
    rng.shuffle(events)
    return events


@pytest.mark.parametrize("seed", range(6))
def test_columnar_fold_equals_the_per_event_fold(seed: int) -> None:
    events = _mixed_events(seed)
    fast = PROCESSOR.fold(events)
    assert list(fast) == list(PROCESSOR._fold_rows(events))
    assert _by_charge(fast) == _by_charge(PROCESSOR._fold_rows(events))
    assert len(fast["charge_id"]) == len({e.data.charge_id for e in events})


def test_confirmation_seconds_and_latest_update() -> None:
    row = fold_one(expired(), created(), confirmed(after_s=12))
    assert row["confirmation_seconds"] == 12.0
    assert row["updated_at"] == T0 + timedelta(minutes=30)
    assert row["status"] == "confirmed" and row["expired_at"] == T0 + timedelta(minutes=30)
    assert fold_one(confirmed())["confirmation_seconds"] is None
