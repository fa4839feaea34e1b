"""The detector's thresholds: defaults, the ``PULSO_FRAUD_*`` settings, overrides by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pulso.fraud import FraudConfigError

if TYPE_CHECKING:
    from pulso.config import Settings


@dataclass(frozen=True, slots=True)
class FraudThresholds:
    """Every knob of the rules and the score. Amounts in BRL, windows in seconds."""

    card_testing_count: int = 8  # this many small charges at one store...
    card_testing_max_amount: Decimal = Decimal("2.00")  # ...each below this...
    card_testing_window_s: int = 60  # ...within this window
    velocity_stores: int = 4  # one payer at this many distinct stores...
    velocity_window_s: int = 600  # ...within this window
    spike_z: float = 4.5  # log-amount this many standard deviations above the store's mean
    min_history: int = 30  # charges a store needs before its profile is trusted
    travel_kmh: float = 900.0  # faster than a plane between two charges of one payer
    travel_min_km: float = 150.0
    travel_window_s: int = 3600
    night_start_h: int = 0  # local hours [start, end) in America/Sao_Paulo
    night_end_h: int = 5
    night_min_amount: Decimal = Decimal("1000.00")
    fail_count: int = 3  # this many failed charges of one payer before a new one...
    fail_window_s: int = 900  # ...within this window
    duplicate_window_s: int = 300  # same payer, store and amount within this window
    alert_score: float = 0.7  # a payment whose risk reaches this raises an alert
    model_weight: float = 0.6  # how much the learned score alone can add to the risk
    record_score: float = 0.3  # payments at or above this risk are kept in fraud_scores
    max_payers: int = 100_000  # payers kept in memory (the least recently seen go first)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _UNIT_INTERVAL:
                _require(0.0 <= value <= 1.0, field.name, f"must be 0..1, got {value}")
            elif field.name in ("night_start_h", "night_end_h"):
                _require(0 <= value <= 24, field.name, f"must be an hour 0..24, got {value}")
            else:
                _require(value > 0, field.name, f"must be positive, got {value}")

    def replace(self, overrides: Mapping[str, str]) -> FraudThresholds:
        """A copy with ``name=value`` overrides given as text (the CLI's ``--set``)."""
        return dataclasses.replace(self, **{n: _parse(n, v) for n, v in overrides.items()})


_UNIT_INTERVAL = frozenset({"alert_score", "model_weight", "record_score"})
_TYPES: dict[str, Any] = {f.name: f.type for f in dataclasses.fields(FraudThresholds)}
THRESHOLD_NAMES: tuple[str, ...] = tuple(_TYPES)
SETTINGS_PREFIX = "fraud_"


def _require(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise FraudConfigError(name, problem)


def _parse(name: str, text: str) -> Any:
    kind = _TYPES.get(name)
    if kind is None:
        known = ", ".join(THRESHOLD_NAMES)
        raise FraudConfigError(name, f"unknown threshold; known ones: {known}")
    try:
        if kind in ("int", int):
            return int(text)
        if kind in ("float", float):
            return float(text)
        return Decimal(text.replace(",", "."))
    except (ValueError, InvalidOperation):
        expected = "a whole number" if kind in ("int", int) else "a number"
        raise FraudConfigError(name, f"expected {expected}, got {text!r}") from None


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["card_testing_count=10"]`` -> ``{"card_testing_count": "10"}``; checks the shape."""
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise FraudConfigError(item, "expected NAME=VALUE, e.g. card_testing_count=10")
        overrides[name.strip()] = value.strip()
    return overrides


def thresholds_from_settings(settings: Settings) -> FraudThresholds:
    """The thresholds the ``PULSO_FRAUD_*`` settings give (defaults for those unset)."""
    values = {n: getattr(settings, SETTINGS_PREFIX + n) for n in THRESHOLD_NAMES}
    return FraudThresholds(**values)
