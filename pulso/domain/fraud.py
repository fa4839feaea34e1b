"""The kinds of anomalous payment the generator injects and the detector looks for.

A generated ``ChargeCreated`` that belongs to an anomaly carries its kind in ``label``: ground
truth for ``pulso fraud evaluate`` only. The detector never reads the label.
"""

from __future__ import annotations

from typing import Final

CARD_TESTING: Final = "card_testing"
VELOCITY: Final = "velocity"
AMOUNT_SPIKE: Final = "amount_spike"
IMPOSSIBLE_TRAVEL: Final = "impossible_travel"
NIGHT_HIGH_VALUE: Final = "night_high_value"
FAIL_THEN_SUCCESS: Final = "fail_then_success"
DUPLICATE_CHARGE: Final = "duplicate_charge"

ANOMALY_KINDS: Final[tuple[str, ...]] = (
    CARD_TESTING,
    VELOCITY,
    AMOUNT_SPIKE,
    IMPOSSIBLE_TRAVEL,
    NIGHT_HIGH_VALUE,
    FAIL_THEN_SUCCESS,
    DUPLICATE_CHARGE,
)
"""Every anomaly kind, in a fixed order (reports list them so)."""

ANOMALY_LABELS_PT: Final[dict[str, str]] = {
    CARD_TESTING: "teste de cartão",
    VELOCITY: "velocidade entre lojas",
    AMOUNT_SPIKE: "valor fora do padrão",
    IMPOSSIBLE_TRAVEL: "deslocamento impossível",
    NIGHT_HIGH_VALUE: "valor alto de madrugada",
    FAIL_THEN_SUCCESS: "falhas seguidas de sucesso",
    DUPLICATE_CHARGE: "cobrança duplicada",
}
"""How each kind is named to a person (alerts, dashboard)."""
