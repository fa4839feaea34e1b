"""Shared by the fraud detector tests: a plain payer hash, a detector built on it, and a
charge-created event."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pulso.domain.events import Event, new_event
from pulso.domain.payments import ChargeCreated
from pulso.fraud.detector import Detector
from pulso.fraud.thresholds import FraudThresholds

NOON = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


def sha_hash(document: str | None) -> str | None:
    """A stand-in for the keyed payer hash (fixed snapshots in the tests depend on it)."""
    return None if document is None else hashlib.sha256(document.encode()).hexdigest()[:32]


def detector(**overrides: Any) -> Detector:
    return Detector(FraudThresholds(**overrides), sha_hash)


def created(
    n: int,
    at: datetime,
    amount: str = "50.00",
    store: str = "LJ-0001",
    payer: str | None = None,
    city: str = "Recife",
    uf: str = "PE",
) -> Event:
    """``pix.charge.created`` of charge ``ch_<n>`` at ``at``."""
    payload = ChargeCreated(
        charge_id=f"ch_{n:06d}",
        txid=f"TX{n:06d}",
        store_id=store,
        city=city,
        uf=uf,
        amount=Decimal(amount),
        created_at=at,
        expires_at=at + timedelta(minutes=10),
        payer_document=payer,
    )
    return new_event(payload, source="test", key=payload.charge_id, occurred_at=at)
