"""The fraud detector: each rule fires with its pt-BR reason, stays quiet on normal traffic,
combines into one risk, and resumes from a snapshot exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fraud_helpers import NOON, detector
from fraud_helpers import created as charge_created

from pulso.domain.events import Event, new_event
from pulso.domain.fraud import (
    AMOUNT_SPIKE,
    CARD_TESTING,
    DUPLICATE_CHARGE,
    FAIL_THEN_SUCCESS,
    IMPOSSIBLE_TRAVEL,
    NIGHT_HIGH_VALUE,
    VELOCITY,
)
from pulso.domain.payments import ChargeCreated, ChargeFailed
from pulso.domain.validators import complete_cpf
from pulso.fraud import FraudConfigError
from pulso.fraud.detector import Assessment, Detector, RuleHit, combine, distance_km
from pulso.fraud.evaluate import evaluation_config, labelled_events
from pulso.fraud.thresholds import FraudThresholds, parse_overrides, thresholds_from_settings

PAYER = complete_cpf("123456789")
OTHER = complete_cpf("987654321")
_counter = iter(range(1_000_000))


def created(at: datetime, amount: str = "50.00", **where: Any) -> Event:
    """A new charge (``store``, ``payer``, ``city``, ``uf`` as in ``fraud_helpers.created``)."""
    return charge_created(next(_counter), at, amount, **where)


def failed(charge: Event, at: datetime) -> Event:
    payload = ChargeFailed(charge_id=charge.key, failed_at=at, reason="saldo insuficiente")
    return new_event(payload, source="test", key=charge.key, occurred_at=at)


def assess(d: Detector, event: Event) -> Assessment:
    result = d.observe(event)
    assert result is not None
    return result


def warm_up(d: Detector, store: str = "LJ-0001", n: int = 60, start: datetime = NOON) -> None:
    """Teach the store an ordinary ticket around R$ 50 at midday."""
    for i in range(n):
        amount = f"{40 + (i * 7) % 21}.00"
        assess(d, created(start - timedelta(minutes=n - i), amount, store=store))


def test_card_testing_fires_with_its_reason_and_covers_the_burst() -> None:
    d = detector(card_testing_count=5)
    burst = [created(NOON + timedelta(seconds=5 * i), "0.50") for i in range(5)]
    results = [assess(d, e) for e in burst]
    assert [r.alert for r in results] == [False] * 4 + [True]
    last = results[-1]
    assert last.kind == CARD_TESTING
    assert last.reasons == ["5 cobranças abaixo de R$ 2,00 em 60 s na loja LJ-0001"]
    assert set(last.covered) == {e.key for e in burst[:4]}  # the earlier ones are flagged too


def test_small_charges_spread_out_are_not_card_testing() -> None:
    d = detector(card_testing_count=5)
    results = [assess(d, created(NOON + timedelta(seconds=30 * i), "0.50")) for i in range(10)]
    assert not any(r.hits for r in results)


def test_velocity_names_the_stores_and_covers_the_tour() -> None:
    d = detector()
    tour = [
        created(NOON + timedelta(minutes=i), store=f"LJ-{i:04d}", payer=PAYER) for i in range(4)
    ]
    results = [assess(d, e) for e in tour]
    assert results[-1].kind == VELOCITY
    assert results[-1].reasons == ["mesmo pagador em 4 lojas diferentes em 3 min 00 s"]
    assert set(results[-1].covered) == {e.key for e in tour[:3]}
    assert not any(r.hits for r in results[:3])


def test_amount_spike_needs_history_then_fires() -> None:
    d = detector()
    assert not assess(d, created(NOON, "9000.00", store="LJ-0009")).hits  # no baseline yet
    warm_up(d)
    result = assess(d, created(NOON, "9000.00"))
    assert result.kind == AMOUNT_SPIKE and result.alert
    assert (
        "R$ 9.000,00 é" in result.reasons[0]
        and "o valor típico da loja LJ-0001" in (result.reasons[0])
    )


def test_impossible_travel_between_far_cities() -> None:
    d = detector()
    assess(d, created(NOON, payer=PAYER, city="Porto Alegre", uf="RS"))
    result = assess(d, created(NOON + timedelta(minutes=20), payer=PAYER, city="Manaus", uf="AM"))
    assert result.kind == IMPOSSIBLE_TRAVEL and result.alert
    assert result.reasons[0].startswith(
        "pagador em Porto Alegre/RS e 20 min 00 s depois em Manaus/AM"
    )
    assert "km/h" in result.reasons[0]


def test_impossible_travel_seen_out_of_order_tells_the_real_order_and_speed() -> None:
    """The later charge arrives first (another partition): same distance, same speed."""
    d = detector()
    later = created(NOON + timedelta(minutes=20), "80.00", payer=PAYER, city="Manaus", uf="AM")
    assess(d, later)
    result = assess(d, created(NOON, payer=PAYER, city="Porto Alegre", uf="RS"))
    assert result.kind == IMPOSSIBLE_TRAVEL and result.alert
    in_order = detector()
    assess(in_order, created(NOON, payer=PAYER, city="Porto Alegre", uf="RS"))
    expected = assess(
        in_order,
        created(NOON + timedelta(minutes=20), "80.00", payer=PAYER, city="Manaus", uf="AM"),
    )
    assert result.reasons == expected.reasons
    assert result.reasons[0].startswith(
        "pagador em Porto Alegre/RS e 20 min 00 s depois em Manaus/AM"
    )


def test_travel_seen_out_of_order_beyond_the_window_is_ignored() -> None:
    d = detector()
    assess(d, created(NOON + timedelta(hours=2), "80.00", payer=PAYER, city="Manaus", uf="AM"))
    assert not assess(d, created(NOON, payer=PAYER, city="Porto Alegre", uf="RS")).hits


def test_a_late_charge_is_no_duplicate_of_one_long_after_it() -> None:
    d = detector()
    assess(d, created(NOON + timedelta(hours=2), payer=PAYER))
    assert not assess(d, created(NOON, payer=PAYER)).hits
    again = assess(d, created(NOON + timedelta(hours=2, minutes=-1), payer=PAYER))
    assert again.kind == DUPLICATE_CHARGE  # 1 min before the other one: a duplicate


def test_travel_at_a_possible_speed_is_fine() -> None:
    d = detector()
    assess(d, created(NOON, payer=PAYER, city="São Paulo", uf="SP"))
    later = NOON + timedelta(hours=1, minutes=50)  # ~360 km to Rio: a car could almost, a plane can
    assert not assess(d, created(later, payer=PAYER, city="Rio de Janeiro", uf="RJ")).hits


def test_night_high_value_alone_is_weak_but_alerts_at_a_store_closed_at_night() -> None:
    d = detector()
    warm_up(d, n=200)  # the store sells only around midday
    three_am = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # 03:00 in São Paulo
    result = assess(d, created(three_am, "1500.00"))
    assert NIGHT_HIGH_VALUE in {h.rule for h in result.hits}
    assert result.kind == NIGHT_HIGH_VALUE and result.alert
    assert "R$ 1.500,00 às 03:00 (madrugada) na loja LJ-0001" in result.reasons
    fresh = assess(detector(), created(three_am, "1500.00", store="LJ-0077"))
    assert fresh.hits and not fresh.alert  # no profile yet: the rule alone stays below 0.7


def test_fail_then_success_counts_the_payers_failures() -> None:
    d = detector()
    attempts = [created(NOON + timedelta(minutes=i), "80.00", payer=PAYER) for i in range(3)]
    for i, attempt in enumerate(attempts):
        assert not assess(d, attempt).hits  # a retry after a refusal is not a duplicate
        d.observe(failed(attempt, NOON + timedelta(minutes=i, seconds=5)))
    result = assess(d, created(NOON + timedelta(minutes=4), "80.00", payer=PAYER))
    assert result.kind == FAIL_THEN_SUCCESS and result.alert
    assert result.reasons == [
        "3 cobranças recusadas do mesmo pagador em 3 min 55 s antes desta nova tentativa"
    ]
    assert set(result.covered) == {a.key for a in attempts}


def test_a_refusal_notified_twice_counts_once() -> None:
    """Two ``ChargeFailed`` events for one charge (a PSP repeating its notice, each with an
    event id of its own) are one refusal: two refused charges do not reach the threshold."""
    d = detector()
    attempts = [created(NOON + timedelta(minutes=i), "80.00", payer=PAYER) for i in range(2)]
    for i, attempt in enumerate(attempts):
        assess(d, attempt)
        for second in (5, 6, 7):
            d.observe(failed(attempt, NOON + timedelta(minutes=i, seconds=second)))
    result = assess(d, created(NOON + timedelta(minutes=4), "80.00", payer=PAYER))
    assert result.kind != FAIL_THEN_SUCCESS and not result.alert


def test_duplicate_charge() -> None:
    d = detector()
    assess(d, created(NOON, "123.45", payer=PAYER))
    result = assess(d, created(NOON + timedelta(seconds=42), "123.45", payer=PAYER))
    assert result.kind == DUPLICATE_CHARGE and result.alert
    assert result.reasons == [
        "mesmo pagador, mesma loja (LJ-0001) e mesmo valor (R$ 123,45) "
        "de uma cobrança de 42 s atrás"
    ]
    other = assess(d, created(NOON + timedelta(seconds=50), "123.45", payer=OTHER))
    assert not other.hits


def test_normal_traffic_raises_almost_no_alerts() -> None:
    events = labelled_events(evaluation_config(20_000, 0.0, 3, 60))
    d = detector()
    alerts = [a for a in map(d.observe, events) if a is not None and a.alert]
    assert len(alerts) <= 2  # fewer than 1 per 10,000


def test_combine_adds_rules_and_the_learned_score() -> None:
    spike = RuleHit(AMOUNT_SPIKE, "x")
    night = RuleHit(NIGHT_HIGH_VALUE, "y")
    assert combine(0.0, (), 0.6) == 0.0
    assert combine(1.0, (), 0.6) == pytest.approx(0.6)
    assert combine(0.0, (night,), 0.6) == pytest.approx(0.5)
    assert combine(0.5, (night,), 0.6) == pytest.approx(1 - 0.5 * 0.7)
    assert combine(0.0, (spike, night), 0.6) == pytest.approx(1 - 0.2 * 0.5)
    assert 0.0 <= combine(1.0, (spike, night), 1.0) <= 1.0


def test_snapshot_and_restore_give_identical_results() -> None:
    events = labelled_events(evaluation_config(6_000, 0.05, 11, 30))
    whole = detector()
    expected = [whole.observe(e) for e in events]
    first, second = detector(), detector()
    half = len(events) // 2
    got = [first.observe(e) for e in events[:half]]
    blob = first.snapshot()
    second.restore(blob)
    assert second.snapshot() == blob
    got += [second.observe(e) for e in events[half:]]
    assert got == expected
    assert second.snapshot() == whole.snapshot()
    assert any(a is not None and a.alert for a in got[half:])


def test_restore_none_is_a_fresh_start() -> None:
    d = detector()
    assess(d, created(NOON, payer=PAYER))
    d.restore(None)
    assert d.sizes == {"stores": 0, "payers": 0, "recent_charges": 0}


def test_payers_are_bounded() -> None:
    d = detector(max_payers=10)
    for i in range(25):
        assess(d, created(NOON + timedelta(seconds=i), payer=complete_cpf(f"{i + 1:09d}")))
    assert d.sizes["payers"] == 10 and d.forgotten_payers == 15


def test_the_label_is_never_read() -> None:
    event = created(NOON, payer=PAYER)
    labelled = new_event(
        ChargeCreated(**{**_fields(event.data), "label": CARD_TESTING}),
        source="test",
        key=event.key,
        occurred_at=NOON,
    )
    assert assess(detector(), event).risk == assess(detector(), labelled).risk


def _fields(payload: Any) -> dict[str, Any]:
    return {f: getattr(payload, f) for f in payload.__struct_fields__}


def test_distance_km() -> None:
    assert distance_km(-23.5505, -46.6333, -22.9068, -43.1729) == pytest.approx(361, abs=5)


def test_unknown_or_bad_thresholds_are_refused_by_name() -> None:
    base = FraudThresholds()
    with pytest.raises(FraudConfigError, match="unknown threshold; known ones: card_testing"):
        base.replace({"card_testing_limit": "3"})
    with pytest.raises(FraudConfigError, match="card_testing_count: expected a whole number"):
        base.replace({"card_testing_count": "many"})
    with pytest.raises(FraudConfigError, match=r"alert_score: must be 0\.\.1"):
        base.replace({"alert_score": "1.5"})
    with pytest.raises(FraudConfigError, match="expected NAME=VALUE"):
        parse_overrides(["card_testing_count"])
    assert base.replace({"card_testing_max_amount": "1,50"}).card_testing_max_amount == Decimal(
        "1.50"
    )


def test_thresholds_come_from_the_settings(settings_factory: Any) -> None:
    settings = settings_factory(fraud_card_testing_count=12, fraud_night_min_amount="2500.00")
    thresholds = thresholds_from_settings(settings)
    assert thresholds.card_testing_count == 12
    assert thresholds.night_min_amount == Decimal("2500.00")


def test_bad_threshold_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulso.config import load_settings
    from pulso.errors import PulsoError

    monkeypatch.setenv("PULSO_FRAUD_ALERT_SCORE", "2")
    with pytest.raises(PulsoError, match="PULSO_FRAUD_ALERT_SCORE"):
        load_settings()


@pytest.mark.parametrize("max_payers", [50, 100_000])
def test_restarts_at_several_points_match_one_uninterrupted_run(max_payers: int) -> None:
    events = labelled_events(evaluation_config(5_000, 0.08, 13, 25))
    whole = detector(max_payers=max_payers)
    expected = [whole.observe(e) for e in events]
    got: list[Assessment | None] = []
    current = detector(max_payers=max_payers)
    for start in range(0, len(events), 1_237):  # a restart every 1,237 events
        got += [current.observe(e) for e in events[start : start + 1_237]]
        current.snapshot()  # the runner snapshots every batch, restarted or not
        if start % 2 == 0:
            restarted = detector(max_payers=max_payers)
            restarted.restore(current.snapshot())
            current = restarted
    assert got == expected
    assert current.snapshot() == whole.snapshot()
