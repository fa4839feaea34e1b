"""The dispatcher woken by the pipeline (``pulso up``): a batch's alerts go out at its commit,
not at the next poll; a wake-up that finds nothing costs one query; polling stays the
fallback; ``AlertThread.stop`` does not wait for the poll. Real DuckDB store and local bus.

The poll here is an hour, so an alert delivered while the test waits can only have come
from a wake-up (the waits are generous guards, not timings)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from alert_rows import T0, Clock, Recorder, alert, insert_alerts

from pulso.alerts import AlertDispatcher, AlertThread, DispatchConfig
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.domain.events import Topic, encode_event
from pulso.notify import Notification, SendResult
from pulso.store import open_store
from pulso.store.protocol import Store
from tests.unit.fraud_helpers import created

HOUR = 3600.0
GUARD_S = 30.0


class Signalling(Recorder):
    """A recorder that sets an event on each send."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    def send(self, notification: Notification) -> SendResult:
        result = super().send(notification)
        self.arrived.set()
        return result


class CountingStore:
    """The store, counting its queries."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.queries: list[str] = []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.queries.append(sql)
        return self.inner.query(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def store(settings_factory: Callable[..., Settings]) -> Iterator[Store]:
    opened = open_store(settings_factory())
    yield opened
    opened.close()


def _dispatcher(store: Any, channel: Recorder, clock: Clock) -> AlertDispatcher:
    return AlertDispatcher(store, None, [channel], DispatchConfig(poll_s=HOUR), clock=clock)


def test_a_wake_up_delivers_without_waiting_for_the_poll(store: Store) -> None:
    channel = Signalling()
    dispatcher = _dispatcher(store, channel, Clock(T0 + timedelta(seconds=1)))
    thread = AlertThread(dispatcher)
    thread.start()
    try:
        # The first pass ran (or is running) with nothing to do; the next poll is an hour away.
        insert_alerts(store, [alert("a1")])
        thread.wake()
        assert channel.arrived.wait(GUARD_S), "the wake-up did not start a pass"
        assert [n.notification_id for n in channel.sent] == ["a1-1"]
        channel.arrived.clear()
        insert_alerts(store, [alert("a2", subject="LJ-0002")])
        thread.wake()
        assert channel.arrived.wait(GUARD_S)
        assert sorted(n.notification_id for n in channel.sent) == ["a1-1", "a2-1"]
        assert thread.problem() is None
    finally:
        thread.stop(timeout_s=GUARD_S)
    assert thread.problem() == "not running"  # stopped without waiting for the hour


def test_a_wake_up_that_finds_nothing_costs_one_query(store: Store) -> None:
    counting = CountingStore(store)
    channel = Recorder()
    clock = Clock(T0 + timedelta(seconds=1))
    dispatcher = _dispatcher(counting, channel, clock)
    assert dispatcher.dispatch_once().idle
    full_pass = len(counting.queries)
    assert full_pass >= 2  # fold, publish... (deliver)
    counting.queries.clear()
    assert dispatcher._pass(woken=True).idle
    assert len(counting.queries) == 1
    # with a new row, a woken pass does the whole job
    insert_alerts(store, [alert("a1")])
    report = dispatcher._pass(woken=True)
    assert (report.new_alerts, report.opened, report.sent) == (1, 1, 1)


def test_a_woken_pass_leaves_retries_to_the_timed_pass(store: Store) -> None:
    channel = Recorder(down=True)
    clock = Clock(T0 + timedelta(seconds=1))
    dispatcher = _dispatcher(store, channel, clock)
    insert_alerts(store, [alert("a1")])
    assert dispatcher.dispatch_once().retrying == 1
    channel.down = False
    clock.advance(60)  # the retry is due
    assert dispatcher._pass(woken=True).idle and channel.sent == []
    assert dispatcher.dispatch_once().sent == 1 and len(channel.sent) == 1


def test_polling_stays_the_fallback(store: Store) -> None:
    """Without wake-ups (a detector in another process) rows are found by the poll."""
    channel = Signalling()
    dispatcher = AlertDispatcher(
        store, None, [channel], DispatchConfig(poll_s=0.05), clock=Clock(T0)
    )
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        insert_alerts(store, [alert("a1")])
        assert channel.arrived.wait(GUARD_S)
    finally:
        stop.set()
        thread.join(GUARD_S)
    assert not thread.is_alive()


def test_a_failing_pass_is_reported_and_retried(store: Store) -> None:
    class Broken(CountingStore):
        fail = True

        def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            if self.fail:
                self.fail = False
                raise RuntimeError("store gone")
            return super().query(sql, params)

    channel = Signalling()
    dispatcher = AlertDispatcher(
        Broken(store), None, [channel], DispatchConfig(poll_s=0.05), clock=Clock(T0)
    )
    insert_alerts(store, [alert("a1")])
    errors: list[str | None] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=dispatcher.run, args=(stop,), kwargs={"on_error": errors.append}, daemon=True
    )
    thread.start()
    try:
        assert channel.arrived.wait(GUARD_S)
    finally:
        stop.set()
        dispatcher.wake()
        thread.join(GUARD_S)
    assert errors[0] == "RuntimeError: store gone" and errors[-1] is None


def _charges(first: int, count: int) -> list[tuple[bytes | None, bytes]]:
    """``count`` created charges, numbered from ``first``, as bus records."""
    events = [created(i, T0 + timedelta(seconds=i)) for i in range(first, first + count)]
    return [(e.key.encode(), encode_event(e)) for e in events]


def test_pulso_up_wakes_the_dispatcher_after_each_batch(
    settings_factory: Callable[..., Settings],
) -> None:
    """The pipeline thread of ``pulso up`` (real runner, local bus, DuckDB) calls its hook
    after each batch has committed, and not after an empty poll: every call sees more charges
    stored than the one before."""
    from pulso.cli import serve

    settings = settings_factory(batch_size=4, batch_timeout_ms=20)
    bus, store = open_bus(settings), open_store(settings)
    stored: list[int] = []
    reached = {3: threading.Event(), 10: threading.Event()}

    def after_batch() -> None:
        [(count,)] = store.query("SELECT count(*) FROM payments")
        stored.append(int(count))
        for target, event in reached.items():
            if count >= target:
                event.set()

    worker = serve._PipelineThread(settings, bus, store, linger_s=0.0)
    worker.after_batch = after_batch
    worker.start()
    try:
        bus.publish(Topic.PAYMENTS, _charges(0, 3))
        assert reached[3].wait(GUARD_S)
        time.sleep(0.3)  # empty polls (20 ms each) in between: they must not call the hook
        bus.publish(Topic.PAYMENTS, _charges(3, 7))  # two batches of at most 4
        assert reached[10].wait(GUARD_S)
    finally:
        worker.stop(timeout_s=GUARD_S)
        store.close()
        bus.close()
    assert stored[-1] == 10 and len(stored) >= 3
    assert stored == sorted(set(stored)), stored


def test_a_pass_does_not_wait_for_the_pipelines_transaction(store: Store) -> None:
    """On DuckDB the dispatcher writes through a writer of its own: a pass completes while
    another thread (the pipeline) holds a store transaction open."""
    if getattr(store, "open_writer", None) is None:
        pytest.skip("this store has no second writer")
    channel = Recorder()
    dispatcher = _dispatcher(store, channel, Clock(T0 + timedelta(seconds=1)))
    insert_alerts(store, [alert("a1")])
    holding, release = threading.Event(), threading.Event()

    def pipeline_batch() -> None:
        with store.transaction() as tx:
            tx.execute("SELECT 1")
            holding.set()
            release.wait(GUARD_S)

    batch = threading.Thread(target=pipeline_batch, daemon=True)
    batch.start()
    assert holding.wait(GUARD_S)
    reports: list[Any] = []
    pass_thread = threading.Thread(
        target=lambda: reports.append(dispatcher.dispatch_once()), daemon=True
    )
    pass_thread.start()
    pass_thread.join(GUARD_S)
    finished_while_held = not pass_thread.is_alive()
    release.set()
    batch.join(GUARD_S)
    pass_thread.join(GUARD_S)
    assert finished_while_held, "the pass waited for the pipeline's transaction"
    assert reports[0].sent == 1 and len(channel.sent) == 1
