"""The elected stream-state runner in process, on PostgreSQL: the advisory lock admits one
holder at a time, a new holder is fenced from an old one (epoch) and waits for its batch in
flight, and the state-only runner beside a facts runner folds every event exactly once (its
own dedupe, not ``raw_events``), equal to one embedded runner. The same through real
`pulso worker` processes on Kafka: tests/integration/test_cluster_workers.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cluster_harness import extra_schema, wait_until
from test_stream_windows import late_events, records, stored_windows, stream

from pulso.bus import open_bus
from pulso.domain.events import Topic
from pulso.errors import ConfigError, StoreError
from pulso.pipeline.factory import build_runner
from pulso.pipeline.leader import (
    LeaseLost,
    StateLease,
    build_state_runner,
    check_stream_state,
    describe_holder,
    state_group,
)
from pulso.pipeline.runner import PipelineRunner
from pulso.store import open_store
from pulso.store.protocol import Store

pytestmark = pytest.mark.postgres

GROUP = state_group()
WINDOWS = {
    "batch_size": 97,
    "batch_timeout_ms": 50,
    "kafka_partitions": 4,
    "window_out_of_orderness_s": 5,
    "window_allowed_lateness_s": 60,
    "window_max_future_s": 300,
}


@pytest.fixture
def stores(settings_factory: Any, postgres_url: str) -> Iterator[list[Store]]:
    """Two stores on one schema: two workers' connections."""
    settings = settings_factory(store_url=postgres_url)
    opened = [open_store(settings), open_store(settings)]
    yield opened
    for store in opened:
        store.close()


def test_one_holder_at_a_time_and_a_standby_takes_over(stores: list[Store]) -> None:
    first = StateLease(stores[0], GROUP, "w1/state")
    second = StateLease(stores[1], GROUP, "w2/state")
    assert describe_holder(stores[0], GROUP) is None
    assert first.try_acquire() and first.epoch == 1
    assert not second.try_acquire() and not second.held
    holder = describe_holder(stores[1], GROUP)
    assert holder is not None and holder[:2] == ("w1/state", 1)
    assert first.alive()

    first.release()  # the session ends: the lock goes with it
    assert describe_holder(stores[1], GROUP) is None  # the row stays, but nobody holds it
    assert second.try_acquire() and second.epoch == 2
    holder = describe_holder(stores[0], GROUP)
    assert holder is not None and holder[:2] == ("w2/state", 2)
    assert StateLease(stores[0], "another-group", "w1/state").try_acquire()  # per group
    second.release()


def test_a_holder_whose_epoch_is_over_cannot_commit(stores: list[Store], postgres_url: str) -> None:
    lease = StateLease(stores[0], GROUP, "w1/state")
    assert lease.try_acquire()
    with stores[0].transaction() as tx:  # a batch while the epoch is ours commits
        lease.fence(tx)
        tx.save_checkpoint("probe", b"1")
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # someone else's epoch now
        admin.execute("UPDATE stream_leader SET epoch = epoch + 1")
    with pytest.raises(LeaseLost, match="epoch 1 is over"), stores[0].transaction() as tx:
        lease.fence(tx)
        tx.save_checkpoint("probe", b"2")
    with stores[0].transaction() as tx:
        assert tx.load_checkpoint("probe") == b"1"  # the fenced batch was rolled back
    assert not lease.held


def test_a_lost_session_stops_the_holder_before_it_writes(
    stores: list[Store], postgres_url: str
) -> None:
    lease = StateLease(stores[0], GROUP, "w1/state")
    assert lease.try_acquire()
    terminate_session(postgres_url, lease)
    assert not lease.alive()
    with pytest.raises(LeaseLost, match="not held"), stores[0].transaction() as tx:
        lease.fence(tx)


def test_a_new_holder_waits_for_the_old_holders_batch_in_flight(
    stores: list[Store], postgres_url: str
) -> None:
    """The old holder's session dies mid-batch: the new holder gets the lock but its epoch
    bump waits until that batch commits, so it restores the checkpoint written by it."""
    old = StateLease(stores[0], GROUP, "w1/state")
    new = StateLease(stores[1], GROUP, "w2/state")
    assert old.try_acquire()
    acquired = threading.Event()
    with stores[0].transaction() as tx:
        old.fence(tx)  # the batch holds the group's row until it commits
        tx.save_checkpoint("offsets/probe", b"written by the old holder")
        terminate_session(postgres_url, old)

        def take() -> None:
            if new.try_acquire():
                acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        wait_until(lambda: lock_waiters(postgres_url) == 1, 10, "the new holder to wait")
        assert not acquired.is_set()
    taker.join(timeout=10)
    assert acquired.is_set() and new.epoch == 2
    with stores[1].transaction() as tx:
        assert tx.load_checkpoint("offsets/probe") == b"written by the old holder"
    new.release()


def test_a_frozen_old_holders_batch_is_ended_by_the_new_holder(
    stores: list[Store], postgres_url: str
) -> None:
    """The old holder lost its lock but its batch never ends (a frozen process, its
    connection alive): after ``takeover_wait_s`` the new holder ends that session and goes
    on; the stale batch cannot commit."""
    old = StateLease(stores[0], GROUP, "w1/state")
    new = StateLease(stores[1], GROUP, "w2/state", takeover_wait_s=0.5)
    assert old.try_acquire()
    with pytest.raises(StoreError), stores[0].transaction() as tx:
        old.fence(tx)  # holds the group's row...
        tx.save_checkpoint("offsets/probe", b"stale")
        terminate_session(postgres_url, old)  # ...after its lock is gone
        assert new.try_acquire()  # no commit comes: the new holder ends the batch itself
        assert new.epoch == 2
    with stores[1].transaction() as tx:
        assert tx.load_checkpoint("offsets/probe") is None
        new.fence(tx)  # the new holder's batches go through
    new.release()


def test_the_state_runner_needs_postgresql(settings_factory: Any) -> None:
    store = open_store(settings_factory())  # DuckDB
    try:
        with pytest.raises(ConfigError, match="advisory locks; DuckDB has none"):
            StateLease(store, GROUP, "w1/state")
    finally:
        store.close()


def test_a_state_runner_beside_a_facts_runner_equals_one_embedded_runner(
    settings_factory: Any, postgres_url: str, tmp_path: Path
) -> None:
    """The facts runner stores raw_events first; the state runner still folds every event
    (first seen: not skipped), a re-sent one once, and neither its dead letters nor the
    facts' event types; one embedded runner over the events without re-sends agrees."""
    charges = stream(seed=7, n=1500)
    sent = records(charges)
    sent_again = sent[::11]
    settings = settings_factory(store_url=postgres_url, **WINDOWS)
    facts_settings = settings.model_copy(update={"window_enabled": False, "fraud_enabled": False})
    bus, store = open_bus(settings), open_store(settings)
    lease = StateLease(store, GROUP, "w1/state")
    try:
        bus.publish(Topic.PAYMENTS, [*sent, (None, b"not an event")])
        assert drain(build_runner(facts_settings, bus, store), len(sent) + 1) == len(sent)
        assert lease.try_acquire()
        state = build_state_runner(settings, bus, store, lease)
        assert drain(state, len(sent) + 1) == len(sent)  # nothing skipped: all first seen
        bus.publish(Topic.PAYMENTS, sent_again)
        state = build_state_runner(settings, bus, store, lease)  # restored from its checkpoint
        assert drain(state, len(sent_again)) == 0  # re-sends: recognised, not folded again
        windows, late = stored_windows(store), late_events(store)
        dead = store.query("SELECT count(*) FROM deadletter")[0][0]
        seen = store.query("SELECT count(*) FROM stream_seen_events")[0][0]
    finally:
        lease.release()
        store.close()
        bus.close()
    assert dead == 1  # the facts runner's; the state runner wrote none
    assert seen == len(sent)
    assert windows and late

    with extra_schema(postgres_url) as reference_url:
        ref = settings_factory(store_url=reference_url, data_dir=tmp_path / "ref", **WINDOWS)
        ref_bus, ref_store = open_bus(ref), open_store(ref)
        try:
            ref_bus.publish(Topic.PAYMENTS, sent)
            drain(build_runner(ref, ref_bus, ref_store), len(sent))
            assert stored_windows(ref_store) == windows
            assert late_events(ref_store) == late
        finally:
            ref_store.close()
            ref_bus.close()


def drain(runner: PipelineRunner, messages: int) -> int:
    """Run until ``messages`` were read; how many events were new to the runner."""
    deadline = time.monotonic() + 60
    try:
        stats = runner.run(stop=lambda s: s.messages >= messages or time.monotonic() > deadline)
    finally:
        runner.close()
    assert stats.messages == messages
    return stats.new_events


def terminate_session(url: str, lease: StateLease) -> None:
    """End the lease's PostgreSQL session from outside (a crashed or cut-off holder)."""
    conn = lease._conn
    assert conn is not None
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))


def lock_waiters(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE %s",
            ("%INSERT INTO stream_leader%",),
        ).fetchone()
    return int(row[0]) if row else 0


def test_doctor_names_the_holder_and_warns_when_nobody_runs_the_state(
    settings_factory: Any, stores: list[Store], postgres_url: str
) -> None:
    settings = settings_factory(store_url=postgres_url)
    lease = StateLease(stores[0], GROUP, "w1/state")
    assert lease.try_acquire()
    finding = check_stream_state(settings, 5)
    assert finding is not None and finding.status == "ok"
    assert "w1/state runs the stream state of 'pulso-pipeline-state' (epoch 1" in finding.detail
    lease.release()
    finding = check_stream_state(settings, 5)
    assert finding is not None and finding.status == "warning"
    assert "nobody holds the stream-state lock" in finding.detail and "pulso worker" in finding.fix
    off = settings.model_copy(update={"window_enabled": False, "fraud_enabled": False})
    assert check_stream_state(off, 5) is None
    assert check_stream_state(settings_factory(), 5) is None  # DuckDB: not the cluster's
