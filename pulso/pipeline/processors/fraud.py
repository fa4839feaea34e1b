"""The fraud processor: scores each PIX charge, raises alerts, keeps the risky ones.

A stateful processor (``StatefulProcessor``, ``IncrementalState``): the detector's state lives
in memory and the runner checkpoints it with the bus offsets (a delta per batch, a full
``snapshot()`` now and then), so a restart continues exactly where the last committed batch
left it. Within a batch the events are scored in event-time order
(the runner hands them over grouped by type).

Writes, in the batch's transaction: one ``alerts`` row per alerting charge (``alert_id``
derived from the charge, so a replay inserts nothing new), and a ``fraud_scores`` row per
charge whose risk reaches ``record_score`` (earlier charges of a pattern included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import attrgetter
from typing import Final

from pulso.domain.events import Event
from pulso.domain.fraud import (
    AMOUNT_SPIKE,
    ANOMALY_LABELS_PT,
    CARD_TESTING,
    NIGHT_HIGH_VALUE,
)
from pulso.domain.pii import payer_hasher
from pulso.domain.ptbr import format_decimal
from pulso.fraud.detector import Assessment, Detector
from pulso.fraud.thresholds import FraudThresholds
from pulso.pipeline.processors import Write, nothing_to_write
from pulso.store.protocol import StoreTx
from pulso.store.tables import ALERTS, FRAUD_SCORES, ColumnBatch

log = logging.getLogger(__name__)

STORE_RULES: Final = frozenset({CARD_TESTING, AMOUNT_SPIKE, NIGHT_HIGH_VALUE})
"""Rules about a store (the alert's subject is the store); the others are about a payer."""
CRITICAL_RISK: Final = 0.9
_MAX_COVERED_IN_DETAILS: Final = 50
_OCCURRED_AT: Final = attrgetter("occurred_at")
_FILL_FROM_PAYMENTS_SQL: Final = """
UPDATE fraud_scores
SET store_id = p.store_id, payer_hash = p.payer_hash, created_at = p.created_at,
    amount_cents = p.amount_cents
FROM payments p
WHERE p.charge_id = fraud_scores.charge_id AND fraud_scores.created_at IS NULL
  AND fraud_scores.charge_id = ANY(%s)
"""
"""A charge flagged as part of a later charge's pattern (``covered``) is known to the detector
by its id only: its row takes the store, payer, time and amount from ``payments`` (written
earlier in the batch's transaction, or by an earlier batch)."""


class FraudProcessor:
    """Scores ``pix.charge.*`` events with a :class:`Detector`; writes alerts and scores."""

    name = "fraud"
    event_types = frozenset(
        {"pix.charge.created", "pix.charge.confirmed", "pix.charge.failed", "pix.charge.expired"}
    )

    def __init__(self, thresholds: FraudThresholds, pii_key: bytes) -> None:
        self.detector = Detector(thresholds, payer_hasher(pii_key))
        self.thresholds = thresholds
        # Only the verdicts that give a row: alerts, and risks from ``record_score``.
        self._keep = min(thresholds.record_score, thresholds.alert_score)

    def process(self, events: Sequence[Event], tx: StoreTx) -> None:
        self.prepare(events, ())(tx)

    def prepare(self, events: Sequence[Event], partitions: Sequence[str]) -> Write:
        """The batch scored now; its alerts and risky charges written in ``tx``."""
        assessments = self.score(events)
        alerts = [a for a in assessments if a.alert]
        alert_rows = alert_columns(alerts) if alerts else None
        rows = score_columns(assessments, self.thresholds.record_score)
        if alert_rows is None and not rows["charge_id"]:
            return nothing_to_write
        count = len(events)
        covered_only = [
            c for c, at in zip(rows["charge_id"], rows["created_at"], strict=True) if at is None
        ]

        def write(tx: StoreTx) -> None:
            if alert_rows is not None:
                tx.insert_new(ALERTS, alert_rows)
                log.info("fraud: %d alerts in a batch of %d events", len(alerts), count)
            if rows["charge_id"]:
                tx.upsert(FRAUD_SCORES, rows)
            if covered_only:
                tx.execute(_FILL_FROM_PAYMENTS_SQL, (covered_only,))

        return write

    def score(self, events: Sequence[Event]) -> list[Assessment]:
        """Assess the batch's charges in event-time order (ties: the order given); the
        verdicts that alert or reach ``record_score`` (the others write nothing)."""
        return self.detector.score(sorted(events, key=_OCCURRED_AT), self._keep)

    def snapshot(self) -> bytes:
        return self.detector.snapshot()

    def restore(self, state: bytes | None) -> None:
        self.detector.restore(state)

    def snapshot_delta(self) -> bytes | None:
        return self.detector.snapshot_delta()

    def apply_delta(self, delta: bytes) -> None:
        self.detector.apply_delta(delta)


def alert_columns(assessments: Sequence[Assessment]) -> ColumnBatch:
    columns: ColumnBatch = {name: [] for name in ALERTS.column_names}
    for a in assessments:
        kind = a.kind
        columns["alert_id"].append(f"fraud-{a.charge_id}")
        columns["kind"].append(f"fraud.{kind or 'score'}")
        columns["severity"].append("critical" if a.risk >= CRITICAL_RISK else "warning")
        columns["subject"].append(_subject(a, kind))
        columns["message"].append(alert_message(a))
        columns["raised_at"].append(a.created_at)
        columns["count"].append(1)
        columns["details"].append(_details(a))
    return columns


def _subject(a: Assessment, kind: str | None) -> str:
    if kind in STORE_RULES or a.payer_hash is None:
        return a.store_id
    return a.payer_hash


def alert_message(a: Assessment) -> str:
    """``Risco 0,93 (teste de cartão) na cobrança ch_…: 12 cobranças abaixo de R$ 2,00 …``."""
    title = ANOMALY_LABELS_PT.get(a.kind or "", "comportamento fora do padrão da loja")
    reasons = "; ".join(a.reasons) or "valor e horário fora do perfil aprendido da loja"
    return (
        f"Risco {format_decimal(a.risk, places=2)} ({title}) na cobrança {a.charge_id}: {reasons}"
    )


def _details(a: Assessment) -> dict[str, str]:
    covered = a.covered
    details = {
        "risk_score": f"{a.risk:.4f}",
        "learned_score": f"{a.learned:.4f}",
        "charge_id": a.charge_id,
        "store_id": a.store_id,
        "amount": str(a.amount),
        "rules": ",".join(h.rule for h in a.hits),
        "reasons": " | ".join(a.reasons),
    }
    if covered:
        details["covered_count"] = str(len(covered))
        details["covered_charges"] = ",".join(covered[:_MAX_COVERED_IN_DETAILS])
    return details


def score_columns(assessments: Sequence[Assessment], record_score: float) -> ColumnBatch:
    """Rows for ``fraud_scores``: risky charges, and the earlier charges their alerts cover."""
    rows: dict[str, list[object]] = {}
    for a in assessments:
        if a.risk < record_score:
            continue
        kind, reasons = a.kind, " | ".join(a.reasons)
        row = [a.store_id, a.payer_hash, a.created_at, int(a.amount * 100), a.risk, a.learned]
        _keep_riskier(rows, a.charge_id, [*row, kind, reasons, a.alert])
        for charge_id in a.covered:
            _keep_riskier(
                rows, charge_id, [None, None, None, None, a.risk, None, kind, reasons, a.alert]
            )
    columns: ColumnBatch = {name: [] for name in FRAUD_SCORES.column_names}
    for charge_id, values in rows.items():
        columns["charge_id"].append(charge_id)
        for name, value in zip(FRAUD_SCORES.column_names[1:], values, strict=True):
            columns[name].append(value)
    return columns


def _keep_riskier(rows: dict[str, list[object]], charge_id: str, values: list[object]) -> None:
    """Merge like the table's upsert does (``FRAUD_SCORES`` merge rules: creation facts first
    seen, the highest risk, kind and reasons of the riskiest — ties: the later one), so a row
    is the same whether its assessments fell in one batch or in several."""
    old = rows.get(charge_id)
    if old is None:
        rows[charge_id] = values
        return
    merged = [o if o is not None else n for o, n in zip(old, values, strict=True)]
    if float(values[4]) >= float(old[4]):  # type: ignore[arg-type]
        merged[4], merged[6], merged[7], merged[8] = values[4], values[6], values[7], values[8]
    rows[charge_id] = merged
