"""The pipeline end to end on the real local bus and both real stores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeFailed
from pulso.pipeline.deadletter import count_by_reason, list_dead_letters, replay_dead_letters
from pulso.pipeline.factory import build_runner
from pulso.pipeline.runner import DEFAULT_GROUP
from pulso.store import open_store
from pulso.store.protocol import Store

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


PROFILES = [
    pytest.param(("local", "duckdb"), id="embedded"),
    pytest.param(("local", "postgresql"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(
        ("kafka", "postgresql"), id="cluster", marks=[pytest.mark.postgres, pytest.mark.kafka]
    ),
]


@pytest.fixture(params=PROFILES)
def env(request: pytest.FixtureRequest, tmp_path: Path, settings_factory: Any) -> Iterator[Any]:
    bus_kind, store_kind = request.param
    overrides: dict[str, Any] = {"batch_size": 50, "batch_timeout_ms": 50}
    if store_kind == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    if bus_kind == "kafka":
        overrides["bus_url"] = f"kafka://{request.getfixturevalue('kafka_cluster')}"
        overrides["kafka_session_timeout_s"] = 3  # the mock cluster waits this long per rebalance
    settings = settings_factory(**overrides)
    bus = open_bus(settings)
    store = open_store(settings)
    yield settings, bus, store
    store.close()
    bus.close()


def charge(i: int, *, confirm: bool = True, fail: bool = False) -> list[bytes]:
    created_at = T0 + timedelta(seconds=37 * i)
    cid = f"ch_{i:04d}"
    payload = ChargeCreated(
        charge_id=cid,
        txid=f"TX{i:04d}",
        store_id=f"LJ-{i % 3:04d}",
        city="Recife",
        uf="PE",
        amount=Decimal("10.05") + i,
        created_at=created_at,
        expires_at=created_at + timedelta(minutes=30),
        payer_document="52998224725",
    )
    events = [new_event(payload, source="test", key=cid, occurred_at=created_at)]
    at = created_at + timedelta(seconds=20)
    if confirm:
        paid = ChargeConfirmed(charge_id=cid, confirmed_at=at, amount_paid=payload.amount)
        events.append(new_event(paid, source="test", key=cid, occurred_at=at))
    elif fail:
        events.append(
            new_event(
                ChargeFailed(charge_id=cid, failed_at=at, reason="recusado"),
                source="test",
                key=cid,
                occurred_at=at,
            )
        )
    return [encode_event(e) for e in events]


BAD = [
    b"{oops",
    b'{"event_id":"x"}',
    charge(9999)[0].replace(b"52998224725", b"52998224724"),
    charge(9998)[0].replace(b'"10.05"', b'"-3.00"').replace(b"10008.05", b"-3.00"),
    charge(9997)[0].replace(b"pix.charge.created", b"pix.charge.vanished"),
]


def publish(bus: Bus, values: list[bytes]) -> None:
    # No keys: records spread round-robin, so a charge's events may arrive out of order,
    # which the processor must absorb.
    bus.publish(Topic.PAYMENTS, [(None, v) for v in values])


def drain(settings: Any, bus: Bus, store: Store, expected: int, group: str = DEFAULT_GROUP) -> Any:
    """Run until ``expected`` messages were read (a Kafka group's first polls can be empty while
    it joins), giving up after a minute."""
    runner = build_runner(settings, bus, store, group=group)
    deadline = time.monotonic() + 60
    try:
        return runner.run(stop=lambda s: s.messages >= expected or time.monotonic() > deadline)
    finally:
        runner.close()


def totals(store: Store) -> tuple[Any, ...]:
    [row] = store.query(
        "SELECT count(*), count(*) FILTER (WHERE status = 'confirmed'), sum(amount_cents), "
        "sum(paid_cents), sum(confirmation_seconds) FROM payments"
    )
    [minutes] = store.query(
        "SELECT sum(charges), sum(confirmed), sum(confirmed_cents) FROM payment_minutes"
    )
    [(raw,)] = store.query("SELECT count(*) FROM raw_events")
    return (*row, *minutes, raw)


def test_good_events_land_bad_ones_are_dead_lettered(env: Any) -> None:
    settings, bus, store = env
    good = [v for i in range(120) for v in charge(i, confirm=i % 4 != 0, fail=i % 8 == 0)]
    publish(bus, good[:100] + BAD + good[100:])
    stats = drain(settings, bus, store, len(good) + len(BAD))

    assert stats.messages == len(good) + len(BAD)
    charges, confirmed, amount, paid, seconds, m_charges, m_confirmed, m_paid, raw = totals(store)
    assert charges == 120 and confirmed == 90
    assert amount == sum(1005 + 100 * i for i in range(120))
    assert seconds == pytest.approx(90 * 20.0)
    assert (m_charges, m_confirmed, m_paid) == (charges, confirmed, paid)
    assert raw == len(good)
    assert count_by_reason(store) == {
        "bad_json": 1,
        "bad_envelope": 1,
        "invalid_cpf": 1,
        "invalid_amount": 1,
        "unknown_type": 1,
    }
    [entry] = list_dead_letters(store, reason="invalid_cpf")
    assert entry.payload == BAD[2] and entry.topic == Topic.PAYMENTS


def test_replays_and_duplicates_change_nothing(env: Any) -> None:
    settings, bus, store = env
    values = [v for i in range(60) for v in charge(i)]
    publish(bus, values)
    drain(settings, bus, store, len(values))
    before = totals(store)

    publish(bus, values + values[:10])  # a producer retry re-sends everything
    stats = drain(settings, bus, store, len(values) + 10)
    assert stats.new_events == 0 and stats.duplicates == len(values) + 10
    assert totals(store) == before

    stats = drain(settings, bus, store, 2 * len(values) + 10, group="replayer")  # all again
    assert stats.messages == 2 * len(values) + 10
    assert totals(store) == before


def test_uncommitted_batch_is_read_again_without_double_counting(env: Any) -> None:
    settings, bus, store = env
    publish(bus, [v for i in range(40) for v in charge(i)])
    runner = build_runner(settings, bus, store)
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    while not messages and time.monotonic() < deadline:
        messages = runner._consumer.poll_batch(30, 1.0)
    runner._write(runner._prepare(messages))  # stored, but the process "dies" before commit
    runner.close()

    drain(settings, bus, store, 80)
    charges, confirmed, *_ = totals(store)
    assert (charges, confirmed) == (40, 40)
    [(m_charges,)] = store.query("SELECT sum(charges) FROM payment_minutes")
    assert m_charges == 40


def test_dead_letters_can_be_replayed(env: Any) -> None:
    settings, bus, store = env
    publish(bus, [BAD[0]])
    drain(settings, bus, store, 1)
    [entry] = list_dead_letters(store)
    assert replay_dead_letters(store, bus, entry_ids=[entry.id], reason=None) == [entry.id]
    drain(settings, bus, store, 1)
    entries = list_dead_letters(store)
    assert len(entries) == 2  # read again, still bad: a second entry, the first marked replayed
    assert [e.replayed_at is not None for e in entries if e.id == entry.id] == [True]


def test_a_batch_completes_old_and_unknown_charges(env: Any) -> None:
    """Terminal events of charges created in an earlier batch: recent ones are looked for
    among the recent rows (``STORED_LOOKBACK``), an older one and one never created make the
    batch read the whole table; every charge ends with its confirmation time and minutes."""
    from pulso.pipeline.processors.payments import STORED_LOOKBACK

    settings, bus, store = env
    old, recent = charge(1, confirm=False), charge(2, confirm=False)
    publish(bus, old + recent)
    drain(settings, bus, store, 2)
    late = T0 + STORED_LOOKBACK + timedelta(hours=1)  # charge 1 confirmed days later

    def confirmed(cid: str, at: datetime, amount: str) -> bytes:
        paid = ChargeConfirmed(charge_id=cid, confirmed_at=at, amount_paid=Decimal(amount))
        return encode_event(new_event(paid, source="test", key=cid, occurred_at=at))

    publish(bus, [confirmed("ch_0002", T0 + timedelta(seconds=74 + 20), "12.05")])
    drain(settings, bus, store, 1)
    publish(bus, [confirmed("ch_0001", late, "11.05")])  # a batch of its own: bound by `late`
    drain(settings, bus, store, 1)
    publish(bus, [confirmed("ch_9000", late, "5.00")])  # its creation never came
    drain(settings, bus, store, 1)
    rows = {
        cid: (status, seconds)
        for cid, status, seconds in store.query(
            "SELECT charge_id, status, confirmation_seconds FROM payments"
        )
    }
    assert rows["ch_0002"] == ("confirmed", 20.0)
    assert rows["ch_0001"] == ("confirmed", (late - (T0 + timedelta(seconds=37))).total_seconds())
    assert rows["ch_9000"] == ("confirmed", None)
    [(charges, confirmed_count, seconds)] = store.query(
        "SELECT sum(charges), sum(confirmed), sum(confirmation_seconds_sum) FROM payment_minutes"
    )
    assert (int(charges), int(confirmed_count)) == (2, 2)
    assert float(seconds) == 20.0 + (late - (T0 + timedelta(seconds=37))).total_seconds()


def test_recent_charges_are_completed_without_reading_the_whole_table(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common case takes the bounded statements only (the whole-table ones would fail)."""
    from pulso.pipeline.processors import payments

    settings, bus, store = env
    publish(bus, [v for i in range(30) for v in charge(i, confirm=False)])
    drain(settings, bus, store, 30)
    monkeypatch.setattr(payments, "_CREATED_BOUNDS_SQL", "SELECT no_such_column %s")
    monkeypatch.setattr(payments, "_CONFIRMATION_SQL", "SELECT no_such_column %s")
    publish(bus, [charge(i)[1] for i in range(30)])  # the confirmations alone
    drain(settings, bus, store, 30)
    [(n, seconds)] = store.query(
        "SELECT count(*), sum(confirmation_seconds) FROM payments WHERE status = 'confirmed'"
    )
    assert (n, float(seconds)) == (30, 600.0)
    [(confirmed,)] = store.query("SELECT sum(confirmed) FROM payment_minutes")
    assert int(confirmed) == 30
