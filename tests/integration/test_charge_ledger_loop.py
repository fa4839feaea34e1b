"""The charge ledger's hand-over from an event loop (``reserve_on``, ``update_later(loop=)``):
ops a loop submits in one turn reach the writer together, keep their order, and fail
cleanly once the ledger is closed. Real DuckDB store and local bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.errors import StoreError
from pulso.pix.charge import Charge, NewCharge, draft_charge, utc_now
from pulso.pix.ledger import ChargeLedger, Reservation, Update
from pulso.pix.stores import StoreInfo
from pulso.store import open_store
from pulso.store.protocol import Store

STORE = StoreInfo("LJ-0001", "Padaria Central", "São Paulo", "SP")


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


def test_one_loop_turn_is_one_batch_and_keeps_its_order(
    backends: tuple[Store, Bus], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bus = backends
    batches: list[list[str]] = []
    real_commit = ChargeLedger._commit

    def spy(self: ChargeLedger, deferred: list[object], ops: list[object]) -> None:
        batches.append([type(op).__name__ for op in [*deferred, *ops]])
        real_commit(self, deferred, ops)  # type: ignore[arg-type]

    monkeypatch.setattr(ChargeLedger, "_commit", spy)
    ledger = ChargeLedger(store, bus, defer_s=0.0)
    ledger.start()
    settled: list[tuple[Update | None, BaseException | None]] = []

    async def submit() -> list[Reservation]:
        loop = asyncio.get_running_loop()
        drafts = [draft(f"turn-{i}") for i in range(5)]
        futures = [ledger.reserve_on(loop, d) for d in drafts]
        first = await futures[0]
        # The same key twice in one turn: the second finds the first's charge.
        again = ledger.reserve_on(loop, draft("turn-0"))
        ledger.update_later(
            first.charge.charge_id,
            lambda c: None,
            lambda u, e: settled.append((u, e)),
            loop=loop,
        )
        return [*(await asyncio.gather(*futures)), await again]

    reservations = asyncio.run(submit())
    ledger.close()

    assert [r.created for r in reservations] == [True] * 5 + [False]
    assert reservations[-1].charge == reservations[0].charge
    assert batches[0] == ["_Reserve"] * 5  # one hand-over, one transaction
    assert len(settled) == 1 and settled[0][1] is None
    assert int(store.query("SELECT count(*) FROM pix_charges")[0][0]) == 5


def test_ops_handed_over_after_close_fail_instead_of_hanging(
    backends: tuple[Store, Bus],
) -> None:
    store, bus = backends
    ledger = ChargeLedger(store, bus)
    ledger.start()

    async def submit_then_close() -> BaseException | None:
        loop = asyncio.get_running_loop()
        future = ledger.reserve_on(loop, draft("late"))
        ledger.close()  # before the loop's turn ends: the op was never handed over
        try:
            await asyncio.wait_for(future, timeout=10)
        except StoreError as e:
            return e
        return None

    error = asyncio.run(submit_then_close())

    assert isinstance(error, StoreError)
    assert "not running" in str(error)
    assert int(store.query("SELECT count(*) FROM pix_charges")[0][0]) == 0
