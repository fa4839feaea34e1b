"""Event-time windows through the real pipeline (local bus), on DuckDB and PostgreSQL: the
stored windows equal a one-event-at-a-time recomputation, late and skewed events are kept,
duplicates and restarts change nothing."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pulso.bus import open_bus
from pulso.bus.local import partition_of
from pulso.bus.protocol import Bus
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.pipeline.factory import build_runner, window_config
from pulso.pipeline.processors.windows import at_us, to_us
from pulso.pipeline.runner import DEFAULT_GROUP
from pulso.pipeline.windows import brute_force
from pulso.store import open_store
from pulso.store.protocol import Store

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
PARTITIONS = 4
STORES = [f"LJ-{i:04d}" for i in range(6)]
CITY = {s: ("Recife", "PE") if i % 2 else ("Curitiba", "PR") for i, s in enumerate(STORES)}


@pytest.fixture(
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("postgresql", id="postgres", marks=pytest.mark.postgres),
    ]
)
def env(request: pytest.FixtureRequest, settings_factory: Any) -> Iterator[Any]:
    overrides: dict[str, Any] = {
        "batch_size": 97,
        "batch_timeout_ms": 50,
        "kafka_partitions": PARTITIONS,
        "window_out_of_orderness_s": 5,
        "window_allowed_lateness_s": 60,
        "window_max_future_s": 300,
    }
    if request.param == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    settings = settings_factory(**overrides)
    bus, store = open_bus(settings), open_store(settings)
    yield settings, bus, store
    store.close()
    bus.close()


def created(i: int, at: datetime, cents: int, store: str) -> ChargeCreated:
    city, uf = CITY[store]
    return ChargeCreated(
        charge_id=f"ch_{i:05d}",
        txid=f"T{i}",
        store_id=store,
        city=city,
        uf=uf,
        amount=Decimal(cents) / 100,
        created_at=at,
        expires_at=at + timedelta(minutes=30),
        payment_type="pix_static" if i % 3 == 0 else "pix_dynamic",
    )


def stream(seed: int, n: int) -> list[ChargeCreated]:
    """Out of order, some late (within and beyond the lateness), one stamped a year ahead, and
    one store that stops selling half way."""
    rng = random.Random(seed)
    charges: list[ChargeCreated] = []
    clock = T0
    for i in range(n):
        clock += timedelta(milliseconds=rng.randrange(0, 900))
        at = clock - timedelta(milliseconds=rng.randrange(0, 7000))
        if rng.random() < 0.03:
            at = clock - timedelta(seconds=rng.randrange(60, 200))
        store = rng.choice(STORES if i < n // 3 else STORES[1:])  # LJ-0000 disappears
        charges.append(created(i, at, rng.randrange(1, 300_000), store))
    charges.append(created(n, datetime.now(UTC) + timedelta(days=365), 777, STORES[1]))
    return charges


def records(charges: list[ChargeCreated]) -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = []
    for c in charges:
        key = c.charge_id.encode()
        event = new_event(c, source="t", key=c.charge_id, occurred_at=c.created_at)
        out.append((key, encode_event(event)))
        if int(c.charge_id[3:]) % 4 == 0:  # terminal events ride along, not windowed
            paid = ChargeConfirmed(
                charge_id=c.charge_id, confirmed_at=c.created_at, amount_paid=c.amount
            )
            event = new_event(paid, source="t", key=c.charge_id, occurred_at=c.created_at)
            out.append((key, encode_event(event)))
    return out


def drain(settings: Any, bus: Bus, store: Store, expected: int, group: str = DEFAULT_GROUP) -> Any:
    runner = build_runner(settings, bus, store, group=group)
    deadline = time.monotonic() + 60
    try:
        return runner.run(stop=lambda s: s.messages >= expected or time.monotonic() > deadline)
    finally:
        runner.close()


def stored_windows(store: Store) -> list[tuple[Any, ...]]:
    rows = store.query(
        "SELECT kind, dimension, key, window_start, window_end, events, amount_cents, "
        "mean_cents, max_cents, final FROM stream_windows ORDER BY 1, 2, 3, 4"
    )
    return [
        (*r[:4], r[4], int(r[5]), int(r[6]), Decimal(r[7]), int(r[8]), bool(r[9])) for r in rows
    ]


def late_events(store: Store) -> list[tuple[str, str]]:
    rows = store.query("SELECT charge_id, reason FROM stream_late_events ORDER BY 1")
    return [(str(a), str(b)) for a, b in rows]


def recomputed(settings: Any, charges: list[ChargeCreated]) -> tuple[list[Any], list[Any]]:
    partitions = [
        f"{Topic.PAYMENTS}:{partition_of(c.charge_id.encode(), PARTITIONS)}" for c in charges
    ]
    rows, late, future = brute_force(
        [to_us(c.created_at) for c in charges],
        [int(c.amount * 100) for c in charges],
        partitions,
        [
            [c.store_id for c in charges],
            [f"{c.city}/{c.uf}" for c in charges],
            [c.payment_type for c in charges],
        ],
        window_config(settings),
        to_us(datetime.now(UTC)),
    )
    windows = sorted(
        (
            r.kind,
            r.dimension,
            r.key,
            at_us(r.start_us),
            at_us(r.end_us),
            r.events,
            r.amount_cents,
            r.mean_cents,
            r.max_cents,
            r.final,
        )
        for r in rows
    )
    kept = sorted(
        [(charges[i].charge_id, "late_event") for i in late]
        + [(charges[i].charge_id, "future_event") for i in future]
    )
    return windows, kept


def test_stored_windows_equal_a_recomputation_and_nothing_is_dropped(env: Any) -> None:
    settings, bus, store = env
    charges = stream(1, 2000)
    values = records(charges)
    bus.publish(Topic.PAYMENTS, values)
    drain(settings, bus, store, len(values))

    want_windows, want_kept = recomputed(settings, charges)
    got = stored_windows(store)
    assert got == want_windows
    assert late_events(store) == want_kept
    assert {r for _, r in want_kept} == {"late_event", "future_event"}
    # every payment is in the tumbling store windows or kept aside
    [(windowed,)] = store.query(
        "SELECT sum(events) FROM stream_windows WHERE kind = 'tumbling_1m' AND dimension = 'store'"
    )
    # the last minutes stay open (no later event moves the watermark past them)
    assert 0.9 * len(charges) < int(windowed) + len(want_kept) <= len(charges)
    gone = [r for r in got if r[2] == "LJ-0000"]
    assert gone and all(r[9] for r in gone)  # the store that disappeared: windows final
    [(mean,)] = store.query(
        "SELECT mean_cents FROM stream_windows WHERE events > 1 ORDER BY window_start LIMIT 1"
    )
    assert isinstance(mean, Decimal)


def test_duplicates_and_restarts_change_nothing(env: Any) -> None:
    settings, bus, store = env
    charges = stream(2, 900)
    values = records(charges)
    half = len(values) // 2
    bus.publish(Topic.PAYMENTS, values[:half])
    drain(settings, bus, store, half)  # a first process, its state checkpointed
    bus.publish(Topic.PAYMENTS, values[half:] + values[:100])  # ...and a producer's re-send
    stats = drain(settings, bus, store, len(values) - half + 100)  # a second one, restored
    assert stats.messages == len(values) - half + 100

    want_windows, want_kept = recomputed(settings, charges)
    assert stored_windows(store) == want_windows
    assert late_events(store) == want_kept


def test_resends_old_and_recent_in_one_run_change_nothing(
    env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The runner prepares a batch before the previous one commits, guessing which events are
    stored already from the last batches' ids: recent re-sends are guessed, older ones make
    the batch roll back and be written again the exact way; either way, nothing twice."""
    settings, bus, store = env
    charges = stream(4, 1500)
    values = records(charges)
    bus.publish(Topic.PAYMENTS, values)
    resent = values[:120] + values[-40:]  # long gone from the runner's memory, and recent
    bus.publish(Topic.PAYMENTS, resent)
    with caplog.at_level("INFO", logger="pulso.pipeline.runner"):
        stats = drain(settings, bus, store, len(values) + len(resent))
    assert stats.messages == len(values) + len(resent)
    assert stats.duplicates == len(resent)
    assert any("written the exact way" in r.getMessage() for r in caplog.records)

    want_windows, want_kept = recomputed(settings, charges)
    assert stored_windows(store) == want_windows
    assert late_events(store) == want_kept


def test_a_batch_stored_but_not_committed_is_skipped_on_restart(env: Any) -> None:
    settings, bus, store = env
    charges = stream(3, 600)
    values = records(charges)
    bus.publish(Topic.PAYMENTS, values)
    runner = build_runner(settings, bus, store)
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    while len(messages) < 150 and time.monotonic() < deadline:
        messages += runner._consumer.poll_batch(150 - len(messages), 1.0)
    runner._write(runner._prepare(messages))  # stored; the process "dies" before the commit
    runner.close()

    stats = drain(settings, bus, store, len(values))
    assert stats.skipped == 150
    want_windows, want_kept = recomputed(settings, charges)
    assert stored_windows(store) == want_windows
    assert late_events(store) == want_kept


def test_windows_can_be_switched_off(env: Any) -> None:
    settings, bus, store = env
    settings = settings.model_copy(update={"window_enabled": False})
    values = records(stream(4, 50))
    bus.publish(Topic.PAYMENTS, values)
    drain(settings, bus, store, len(values))
    assert store.query("SELECT count(*) FROM stream_windows") == [(0,)]
    [(payments,)] = store.query("SELECT count(*) FROM payments")
    assert payments == 51
