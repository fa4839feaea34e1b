"""The detector's batch path (``Detector.score``, what the pipeline runs) against the
per-event one, the payer table's bounds, the snapshot format, and the processor's payer hash.

The batch path is the fast one (one loop, state read once per batch); these tests pin that it
gives the per-event path's verdicts and leaves the same state, byte for byte."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fraud_helpers import NOON, created, detector

from pulso.domain.events import Event, new_event
from pulso.domain.fraud import DUPLICATE_CHARGE
from pulso.domain.payments import ChargeCreated, ChargeFailed
from pulso.domain.pii import payer_hasher
from pulso.domain.validators import complete_cpf
from pulso.fraud.detector import Detector
from pulso.fraud.evaluate import evaluation_config, labelled_events
from pulso.fraud.model import StoreProfile, learned_score
from pulso.fraud.thresholds import FraudThresholds
from pulso.pipeline.processors.fraud import FraudProcessor
from pulso.pipeline.processors.payments import PaymentsProcessor

A, B, C = complete_cpf("123456789"), complete_cpf("987654321"), complete_cpf("111222333")


def failed(n: int, at: datetime) -> Event:
    payload = ChargeFailed(charge_id=f"ch_{n:06d}", failed_at=at, reason="saldo insuficiente")
    return new_event(payload, source="test", key=payload.charge_id, occurred_at=at)


def _fixed_events() -> list[Event]:
    """Three payers and an anonymous one at a store, refusals, a small charge far away."""
    events = []
    for i in range(40):
        amount = f"{40 + (i * 7) % 21}.00"
        at = NOON + timedelta(seconds=20 * i)
        events.append(created(i, at, amount, "LJ-0001", [A, B, C, None][i % 4]))
        if i % 5 == 0:
            events.append(failed(i, at + timedelta(seconds=5)))
    events.append(created(40, NOON + timedelta(minutes=15), "0.50", "LJ-0002", C, "Manaus", "AM"))
    return events


# The snapshot of ``_fixed_events`` (max_payers=2) written by the detector before the batch
# path: the format is unchanged, so checkpoints taken before the upgrade restore as they are.
SNAPSHOT_BEFORE_THE_BATCH_PATH = bytes.fromhex(
    "940282a74c4a2d30303031929428cb400eb5ea317fd5f1cb3f8f359b217dc928dc0018000000000000000000"
    "00000028000000000000000000000090a74c4a2d30303032929400cb0000000000000000cb00000000000000"
    "00dc00180000000000000000000000000000000000000000000000009193cf0000019caf1ded20a963685f30"
    "3030303430c282d9206665363337353763343961663266393436363835316164306235636439313561929196"
    "cf0000019caf1b7c20a74c4a2d30303031a95265636966652f5045cd125ca963685f303030303337c290d920"
    "6636316464363439393061663837326331656635386238623037376231323663929296cf0000019caf1bca40"
    "a74c4a2d30303031a95265636966652f5045cd1518a963685f303030303338c296cf0000019caf1ded20a74c"
    "4a2d30303032a94d616e6175732f414d32a963685f303030303430c2901c"
)


def test_the_snapshot_format_is_the_one_checkpoints_already_hold() -> None:
    d = detector(max_payers=2)
    for event in _fixed_events():
        d.observe(event)
    assert d.snapshot() == SNAPSHOT_BEFORE_THE_BATCH_PATH
    restored = detector(max_payers=2)
    restored.restore(SNAPSHOT_BEFORE_THE_BATCH_PATH)
    assert restored.snapshot() == SNAPSHOT_BEFORE_THE_BATCH_PATH
    assert restored.sizes == d.sizes


@pytest.mark.parametrize("max_payers", [40, 100_000])
@pytest.mark.parametrize("batch", [1, 250, 5_000])
def test_score_gives_the_per_event_verdicts_and_state(max_payers: int, batch: int) -> None:
    events = labelled_events(evaluation_config(4_000, 0.08, 21, 20))
    one_by_one = detector(max_payers=max_payers)
    expected = [a for a in map(one_by_one.observe, events) if a is not None]
    keep = 0.3
    batched = detector(max_payers=max_payers)
    got = []
    for start in range(0, len(events), batch):
        got += batched.score(events[start : start + batch], keep)
        if start % (3 * batch) == 0:  # snapshots in between change nothing
            batched.snapshot()
    assert got == [a for a in expected if a.risk >= keep]
    assert any(a.alert for a in got) and any(not a.alert for a in got)
    assert batched.snapshot() == one_by_one.snapshot()
    assert batched.sizes == one_by_one.sizes
    assert batched.forgotten_payers == one_by_one.forgotten_payers


def test_score_keeps_nothing_below_the_floor_and_every_alert() -> None:
    events = labelled_events(evaluation_config(3_000, 0.1, 5, 10))
    all_of_them = detector().score(events, 0.0)
    assert len(all_of_them) == sum(1 for e in events if isinstance(e.data, ChargeCreated))
    alerts = detector().score(events, FraudThresholds().alert_score)
    assert alerts == [a for a in all_of_them if a.alert]
    assert detector().score(events, 1.01) == []


def test_a_forgotten_payer_comes_back_with_no_history() -> None:
    """The cap forgets the least recently seen payer at once, charge by charge."""
    first = created(1, NOON, "123.45", payer=A)
    others = [created(2, NOON + timedelta(seconds=1), payer=B)]
    others.append(created(3, NOON + timedelta(seconds=2), payer=C))
    again = created(4, NOON + timedelta(seconds=30), "123.45", payer=A)
    roomy = detector(max_payers=3)
    assert roomy.score([first, *others, again], 0.0)[-1].kind == DUPLICATE_CHARGE
    tight = detector(max_payers=2)  # C's charge pushes A out before A comes back
    result = tight.score([first, *others, again], 0.0)[-1]
    assert not result.hits and tight.forgotten_payers == 2  # A, then B when A came back
    refreshed = detector(max_payers=2)  # B's charge again: A is the least recently seen
    events = [first, others[0], created(5, NOON + timedelta(seconds=3), payer=A), others[1]]
    refreshed.score(events, 0.0)
    assert refreshed.score([again], 0.0)[-1].kind == DUPLICATE_CHARGE


def test_quiet_payers_are_dropped_after_every_window() -> None:
    d = detector()
    d.score([created(1, NOON, payer=A), created(2, NOON + timedelta(minutes=1), payer=B)], 0.0)
    assert d.sizes["payers"] == 2
    at = NOON + timedelta(minutes=60, seconds=30)
    d.score([created(3, at, payer=C)], 0.0)  # A: quiet for more than 1 h
    assert d.sizes == {"stores": 1, "payers": 2, "recent_charges": 2}
    d.score([failed(2, NOON + timedelta(minutes=2))], 0.0)  # a refusal keeps B a while longer
    d.score([created(4, NOON + timedelta(minutes=61, seconds=30), payer=A)], 0.0)
    assert d.sizes["payers"] == 3  # A again (no history), B still there
    d.score([created(5, NOON + timedelta(minutes=64), payer=A)], 0.0)
    assert d.sizes["payers"] == 2  # B's refusal is older than the horizon now


def test_refusals_count_against_their_payer_and_unknown_ones_are_ignored() -> None:
    d = detector(fail_count=2)
    attempts = [created(i, NOON + timedelta(minutes=i), "80.00", payer=A) for i in range(2)]
    d.score(attempts, 0.0)
    d.score([failed(0, NOON + timedelta(seconds=5)), failed(99, NOON + timedelta(seconds=6))], 0.0)
    assert not d.score([created(9, NOON + timedelta(minutes=3), "81.00", payer=A)], 0.0)[0].hits
    d.score([failed(1, NOON + timedelta(minutes=1, seconds=5))], 0.0)
    result = d.score([created(10, NOON + timedelta(minutes=4), "82.00", payer=A)], 0.0)[0]
    assert result.reasons == [
        "2 cobranças recusadas do mesmo pagador em 3 min 55 s antes desta nova tentativa"
    ]
    assert result.covered == ("ch_000000", "ch_000001")
    snapshot = d.snapshot()
    restored = detector(fail_count=2)
    restored.restore(snapshot)
    assert restored.snapshot() == snapshot


@pytest.mark.parametrize("log_amount", [-1.0, 3.0, 3.9, 5.0, 8.0])
def test_the_inline_profile_arithmetic_is_the_models(log_amount: float) -> None:
    """The detector's inline copy of the store profile gives ``StoreProfile``'s floats."""
    d = detector(min_history=30)
    reference = StoreProfile()
    events = []
    for i in range(120):
        amount = Decimal(f"{20 + (i * 13) % 47}.{i % 100:02d}")
        at = NOON + timedelta(minutes=i)
        events.append(created(i, at, str(amount)))
        cents = int(amount * 100)
        hour = (at - timedelta(hours=3)).hour
        expected_learned = 0.0
        if reference.n >= 30:
            z = reference.amount_z(math.log(cents / 100))
            expected_learned = learned_score(z, reference.hour_rarity(hour))
        got = d.score([events[-1]], 0.0)[0]
        assert got.learned == expected_learned
        reference.learn(math.log(cents / 100), hour)
    profile = d._stores["LJ-0001"].profile
    assert profile.dump() == reference.dump()
    assert profile.amount_z(log_amount) == reference.amount_z(log_amount)


@pytest.mark.parametrize("document", [A, "12345678000195", None])
def test_the_processor_hashes_payers_like_the_payments_table(document: str | None) -> None:

    for key in (b"k" * 32, b"another key", b""):
        derived = hashlib.blake2b(key, digest_size=32).digest()
        stored = (  # the payments table's payer_hash since its first release
            None
            if document is None
            else hashlib.blake2b(document.encode(), key=derived, digest_size=16).hexdigest()
        )
        assert payer_hasher(key)(document) == stored
        assert PaymentsProcessor(key).payer_hash(document) == stored


def test_the_processor_scores_in_event_time_order_and_keeps_what_it_writes() -> None:
    events = labelled_events(evaluation_config(3_000, 0.08, 9, 12))
    thresholds = FraudThresholds()
    reference = Detector(thresholds, PaymentsProcessor(b"k" * 32).payer_hash)
    in_order = sorted(events, key=lambda e: e.occurred_at)
    expected = [a for a in map(reference.observe, in_order) if a is not None]
    processor = FraudProcessor(thresholds, b"k" * 32)
    got = processor.score(list(reversed(events)))  # any order in: event-time order inside
    assert got == [a for a in expected if a.risk >= thresholds.record_score]
    assert processor.snapshot() == reference.snapshot()
