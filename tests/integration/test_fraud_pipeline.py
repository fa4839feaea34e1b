"""The fraud processor in the pipeline, on the real local bus and both real stores: alerts and
risk rows land in the batch's transaction, and a restart from the checkpoint gives the same
alerts as one uninterrupted run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.domain.events import Event, Topic, encode_event
from pulso.domain.payments import ChargeCreated
from pulso.fraud.thresholds import FraudThresholds
from pulso.pipeline.factory import build_runner
from pulso.pipeline.processors.fraud import FraudProcessor
from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream
from pulso.store import open_store
from pulso.store.protocol import Store

MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

STORES = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
def env(request: pytest.FixtureRequest, settings_factory: Any) -> Iterator[tuple[Any, Bus, Store]]:
    overrides: dict[str, Any] = {
        "batch_size": 500,
        "batch_timeout_ms": 50,
        "kafka_partitions": 1,  # one partition: the events arrive in the order they were sent
        "pii_key": "the same key for every run of this test",
    }
    if request.param == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    settings = settings_factory(**overrides)
    bus, store = open_bus(settings), open_store(settings)
    store.migrate()
    yield settings, bus, store
    store.close()
    bus.close()


def traffic(payments: int = 3_000, seed: int = 4) -> list[Event]:
    config = StreamConfig(
        rate=payments / 7_200,
        duration_s=None,
        payments=payments,
        anomaly_rate=0.08,
        n_stores=12,
        seed=seed,
    )
    return list(generate_stream(config, SimulatedClock(MORNING)))


def alerts(store: Store) -> list[tuple[Any, ...]]:
    return sorted(
        store.query("SELECT alert_id, kind, subject, severity, message, details FROM alerts")
    )


def scores(store: Store) -> list[tuple[Any, ...]]:
    return sorted(store.query("SELECT charge_id, risk_score, kind, alerted FROM fraud_scores"))


def test_processor_writes_alerts_and_scores_idempotently(env: tuple[Any, Bus, Store]) -> None:
    _, _, store = env
    events = traffic()
    processor = FraudProcessor(FraudThresholds(), b"k" * 32)
    with store.transaction() as tx:
        processor.process(events, tx)
    rows = alerts(store)
    assert rows, "the anomalies raised alerts"
    labelled = {e.data.charge_id: e.data.label for e in events if isinstance(e.data, ChargeCreated)}
    for alert_id, kind, subject, severity, message, details in rows:
        details = _details(details)
        assert kind.startswith("fraud.") and severity in ("warning", "critical")
        assert alert_id == f"fraud-{details['charge_id']}"
        assert message.startswith("Risco ") and details["reasons"] in message.replace("; ", " | ")
        assert float(details["risk_score"]) >= 0.7
        assert subject == details["store_id"] or len(subject) == 32  # a store or a payer hash
    charge_ids = [_details(r[5])["charge_id"] for r in rows]
    hit = sum(1 for charge_id in charge_ids if labelled.get(charge_id))
    assert hit >= 0.9 * len(rows)
    assert len(scores(store)) >= len(rows)

    again = FraudProcessor(FraudThresholds(), b"k" * 32)
    with store.transaction() as tx:
        again.process(events, tx)  # a replay from a fresh state: the same rows, nothing new
    assert alerts(store) == rows


def test_no_document_ever_reaches_the_alerts(env: tuple[Any, Bus, Store]) -> None:
    _, _, store = env
    events = traffic(1_500)
    documents = {e.data.payer_document for e in events if isinstance(e.data, ChargeCreated)} - {
        None
    }
    with store.transaction() as tx:
        FraudProcessor(FraudThresholds(), b"k" * 32).process(events, tx)
    text = repr(store.query("SELECT * FROM alerts")) + repr(
        store.query("SELECT * FROM fraud_scores")
    )
    assert not any(d in text for d in documents if d)


def _details(value: Any) -> dict[str, str]:
    return value if isinstance(value, dict) else orjson.loads(value)


def run_pipeline(settings: Any, bus: Bus, store: Store, expected: int) -> None:
    runner = build_runner(settings, bus, store)
    deadline = time.monotonic() + 120
    try:
        runner.run(stop=lambda s: s.messages >= expected or time.monotonic() > deadline)
    finally:
        runner.close()


def test_charges_flagged_by_a_later_pattern_have_their_facts(
    env: tuple[Any, Bus, Store],
) -> None:
    """A pattern (card testing, velocity...) flags the earlier charges it covers; their
    ``fraud_scores`` rows take store, payer, time and amount from ``payments``."""
    settings, bus, store = env
    values = [encode_event(e) for e in traffic(2_000, seed=11)]
    bus.publish(Topic.PAYMENTS, [(None, v) for v in values])
    run_pipeline(settings, bus, store, len(values))
    covered = store.query("SELECT count(*) FROM fraud_scores WHERE learned_score IS NULL")
    assert covered[0][0] > 0, "the traffic has patterns that cover earlier charges"
    missing = store.query(
        "SELECT f.charge_id FROM fraud_scores f JOIN payments p ON p.charge_id = f.charge_id "
        "WHERE f.created_at IS NULL OR f.store_id IS NULL OR f.amount_cents IS NULL "
        "OR f.created_at <> p.created_at OR f.amount_cents <> p.amount_cents"
    )
    assert missing == []


def test_restart_from_the_checkpoint_gives_the_same_alerts(
    env: tuple[Any, Bus, Store], settings_factory: Any, tmp_path: Path
) -> None:
    settings, bus, store = env
    values = [encode_event(e) for e in traffic(2_000, seed=9)]
    half = len(values) // 2
    bus.publish(Topic.PAYMENTS, [(None, v) for v in values[:half]])
    run_pipeline(settings, bus, store, half)
    bus.publish(Topic.PAYMENTS, [(None, v) for v in values[half:]])
    run_pipeline(settings, bus, store, len(values) - half)  # a new runner: restored state
    interrupted = (alerts(store), scores(store))

    other = settings_factory(
        data_dir=tmp_path / "other",
        batch_size=500,
        batch_timeout_ms=50,
        kafka_partitions=1,
        pii_key="the same key for every run of this test",
        store_url=settings.store_url if settings.store_url.startswith("postgres") else "",
    )
    if other.store_url:
        pytest.skip("one PostgreSQL schema per test: the uninterrupted run needs DuckDB")
    bus2, store2 = open_bus(other), open_store(other)
    try:
        store2.migrate()
        bus2.publish(Topic.PAYMENTS, [(None, v) for v in values])
        run_pipeline(other, bus2, store2, len(values))
        assert (alerts(store2), scores(store2)) == interrupted
        assert interrupted[0]
    finally:
        store2.close()
        bus2.close()


def _pipeline_settings(settings_factory: Any, data_dir: Path, batch_size: int) -> Any:
    return settings_factory(
        data_dir=data_dir,
        batch_size=batch_size,
        batch_timeout_ms=50,
        kafka_partitions=1,  # one partition: the arrival order does not depend on the consumer
        pii_key="the same key for every run of this test",
    )


def run_in_steps(settings: Any, values: list[bytes], restart_every: int | None) -> tuple[Any, ...]:
    """Every message through the pipeline one batch at a time (exact batch boundaries);
    every ``restart_every`` batches the runner is closed and a new one (new processors,
    state restored from the store's checkpoint) carries on."""
    bus, store = open_bus(settings), open_store(settings)
    try:
        store.migrate()
        bus.publish(Topic.PAYMENTS, [(None, v) for v in values])
        batches, restarts, done = 0, -1, False
        while not done:
            runner = build_runner(settings, bus, store)
            restarts += 1
            try:
                steps = 0
                while restart_every is None or steps < restart_every:
                    if runner.step() is None:
                        done = True
                        break
                    steps += 1
                    batches += 1
            finally:
                runner.close()
        assert batches == -(-len(values) // settings.batch_size)
        if restart_every is not None:
            assert restarts >= batches // restart_every
        return alerts(store), full_scores(store)
    finally:
        store.close()
        bus.close()


def full_scores(store: Store) -> list[tuple[Any, ...]]:
    return sorted(store.query("SELECT * FROM fraud_scores"))


@pytest.mark.parametrize("restart_every", [1, 3])
def test_restarts_at_batch_boundaries_match_one_uninterrupted_run(
    settings_factory: Any, tmp_path: Path, restart_every: int
) -> None:
    """Batches of 100 on DuckDB; every row of ``alerts`` and ``fraud_scores`` is the same."""
    values = [encode_event(e) for e in traffic(3_000, seed=11)]
    whole = run_in_steps(_pipeline_settings(settings_factory, tmp_path / "u", 100), values, None)
    again = run_in_steps(
        _pipeline_settings(settings_factory, tmp_path / "r", 100), values, restart_every
    )
    assert whole[0] and whole[1], "the anomalies raised alerts and risk rows"
    assert again[0] == whole[0]
    assert again[1] == whole[1]


def _process_in_batches(store: Store, events: list[Event], batch_size: int) -> tuple[Any, ...]:
    with store.transaction() as tx:
        tx.execute("DELETE FROM fraud_scores")
        tx.execute("DELETE FROM alerts")
    processor = FraudProcessor(FraudThresholds(), b"k" * 32)
    for start in range(0, len(events), batch_size):
        with store.transaction() as tx:
            processor.process(events[start : start + batch_size], tx)
    return alerts(store), full_scores(store)


def test_rows_do_not_depend_on_the_batch_boundaries(env: tuple[Any, Bus, Store]) -> None:
    """A charge's ``fraud_scores`` row merges its own verdict and the later patterns that
    cover it the same way within a batch as the upsert does across batches."""
    _, _, store = env
    events = traffic(12_000, seed=4)
    whole = _process_in_batches(store, events, len(events))
    assert whole[1]
    for batch_size in (100, 300):
        assert _process_in_batches(store, events, batch_size) == whole, batch_size
