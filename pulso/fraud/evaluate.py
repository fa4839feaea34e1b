"""Run labelled synthetic traffic through the detector and measure it.

The traffic is :mod:`pulso.sources.stream_generator` on a simulated clock spread over one
day (from 06:00 local, so each store's profile has learned its day before the night comes),
fed to the detector in batches as the pipeline would. A payment counts as flagged when an
alert names it: its own alert, or the alert of a later charge whose pattern covers it.

- recall of a kind: the share of its labelled payments that were flagged (by any rule)
- precision of a kind: the share of the payments the detector named this kind that carry
  this label; overall, the share of flagged payments that carry any label
- detection delay: event time of the alert minus event time of the payment (covered
  charges are flagged when their pattern shows, so their delay is above 0)
- processing latency: wall time from a batch entering the detector to its alerts
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Final

from pulso.domain.events import Event
from pulso.domain.fraud import ANOMALY_KINDS
from pulso.domain.payments import ChargeCreated
from pulso.domain.pii import payer_hasher
from pulso.fraud.detector import Detector
from pulso.fraud.thresholds import FraudThresholds
from pulso.sources.payments_generator import LOCAL_TZ
from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream

DAY_S: Final = 86_400
EVALUATION_DAY: Final = date(2026, 3, 2)  # a Monday
BATCH_EVENTS: Final = 1_000
_EVALUATION_KEY: Final = b"pulso fraud evaluate"  # not the real PII key: generated payers only


@dataclass(slots=True)
class KindScore:
    """Counts for one anomaly kind (or for all of them together)."""

    labelled: int = 0
    detected: int = 0  # labelled and flagged
    predicted: int = 0  # flagged and named this kind
    correct: int = 0  # named this kind and labelled it

    @property
    def recall(self) -> float:
        return self.detected / self.labelled if self.labelled else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Evaluation:
    """Everything ``pulso fraud evaluate`` prints."""

    payments: int = 0
    events: int = 0
    normal: int = 0
    false_alarms: int = 0
    by_kind: dict[str, KindScore] = field(default_factory=dict)
    overall: KindScore = field(default_factory=KindScore)
    delays_s: list[float] = field(default_factory=list)
    batch_latencies_s: list[float] = field(default_factory=list)
    detector_seconds: float = 0.0
    alerts: int = 0

    @property
    def false_alarms_per_10k(self) -> float:
        return 10_000 * self.false_alarms / self.normal if self.normal else 0.0

    @property
    def payments_per_s(self) -> float:
        return self.payments / self.detector_seconds if self.detector_seconds else 0.0


def evaluation_config(payments: int, anomaly_rate: float, seed: int, stores: int) -> StreamConfig:
    """``payments`` charges over one simulated day."""
    return StreamConfig(
        rate=payments / DAY_S,
        duration_s=None,
        payments=payments,
        anomaly_rate=anomaly_rate,
        n_stores=stores,
        seed=seed,
    )


def evaluation_start() -> datetime:
    return datetime.combine(EVALUATION_DAY, dtime(6), LOCAL_TZ).astimezone(UTC)


def labelled_events(config: StreamConfig) -> list[Event]:
    return list(generate_stream(config, SimulatedClock(evaluation_start())))


def evaluation_detector(thresholds: FraudThresholds) -> Detector:
    return Detector(thresholds, payer_hasher(_EVALUATION_KEY))


def evaluate(
    events: Sequence[Event], thresholds: FraudThresholds, *, batch_events: int = BATCH_EVENTS
) -> Evaluation:
    """Score ``events`` in batches and compare the flags with the labels."""
    detector = evaluation_detector(thresholds)
    labels: dict[str, str | None] = {}
    created_at: dict[str, datetime] = {}
    flagged: dict[str, tuple[str, datetime]] = {}
    result = Evaluation(events=len(events))
    for start in range(0, len(events), batch_events):
        batch = events[start : start + batch_events]
        began = time.perf_counter()
        assessments = detector.score(batch, thresholds.alert_score)  # the alerts
        elapsed = time.perf_counter() - began
        result.batch_latencies_s.append(elapsed)
        result.detector_seconds += elapsed
        for a in assessments:
            if a.alert:
                result.alerts += 1
                kind = a.kind or "score"
                for charge_id in (a.charge_id, *a.covered):
                    flagged.setdefault(charge_id, (kind, a.created_at))
        _collect_labels(batch, labels, created_at)
    _score(result, labels, created_at, flagged)
    return result


def _collect_labels(
    batch: Iterable[Event], labels: dict[str, str | None], created_at: dict[str, datetime]
) -> None:
    for event in batch:
        if isinstance(event.data, ChargeCreated):
            labels[event.data.charge_id] = event.data.label
            created_at[event.data.charge_id] = event.data.created_at


def _score(
    result: Evaluation,
    labels: dict[str, str | None],
    created_at: dict[str, datetime],
    flagged: dict[str, tuple[str, datetime]],
) -> None:
    result.by_kind = {k: KindScore() for k in ANOMALY_KINDS}
    result.payments = len(labels)
    overall = result.overall
    for charge_id, label in labels.items():
        hit = flagged.get(charge_id)
        if label is None:
            result.normal += 1
            if hit is not None:
                result.false_alarms += 1
                overall.predicted += 1
                _predicted(result, hit[0], correct=False)
            continue
        score = result.by_kind[label]
        score.labelled += 1
        overall.labelled += 1
        if hit is None:
            continue
        score.detected += 1
        overall.detected += 1
        overall.predicted += 1
        overall.correct += 1
        _predicted(result, hit[0], correct=hit[0] == label)
        result.delays_s.append((hit[1] - created_at[charge_id]).total_seconds())


def _predicted(result: Evaluation, kind: str, *, correct: bool) -> None:
    score = result.by_kind.get(kind)
    if score is not None:
        score.predicted += 1
        score.correct += int(correct)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
