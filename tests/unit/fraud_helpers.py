"""Shared by the fraud detector tests: a plain payer hash and a detector built on it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pulso.fraud.detector import Detector
from pulso.fraud.thresholds import FraudThresholds

NOON = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


def sha_hash(document: str | None) -> str | None:
    """A stand-in for the keyed payer hash (fixed snapshots in the tests depend on it)."""
    return None if document is None else hashlib.sha256(document.encode()).hexdigest()[:32]


def detector(**overrides: Any) -> Detector:
    return Detector(FraudThresholds(**overrides), sha_hash)
