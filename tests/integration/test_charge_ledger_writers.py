"""The charge ledger's own DuckDB writers: its commits run beside the pipeline's
transactions (no wait for the store's write lock), held updates commit on the applier
thread while reservations go on, and nothing is lost, doubled or applied out of order.
Real DuckDB store and local bus; the PostgreSQL path (no extra writers) as well."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.pix.charge import Charge, NewCharge, draft_charge, utc_now
from pulso.pix.ledger import ChargeLedger, Update
from pulso.pix.stores import StoreInfo
from pulso.store import open_store
from pulso.store.duckdb import DuckDBStore, DuckDBWriter
from pulso.store.protocol import Store
from pulso.store.tables import RAW_EVENTS

STORE = StoreInfo("LJ-0001", "Padaria Central", "São Paulo", "SP")
WAIT_S = 30.0  # a generous bound for a result that must come; never a speed assertion


@pytest.fixture
def backends(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Store, Bus]]:
    settings = settings_factory()
    store, bus = open_store(settings), open_bus(settings)
    yield store, bus
    bus.close()
    store.close()


def draft(key: str) -> Charge:
    new = NewCharge(Decimal("25.90"), "Pão e café", STORE.store_id)
    return draft_charge(new, STORE, psp="sandbox", idempotency_key=key, now=utc_now())


def psp_id(value: str, *, after: str | None = None) -> Callable[[Charge], Charge]:
    """A change that sets ``psp_payment_id``; with ``after``, only on top of that value."""

    def change(charge: Charge) -> Charge:
        if after is not None and charge.psp_payment_id != after:
            raise AssertionError(f"applied out of order: saw {charge.psp_payment_id!r}")
        return replace(charge, psp_payment_id=value)

    return change


def raw_event_rows(count: int) -> dict[str, list[object]]:
    """Rows for ``raw_events`` (the pipeline's first write), every column filled."""
    now = datetime.now(UTC)
    samples: dict[str, object] = {
        "uuid": None,
        "text": "x",
        "timestamptz": now,
        "json": {"k": 1},
        "int": 1,
        "bigint": 1,
        "smallint": 1,
        "bool": True,
        "bytes": b"x",
        "numeric": Decimal("1.00"),
        "double": 1.0,
    }
    rows: dict[str, list[object]] = {}
    for column in RAW_EVENTS.columns:
        if column.type == "uuid":
            rows[column.name] = [uuid.uuid4() for _ in range(count)]
        else:
            rows[column.name] = [samples[column.type]] * count
    return rows


def stored_psp_ids(store: Store) -> dict[str, str | None]:
    rows = store.query("SELECT charge_id, psp_payment_id FROM pix_charges")
    return {str(r[0]): r[1] for r in rows}


def test_a_ledger_commit_does_not_wait_for_an_open_pipeline_transaction(
    backends: tuple[Store, Bus],
) -> None:
    store, bus = backends
    ledger = ChargeLedger(store, bus)
    ledger.start()
    try:
        with store.transaction() as tx:  # the pipeline's batch, holding the store's lock
            tx.insert_new(RAW_EVENTS, raw_event_rows(50))
            # On the store's own writer this would wait for the block to end: a deadlock.
            reservation = ledger.reserve(draft("during-pipeline")).result(timeout=WAIT_S)
            update = ledger.update(reservation.charge.charge_id, psp_id("PAY-1"))
            assert update.result(timeout=WAIT_S).charge.psp_payment_id == "PAY-1"
        ledger.flush()
    finally:
        ledger.close()

    assert reservation.created
    assert stored_psp_ids(store) == {reservation.charge.charge_id: "PAY-1"}
    assert int(store.query("SELECT count(*) FROM raw_events")[0][0]) == 50


def test_reservations_go_on_while_the_applier_commits_held_updates_in_order(
    backends: tuple[Store, Bus], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bus = backends
    assert isinstance(store, DuckDBStore)
    writers: list[DuckDBWriter] = []
    real_open = DuckDBStore.open_writer

    def spy(self: DuckDBStore) -> DuckDBWriter:
        writers.append(real_open(self))
        return writers[-1]

    monkeypatch.setattr(DuckDBStore, "open_writer", spy)
    ledger = ChargeLedger(store, bus, defer_s=0.0)
    assert len(writers) == 2  # the writer thread's, then the applier's
    applier_writes = writers[1]
    ledger.start()
    settled: list[tuple[Update | None, BaseException | None]] = []
    done = threading.Event()

    def on_settled(update: Update | None, error: BaseException | None) -> None:
        settled.append((update, error))
        done.set()

    try:
        first = ledger.reserve(draft("held")).result(timeout=WAIT_S).charge
        with applier_writes.lock:  # the applier cannot commit until this block ends
            ledger.update_later(first.charge_id, psp_id("PAY-A"), on_settled)
            # A held update is due at once (defer_s=0): the next batch hands it over, and
            # reservations of other charges commit while it waits for its writer.
            others = [ledger.reserve(draft(f"other-{i}")) for i in range(20)]
            created = [f.result(timeout=WAIT_S) for f in others]
            assert all(r.created for r in created)
            assert not done.is_set()
            # An update of the held charge must start from the held update's result: it
            # waits for the applier, which waits for this block.
            after = ledger.update(first.charge_id, psp_id("PAY-B", after="PAY-A"))
        assert after.result(timeout=WAIT_S).charge.psp_payment_id == "PAY-B"
        assert done.wait(WAIT_S)
        ledger.flush()
    finally:
        ledger.close()

    assert settled[0][1] is None and settled[0][0] is not None
    assert settled[0][0].charge.psp_payment_id == "PAY-A"
    stored = stored_psp_ids(store)
    assert len(stored) == 21
    assert stored[first.charge_id] == "PAY-B"
    assert (
        ledger.get(first.charge_id)
        == ledger.select("charge_id = %s", (first.charge_id,), limit=1)[0]
    )


def test_ledger_and_pipeline_writing_together_lose_and_double_nothing(
    backends: tuple[Store, Bus],
) -> None:
    store, bus = backends
    ledger = ChargeLedger(store, bus, defer_s=0.001)
    ledger.start()
    stop = threading.Event()
    pipeline_rows = 0
    pipeline_errors: list[BaseException] = []

    def pipeline() -> None:
        nonlocal pipeline_rows
        while not stop.is_set():
            try:
                with store.transaction() as tx:
                    pipeline_rows += tx.insert_new(RAW_EVENTS, raw_event_rows(200))
            except BaseException as e:  # reported by the assertion below
                pipeline_errors.append(e)
                return

    thread = threading.Thread(target=pipeline)
    thread.start()
    settled: list[BaseException | None] = []
    try:
        ids: list[str] = []
        for round_ in range(8):
            futures = [ledger.reserve(draft(f"k-{round_}-{i}")) for i in range(40)]
            # Retries of keys already created, in the same batches as new ones.
            futures += [ledger.reserve(draft(f"k-{round_}-{i}")) for i in range(0, 40, 4)]
            reservations = [f.result(timeout=WAIT_S) for f in futures]
            assert sum(r.created for r in reservations) == 40
            for r in reservations[:40]:
                ids.append(r.charge.charge_id)
                ledger.update_later(
                    r.charge.charge_id,
                    psp_id(f"PAY-{r.charge.charge_id}"),
                    lambda _u, e: settled.append(e),
                )
            # Waited-for updates of charges whose held updates may be on the applier.
            firsts = [ledger.update(i, psp_id("PAID", after=f"PAY-{i}")) for i in ids[-40:-30]]
            assert all(f.result(timeout=WAIT_S).changed for f in firsts)
        ledger.flush()
    finally:
        stop.set()
        thread.join()
        ledger.close()

    assert not pipeline_errors
    assert len(settled) == len(ids) and not any(settled)
    stored = stored_psp_ids(store)
    assert len(stored) == len(ids) == len(set(ids)) == 320
    paid = {i for i, p in stored.items() if p == "PAID"}
    assert len(paid) == 80
    assert all(stored[i] == f"PAY-{i}" for i in set(ids) - paid)
    assert int(store.query("SELECT count(*) FROM raw_events")[0][0]) == pipeline_rows > 0


def test_on_postgresql_the_ledger_writes_through_the_store(
    settings_factory: Callable[..., Settings], postgres_url: str
) -> None:
    settings = settings_factory(store_url=postgres_url)
    store, bus = open_store(settings), open_bus(settings)
    try:
        ledger = ChargeLedger(store, bus, defer_s=0.0)
        assert ledger._applier_writes is None  # no extra writers: PostgreSQL has its own
        ledger.start()
        try:
            first = ledger.reserve(draft("pg")).result(timeout=WAIT_S)
            again = ledger.reserve(draft("pg")).result(timeout=WAIT_S)
            settled: list[BaseException | None] = []
            ledger.update_later(
                first.charge.charge_id, psp_id("PAY-PG"), lambda _u, e: settled.append(e)
            )
            after = ledger.update(first.charge.charge_id, psp_id("DONE", after="PAY-PG"))
            assert after.result(timeout=WAIT_S).charge.psp_payment_id == "DONE"
            ledger.flush()
        finally:
            ledger.close()
        assert first.created and not again.created
        assert again.charge.charge_id == first.charge.charge_id
        assert settled == [None]
        assert stored_psp_ids(store) == {first.charge.charge_id: "DONE"}
    finally:
        bus.close()
        store.close()
