"""Fraud detection on the PIX payment stream.

A rules engine (``rules``) with thresholds from the settings, each hit carrying a reason in
Brazilian Portuguese, and a learned per-store profile (``model``: online log-amount mean and
variance, and the store's hour-of-day mix) give one risk score per payment (``detector``).
The state is per store and per payer (keyed by the payer's keyed hash, never the document)
and serialises to bytes, so the pipeline checkpoints it with the bus offsets.
"""

from __future__ import annotations

from pulso.errors import PulsoError


class FraudConfigError(PulsoError):
    """A fraud threshold is unknown or out of range (names the setting to change)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem
