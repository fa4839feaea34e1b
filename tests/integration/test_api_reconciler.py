"""The charge ledger and the reconciler behind the API: lost webhooks, expiry, charges whose
PSP call never finished, a bus that refuses events, and the transitions themselves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus, Consumer, Record
from pulso.config import Settings
from pulso.domain.events import decode_event
from pulso.errors import BusUnavailableError
from pulso.pix.charge import (
    Charge,
    ChargeCreationPendingError,
    NewCharge,
    charge_id_for,
    expire_if_due,
    follow_psp,
    transition_events,
)
from pulso.pix.charges import ChargeService
from pulso.pix.errors import PSPError, PSPUnavailableError
from pulso.pix.ledger import ChargeLedger
from pulso.pix.providers import open_psp
from pulso.pix.providers.protocol import ChargeRequest, PSPCharge
from pulso.pix.providers.sandbox import SandboxPSP
from pulso.pix.reconciler import Reconciler
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.store import open_store
from pulso.store.protocol import Store

STORE = StoreInfo("LJ-0004", "Açougue Bom Corte", "Goiânia", "GO")
NEW = NewCharge(amount=Decimal("30.00"), description="Picanha", store_id=STORE.store_id)


class Clock:
    """The service's clock, moved by hand (the sandbox keeps real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SwitchableBus:
    """The real bus, made to refuse publishing while ``down`` is set."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner
        self.down = False

    def publish(self, topic: str, records: Sequence[Record]) -> None:
        if self.down:
            raise BusUnavailableError("the broker cannot be reached")
        self.inner.publish(topic, records)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return self.inner.consumer(group, topics)

    def close(self) -> None:
        self.inner.close()


@dataclass
class World:
    service: ChargeService
    ledger: ChargeLedger
    psp: SandboxPSP
    store: Store
    bus: SwitchableBus
    clock: Clock

    def reconciler(self) -> Reconciler:
        return Reconciler(self.service, min_age_s=10, recheck_s=30)

    def status(self, charge_id: str) -> str:
        self.ledger.flush()
        rows = self.store.query("SELECT status FROM pix_charges WHERE charge_id = %s", (charge_id,))
        return str(rows[0][0])

    def events_of(self, charge_id: str) -> list[str]:
        consumer = self.bus.consumer(f"reader-{uuid.uuid4().hex}", ["payments"])
        try:
            messages = consumer.poll_batch(10_000, 0.5)
        finally:
            consumer.close()
        return [
            e.type for e in map(decode_event, (m.value for m in messages)) if e.key == charge_id
        ]


@pytest.fixture
def world(settings_factory: Callable[..., Settings]) -> Iterator[World]:
    settings = settings_factory(
        webhook_secret="s", sandbox_pay_after_s=0, public_url="http://127.0.0.1:9"
    )
    store = open_store(settings)
    bus = SwitchableBus(open_bus(settings))
    psp = open_psp(settings)
    assert isinstance(psp, SandboxPSP)
    registry = StoreRegistry(store)
    registry.register([STORE])
    clock = Clock()
    ledger = ChargeLedger(store, bus)
    ledger.start()
    yield World(ChargeService(ledger, psp, registry, clock=clock), ledger, psp, store, bus, clock)
    ledger.close()
    psp.close()
    bus.close()
    store.close()


def test_a_lost_webhook_is_caught_up_by_polling(world: World) -> None:
    charge = world.service.create(NEW).charge
    assert charge.psp_payment_id is not None
    world.psp.pay(charge.psp_payment_id)  # its webhook goes nowhere

    too_soon = world.reconciler().run_once()  # webhooks get min_age_s to arrive first
    world.clock.advance(11)
    stats = world.reconciler().run_once()

    assert too_soon.checked == 0
    assert (stats.checked, stats.changed) == (1, 1)
    assert world.status(charge.charge_id) == "confirmed"
    assert world.events_of(charge.charge_id) == ["pix.charge.created", "pix.charge.confirmed"]


def test_a_checked_charge_waits_for_its_recheck(world: World) -> None:
    world.service.create(NEW)
    world.clock.advance(11)
    first = world.reconciler().run_once()
    world.clock.advance(5)
    soon = world.reconciler().run_once()
    world.clock.advance(30)
    later = world.reconciler().run_once()
    assert (first.checked, soon.checked, later.checked) == (1, 0, 1)


def test_an_unpaid_charge_expires_at_its_expiry_and_is_cancelled_at_the_psp(
    world: World,
) -> None:
    charge = world.service.create(replace(NEW, expires_in_s=60)).charge
    assert charge.psp_payment_id is not None

    world.clock.advance(59)
    early = world.reconciler().run_once()
    world.clock.advance(2)
    due = world.reconciler().run_once()

    assert early.expired == 0
    assert due.expired == 1
    assert world.status(charge.charge_id) == "expired"
    assert world.psp.get_charge(charge.psp_payment_id).status == "cancelled"
    assert world.events_of(charge.charge_id) == ["pix.charge.created", "pix.charge.expired"]


def test_a_charge_paid_at_the_last_moment_is_confirmed_not_expired(world: World) -> None:
    charge = world.service.create(replace(NEW, expires_in_s=60)).charge
    assert charge.psp_payment_id is not None
    world.psp.pay(charge.psp_payment_id)
    world.clock.advance(61)

    stats = world.reconciler().run_once()

    assert (stats.changed, stats.expired) == (1, 0)
    assert world.status(charge.charge_id) == "confirmed"


def test_a_charge_whose_psp_call_never_finished_is_issued_by_the_reconciler(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = world.psp.create_charge
    calls: list[str] = []

    def unavailable(request: object, *, idempotency_key: str) -> PSPCharge:
        calls.append(idempotency_key)
        raise PSPUnavailableError("timed out")

    monkeypatch.setattr(world.psp, "create_charge", unavailable)
    with pytest.raises(ChargeCreationPendingError) as pending:
        world.service.create(NEW, idempotency_key="till-1-sale-9")
    charge_id = pending.value.charge_id
    assert world.status(charge_id) == "creating"

    monkeypatch.setattr(world.psp, "create_charge", real_create)
    world.clock.advance(11)
    stats = world.reconciler().run_once()

    assert stats.redriven == 1
    assert world.status(charge_id) == "pending"
    assert charge_id == charge_id_for("till-1-sale-9")
    assert calls == [charge_id]
    again = world.service.create(NEW, idempotency_key="till-1-sale-9")
    assert (again.created, again.charge.charge_id) == (False, charge_id)


def test_a_refused_re_drive_records_the_charge_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(request: object, *, idempotency_key: str) -> PSPCharge:
        raise PSPUnavailableError("timed out")

    monkeypatch.setattr(world.psp, "create_charge", refuse)
    with pytest.raises(ChargeCreationPendingError) as pending:
        world.service.create(NEW)

    def refused(request: object, *, idempotency_key: str) -> PSPCharge:
        raise PSPError("invalid payer")

    monkeypatch.setattr(world.psp, "create_charge", refused)
    world.clock.advance(11)
    stats = world.reconciler().run_once()

    assert (stats.redriven, stats.errors) == (0, 1)
    assert world.status(pending.value.charge_id) == "failed"
    assert world.events_of(pending.value.charge_id) == []  # never issued: nothing to announce


def test_a_bus_that_refuses_events_rolls_the_change_back(world: World) -> None:
    world.bus.down = True
    with pytest.raises(BusUnavailableError):
        world.service.create(NEW, idempotency_key="k-bus")
    charge_id = charge_id_for("k-bus")
    assert world.status(charge_id) == "creating"  # recorded, but not issued unannounced
    assert world.ledger.bus_error is not None

    world.bus.down = False
    finished = world.service.create(NEW, idempotency_key="k-bus")

    assert finished.charge.status == "pending"
    assert world.ledger.bus_error is None
    assert world.events_of(charge_id) == ["pix.charge.created"]


def test_the_cache_and_the_table_agree(world: World) -> None:
    charges = [world.service.create(NEW).charge for _ in range(5)]
    assert charges[0].psp_payment_id is not None
    world.psp.pay(charges[0].psp_payment_id)
    world.service.refresh(charges[0])
    world.ledger.flush()
    fresh = ChargeLedger(world.store, world.bus, cache_size=0)  # reads the table only
    for charge in charges:
        assert fresh.get(charge.charge_id) == world.ledger.get(charge.charge_id)


def _table_status(store: Store, charge_id: str) -> str:
    """What the table holds now, without waiting for the ledger's queued writes."""
    rows = store.query("SELECT status FROM pix_charges WHERE charge_id = %s", (charge_id,))
    return str(rows[0][0])


def _service(world: World, ledger: ChargeLedger) -> ChargeService:
    return ChargeService(ledger, world.psp, world.service.registry, clock=world.clock)


def test_the_issue_of_a_charge_is_held_back_yet_read_at_once(world: World) -> None:
    ledger = ChargeLedger(world.store, world.bus, defer_s=60)  # held until someone looks
    ledger.start()
    try:
        service = _service(world, ledger)
        created = asyncio.run(service.create_async(NEW, idempotency_key="held-1"))
        charge_id = created.charge.charge_id

        assert created.created and created.charge.status == "pending"
        assert service.get(charge_id).status == "pending"  # answered from memory
        assert _table_status(world.store, charge_id) == "creating"  # answered: durable
        assert world.events_of(charge_id) == []  # announced when it commits

        ledger.flush()
        assert _table_status(world.store, charge_id) == "pending"
        assert world.events_of(charge_id) == ["pix.charge.created"]
    finally:
        ledger.close()


def test_a_retry_while_the_issue_is_held_back_gets_the_issued_charge(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_create = world.psp.create_charge

    def counted(request: ChargeRequest, *, idempotency_key: str) -> PSPCharge:
        calls.append(idempotency_key)
        return real_create(request, idempotency_key=idempotency_key)

    monkeypatch.setattr(world.psp, "create_charge", counted)
    ledger = ChargeLedger(world.store, world.bus, defer_s=60)
    ledger.start()
    try:
        service = _service(world, ledger)
        first = asyncio.run(service.create_async(NEW, idempotency_key="held-2"))
        again = asyncio.run(service.create_async(NEW, idempotency_key="held-2"))
    finally:
        ledger.close()

    assert (first.created, again.created) == (True, False)
    assert again.charge == first.charge  # the stored, issued charge: not re-issued
    assert calls == [first.charge.charge_id]


def test_closing_the_ledger_commits_what_it_held_back(world: World) -> None:
    ledger = ChargeLedger(world.store, world.bus, defer_s=60)
    ledger.start()
    created = asyncio.run(_service(world, ledger).create_async(NEW))
    ledger.close()
    assert _table_status(world.store, created.charge.charge_id) == "pending"


def test_a_key_the_ledger_no_longer_remembers_is_found_in_the_table(world: World) -> None:
    # Without a cache the ledger cannot know a key is taken: its insert without ON CONFLICT
    # fails, and the batch runs again with the check (the usual path for a new key).
    ledger = ChargeLedger(world.store, world.bus, cache_size=0)
    ledger.start()
    try:
        service = _service(world, ledger)
        first = service.create(NEW, idempotency_key="old-key")
        other = replace(NEW, description="outra venda")
        # Both reservations may share a batch: the new key must not fail with the old one.
        futures = [
            ledger.reserve(service._draft(NEW, "old-key")),
            ledger.reserve(service._draft(other, "new-key")),
        ]
        known, new = (f.result(timeout=10) for f in futures)
        again = service.create(NEW, idempotency_key="old-key")
    finally:
        ledger.close()

    assert (known.created, known.charge.charge_id) == (False, first.charge.charge_id)
    assert known.charge.txid == first.charge.txid
    assert new.created and new.charge.charge_id == charge_id_for("new-key")
    assert (again.created, again.charge) == (False, first.charge)
    count = world.store.query(
        "SELECT count(*) FROM pix_charges WHERE charge_id = %s", (known.charge.charge_id,)
    )
    assert count == [(1,)]


# --- the transitions and their events, as pure functions -----------------------------------


def _psp(status: str, **changes: object) -> PSPCharge:
    base = PSPCharge(
        psp="sandbox",
        psp_payment_id="77",
        status="pending",
        status_detail="pending_waiting_transfer",
        amount=Decimal("30.00"),
        brcode="000201",
        qr_png_base64=None,
        ticket_url=None,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
        paid_at=None,
    )
    return replace(base, status=status, **changes)  # type: ignore[arg-type]


@pytest.fixture
def pending(world: World) -> Charge:
    return world.service.create(NEW).charge


def test_an_approval_confirms_with_the_psp_facts(pending: Charge) -> None:
    paid_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    now = paid_at + timedelta(seconds=1)
    after = follow_psp(_psp("approved", paid_at=paid_at, end_to_end_id="E1"), now)(pending)
    assert after is not None
    assert (after.status, after.confirmed_at, after.paid_cents) == ("confirmed", paid_at, 3000)
    assert after.end_to_end_id == "E1"
    assert [e.type for e in transition_events(pending, after)] == ["pix.charge.confirmed"]


def test_money_received_wins_over_an_earlier_end(pending: Charge) -> None:
    now = datetime.now(UTC)
    expired = expire_if_due(pending.expires_at)(pending)
    assert expired is not None and expired.status == "expired"
    late = follow_psp(_psp("approved"), now)(expired)
    assert late is not None and late.status == "confirmed"
    assert [e.type for e in transition_events(expired, late)] == ["pix.charge.confirmed"]
    after_confirmed = follow_psp(_psp("expired"), now)(late) or late
    assert after_confirmed.status == "confirmed"  # nothing ends a confirmed charge


@pytest.mark.parametrize(
    ("psp_status", "expected"),
    [
        ("pending", "pending"),
        ("in_process", "pending"),
        ("rejected", "failed"),
        ("cancelled", "failed"),
        ("expired", "expired"),
        ("refunded", "pending"),  # a refund of an unpaid charge: nothing pulso tracks
    ],
)
def test_psp_statuses_map_to_charge_statuses(
    pending: Charge, psp_status: str, expected: str
) -> None:
    after = follow_psp(_psp(psp_status), datetime.now(UTC))(pending) or pending
    assert after.status == expected


def test_expiry_waits_for_the_expiry_time(pending: Charge) -> None:
    assert expire_if_due(pending.expires_at - timedelta(seconds=1))(pending) is None


def test_an_event_announced_twice_has_one_id(pending: Charge) -> None:
    after = follow_psp(_psp("approved"), datetime.now(UTC))(pending)
    assert after is not None
    first = transition_events(pending, after)
    again = transition_events(pending, replace(after, updated_at=datetime.now(UTC)))
    assert [e.event_id for e in first] == [e.event_id for e in again]
    issued_late = transition_events(None, after)  # creating → confirmed in one step
    assert [e.type for e in issued_late] == ["pix.charge.created", "pix.charge.confirmed"]
