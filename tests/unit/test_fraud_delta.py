"""The detector's incremental checkpoints: a full snapshot plus the deltas taken after it give,
restored at any point, the state of the live detector to the byte, and a detector restored that
way goes on to the same verdicts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pulso.domain.events import Event, new_event
from pulso.domain.payments import ChargeCreated, ChargeFailed
from pulso.fraud.detector import Detector
from pulso.fraud.evaluate import evaluation_config, evaluation_start, labelled_events
from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream
from tests.unit.test_fraud_batch import _fixed_events, detector


def _restored(full: bytes | None, deltas: list[bytes], **overrides: Any) -> Detector:
    d = detector(**overrides)
    d.restore(full)
    for delta in deltas:
        d.apply_delta(delta)
    return d


def _with_refusals(events: list[Event], rng: random.Random) -> list[Event]:
    """The labelled traffic plus refusals of some earlier charges (a refusal changes a payer in
    place, without moving it in the recency order)."""
    out: list[Event] = []
    created: list[ChargeCreated] = []
    for i, event in enumerate(events):
        out.append(event)
        if isinstance(event.data, ChargeCreated):
            created.append(event.data)
        if i % 7 == 3 and created:
            charge_id = rng.choice(created[-200:]).charge_id
            at = event.occurred_at
            payload = ChargeFailed(charge_id=charge_id, failed_at=at, reason="saldo insuficiente")
            out.append(new_event(payload, source="test", key=charge_id, occurred_at=at))
    return out


@pytest.mark.parametrize("max_payers", [30, 100_000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_full_plus_deltas_restores_the_live_state_at_any_point(max_payers: int, seed: int) -> None:
    rng = random.Random(seed)
    events = _with_refusals(labelled_events(evaluation_config(3_000, 0.08, seed, 15)), rng)
    live = detector(max_payers=max_payers)
    full: bytes | None = None
    deltas: list[bytes] = []
    checks = 0
    start = 0
    while start < len(events):
        size = rng.choice([1, 3, 40, 250, 900])
        live.score(events[start : start + size], 0.3)
        start += size
        roll = rng.random()
        if roll < 0.1:  # a compaction: a full snapshot, the deltas dropped
            full, deltas = live.snapshot(), []
        else:
            delta = live.snapshot_delta()
            assert delta is not None
            deltas.append(delta)
        if roll > 0.85:  # a restart here: full + deltas is the live state
            restored = _restored(full, deltas, max_payers=max_payers)
            assert restored._owner == live._owner
            assert list(restored._payers.items()) == list(live._payers.items())
            expected = live.snapshot()  # a save of the live one: the next deltas start here
            assert restored.snapshot() == expected
            assert restored.sizes == live.sizes
            full, deltas = expected, []
            checks += 1
    assert checks >= 3
    assert live.forgotten_payers > 0 or max_payers > 1_000


def test_a_restored_detector_goes_on_to_the_same_verdicts() -> None:
    rng = random.Random(7)
    events = _with_refusals(labelled_events(evaluation_config(4_000, 0.08, 5, 12)), rng)
    live = detector(max_payers=50)
    cut = len(events) // 2
    live.score(events[: cut // 3], 0.3)
    full = live.snapshot()
    deltas = []
    for start in range(cut // 3, cut, 97):
        live.score(events[start : min(start + 97, cut)], 0.3)
        delta = live.snapshot_delta()
        assert delta is not None
        deltas.append(delta)
    restored = _restored(full, deltas, max_payers=50)
    rest = events[cut:]
    assert restored.score(rest, -1.0) == live.score(rest, -1.0)
    assert restored.snapshot() == live.snapshot()


def test_a_delta_is_small_beside_the_full_snapshot() -> None:
    config = StreamConfig(
        rate=2_000, duration_s=None, payments=20_000, anomaly_rate=0.01, n_stores=40, seed=3
    )
    events = list(generate_stream(config, SimulatedClock(evaluation_start())))
    live = detector()
    live.score(events[:-500], 0.3)
    full = live.snapshot()
    live.score(events[-500:], 0.3)
    delta = live.snapshot_delta()
    assert delta is not None
    assert len(delta) < len(full) / 5


def test_the_fixed_events_through_deltas_give_the_known_snapshot() -> None:
    from tests.unit.test_fraud_batch import SNAPSHOT_BEFORE_THE_BATCH_PATH

    live = detector(max_payers=2)
    deltas = []
    for event in _fixed_events():
        live.observe(event)
        delta = live.snapshot_delta()
        assert delta is not None
        deltas.append(delta)
    assert _restored(None, deltas, max_payers=2).snapshot() == SNAPSHOT_BEFORE_THE_BATCH_PATH


def test_a_delta_of_another_version_is_refused() -> None:
    live = detector()
    live.score(_fixed_events(), 0.3)
    delta = bytearray(live.snapshot_delta() or b"")
    assert delta[1] == 2  # array_like: [version, ...]; version 2 is one msgpack byte
    delta[1] = 9
    with pytest.raises(ValueError, match="version"):
        detector().apply_delta(bytes(delta))


def test_without_saves_the_changes_stay_bounded_and_a_full_snapshot_is_asked_for() -> None:
    events = labelled_events(evaluation_config(3_000, 0.01, 8, 10))
    live = detector(max_payers=20)
    live._max_removed = 50  # max(max_payers, 100_000) in earnest
    live.score(events, 0.3)  # far more payers dropped than that, nothing saved
    assert len(live._removed) <= 50
    assert live.snapshot_delta() is None
    full = live.snapshot()
    live.score(events[:10], 0.3)
    delta = live.snapshot_delta()
    assert delta is not None
    assert _restored(full, [delta], max_payers=20).snapshot() == live.snapshot()
