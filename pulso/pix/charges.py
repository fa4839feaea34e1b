"""PIX charges as the API keeps them: create (idempotent), read, follow the PSP, expire.

A charge moves ``creating → pending → confirmed | failed | expired`` (a late PSP approval
still turns ``failed``/``expired`` into ``confirmed``: money received wins). It is recorded as
``creating`` *before* the PSP is called, with the PSP idempotency key fixed by the charge id,
so a PSP that times out leaves a charge that a retry (same ``Idempotency-Key``) or the
reconciler finishes, never a second charge.

Writes go through :class:`ChargeLedger`, one writer thread that commits the operations of
many requests in one store transaction (group commit: each DuckDB statement costs ~2-7 ms
here, so one transaction per request would cap creation near 100 charges/s). The API's
:meth:`ChargeService.create_async` answers once the ``creating`` record is committed and the
PSP has issued the charge, leaving the ``pending`` update to the next batch (see there).

Every change announces itself on the bus's ``payments`` topic, keyed by charge id, as a
lifecycle event (``pix.charge.created`` / ``confirmed`` / ``failed`` / ``expired``) that
the pipeline folds into the ``payments`` table. A batch's events are published *before* its
transaction commits: a bus that refuses them rolls the batch back (the caller retries), and
a commit that fails after the publish is repaired by the retry, which announces the same
step with the same event id (derived from charge id and event type), stored once by the
pipeline. So no change is stored unannounced, and none is announced twice in the tables.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import astuple, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Literal, TypeVar

import orjson

from pulso.bus.protocol import Bus, Record
from pulso.domain.events import Event, Payload, Topic, encode_event, new_event
from pulso.domain.ids import uuid7
from pulso.domain.money import CENT, from_cents, to_cents
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.errors import StoreError, StoreUnavailableError
from pulso.pix.errors import ChargeNotFoundError, PixError, PSPError, PSPUnavailableError
from pulso.pix.providers.protocol import (
    PSP,
    ChargeRequest,
    Notification,
    PSPCharge,
    PSPStatus,
    SimulatedPayer,
)
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.store.protocol import Dialect, Store, StoreTx
from pulso.store.schema import column_type
from pulso.store.sql import column_list, quote
from pulso.store.tables import PIX_CHARGES, Column, ColumnBatch

log = logging.getLogger(__name__)

ChargeStatus = Literal["creating", "pending", "confirmed", "failed", "expired"]
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"confirmed", "failed", "expired"})
MAX_CHARGE_AMOUNT: Final = Decimal("1000000.00")
MIN_EXPIRES_IN_S: Final = 60
MAX_EXPIRES_IN_S: Final = 86_400
DEFAULT_EXPIRES_IN_S: Final = 600
EVENT_SOURCE: Final = "pulso.api"
DEFAULT_CACHE_SIZE: Final = 100_000
CHARGE_ID_NAMESPACE: Final = uuid.UUID("6f1b7c52-3d0e-5a41-9b8e-70756c736f21")
_MAX_REASON_CHARS: Final = 120  # ChargeFailed.reason

# Which status a PSP status leads to; None: nothing pulso tracks (a refund keeps "confirmed").
_PSP_TARGET: Final[dict[PSPStatus, ChargeStatus | None]] = {
    "pending": "pending",
    "in_process": "pending",
    "approved": "confirmed",
    "rejected": "failed",
    "cancelled": "failed",
    "expired": "expired",
    "refunded": None,
}
_NEXT: Final[dict[str, frozenset[str]]] = {
    "creating": frozenset({"pending", "confirmed", "failed", "expired"}),
    "pending": frozenset({"confirmed", "failed", "expired"}),
    "failed": frozenset({"confirmed"}),
    "expired": frozenset({"confirmed"}),
    "confirmed": frozenset(),
}
_EVENT_TYPES: Final[dict[str, str]] = {
    "pending": "pix.charge.created",
    "confirmed": "pix.charge.confirmed",
    "failed": "pix.charge.failed",
    "expired": "pix.charge.expired",
}

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------- errors


class IdempotencyConflictError(PixError):
    """An ``Idempotency-Key`` was reused with a different request body."""

    def __init__(self, charge_id: str) -> None:
        super().__init__(
            f"this Idempotency-Key already created charge {charge_id} from a different request; "
            "send the same body to get that charge back, or use a new key for a new charge"
        )
        self.charge_id = charge_id


class ChargeCreationPendingError(PSPUnavailableError):
    """The charge is recorded but the PSP could not be reached to issue it yet."""

    def __init__(self, charge_id: str, cause: str) -> None:
        super().__init__(
            f"charge {charge_id} is recorded but the PSP did not answer ({cause}); retry with "
            "the same Idempotency-Key to finish it (it is never created twice)"
        )
        self.charge_id = charge_id


class ChargeRefusedError(PSPError):
    """The PSP refused to issue the charge; it is recorded as failed."""

    def __init__(self, charge_id: str, cause: str) -> None:
        super().__init__(f"the PSP refused charge {charge_id}: {cause}")
        self.charge_id = charge_id


class ChargeNotPayableError(PixError):
    """The sandbox payer cannot pay this charge (not issued yet, expired or failed)."""

    def __init__(self, charge_id: str, cause: str) -> None:
        super().__init__(f"charge {charge_id} cannot be paid: {cause}")
        self.charge_id = charge_id


class SandboxOnlyError(PixError):
    """A sandbox-only operation was asked of a real PSP."""

    def __init__(self, psp: str) -> None:
        super().__init__(f"paying on demand needs PULSO_PSP=sandbox; this server uses {psp}")
        self.psp = psp


# ------------------------------------------------------------------------- the record


@dataclass(frozen=True, slots=True)
class Charge:
    """One row of ``pix_charges``; field order is the table's column order."""

    charge_id: str
    txid: str
    idempotency_key: str
    request_hash: str
    store_id: str
    city: str
    uf: str
    amount_cents: int
    description: str
    payer_email: str | None
    payer_document: str | None  # CPF/CNPJ digits: never logged, never in an API answer
    status: ChargeStatus
    psp: str
    psp_payment_id: str | None
    psp_status: str | None
    brcode: str | None
    end_to_end_id: str | None
    failure_reason: str | None
    paid_cents: int | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    checked_at: datetime | None
    updated_at: datetime

    def __repr__(self) -> str:  # the default repr would print the payer's document
        return f"Charge({self.charge_id}, {self.status}, store={self.store_id})"

    @property
    def amount(self) -> Decimal:
        return from_cents(self.amount_cents).quantize(CENT)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def psp_request(self) -> ChargeRequest:
        return ChargeRequest(
            amount=self.amount,
            description=self.description,
            txid=self.txid,
            store_id=self.store_id,
            expires_at=self.expires_at,
            payer_email=self.payer_email,
            payer_document=self.payer_document,
        )


CHARGE_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Charge))
assert PIX_CHARGES.column_names == CHARGE_COLUMNS, "Charge must mirror pix_charges"
_SELECT_CHARGES: Final = f"SELECT {column_list(CHARGE_COLUMNS)} FROM pix_charges"
_TIME_COLUMNS: Final = tuple(
    i for i, c in enumerate(PIX_CHARGES.columns) if c.type == "timestamptz"
)


def charge_from_row(row: Sequence[Any]) -> Charge:
    values = list(row)
    for i in _TIME_COLUMNS:
        if values[i] is not None:
            values[i] = values[i].astimezone(UTC)
    return Charge(*values)


def charges_to_columns(charges: Sequence[Charge]) -> ColumnBatch:
    rows = [astuple(c) for c in charges]
    return {name: [row[i] for row in rows] for i, name in enumerate(CHARGE_COLUMNS)}


@dataclass(frozen=True, slots=True)
class NewCharge:
    """A validated request for a charge (the API's input schema becomes this)."""

    amount: Decimal
    description: str
    store_id: str
    payer_email: str | None = None
    payer_document: str | None = None  # digits only
    expires_in_s: int = DEFAULT_EXPIRES_IN_S

    def __repr__(self) -> str:
        return f"NewCharge(amount={self.amount}, store_id={self.store_id!r})"

    def fingerprint(self) -> str:
        """What makes two requests "the same body" for an idempotency key."""
        canonical = orjson.dumps(
            [
                f"{self.amount.quantize(CENT)}",
                self.description,
                self.store_id,
                self.payer_email,
                self.payer_document,
                self.expires_in_s,
            ]
        )
        return hashlib.sha256(canonical).hexdigest()


def charge_id_for(idempotency_key: str) -> str:
    """The charge id an idempotency key names: the same key can only ever create one."""
    return str(uuid.uuid5(CHARGE_ID_NAMESPACE, idempotency_key))


def draft_charge(
    new: NewCharge, store: StoreInfo, *, psp: str, idempotency_key: str | None, now: datetime
) -> Charge:
    """The ``creating`` record of a new charge (without a client key, a random one)."""
    key = idempotency_key or f"auto:{uuid7()}"
    return Charge(
        charge_id=charge_id_for(key),
        txid=uuid7().hex,  # unique per draft: tells a stored charge from a new one
        idempotency_key=key,
        request_hash=new.fingerprint(),
        store_id=store.store_id,
        city=store.city,
        uf=store.uf,
        amount_cents=to_cents(new.amount),
        description=new.description,
        payer_email=new.payer_email,
        payer_document=new.payer_document,
        status="creating",
        psp=psp,
        psp_payment_id=None,
        psp_status=None,
        brcode=None,
        end_to_end_id=None,
        failure_reason=None,
        paid_cents=None,
        created_at=now,
        expires_at=now + timedelta(seconds=new.expires_in_s),
        confirmed_at=None,
        failed_at=None,
        expired_at=None,
        checked_at=None,
        updated_at=now,
    )


# ---------------------------------------------------------------------- transitions
# Pure functions: the charge as it should be, or None when nothing changes. The ledger runs
# them under its single writer, so each one sees the latest stored state.

Change = Callable[[Charge], Charge | None]


def _changed(before: Charge, after: Charge, now: datetime) -> Charge | None:
    if replace(after, updated_at=before.updated_at) == before:
        return None
    return replace(after, updated_at=now)


def _moved(charge: Charge, target: ChargeStatus, now: datetime, **facts: Any) -> Charge:
    """``charge`` in ``target`` status with the timestamp of that status set once."""
    stamp = {"confirmed": "confirmed_at", "failed": "failed_at", "expired": "expired_at"}
    column = stamp.get(target)
    if column is not None and getattr(charge, column) is None:
        facts.setdefault(column, now)
    return replace(charge, status=target, **facts)


def follow_psp(psp_charge: PSPCharge, now: datetime) -> Change:
    """The change that brings a charge in line with what the PSP reports."""

    def change(charge: Charge) -> Charge | None:
        after = replace(
            charge,
            psp_payment_id=charge.psp_payment_id or psp_charge.psp_payment_id,
            psp_status=psp_charge.status,
            brcode=charge.brcode or psp_charge.brcode or None,
        )
        target = _PSP_TARGET[psp_charge.status]
        if target is not None and target in _NEXT[charge.status]:
            after = _moved(after, target, now, **_psp_facts(target, psp_charge, now))
        return _changed(charge, after, now)

    return change


def _psp_facts(target: ChargeStatus, psp_charge: PSPCharge, now: datetime) -> dict[str, Any]:
    if target == "confirmed":
        return {
            "confirmed_at": psp_charge.paid_at or now,
            "paid_cents": to_cents(psp_charge.amount.quantize(CENT)),
            "end_to_end_id": psp_charge.end_to_end_id,
        }
    if target == "failed":
        reason = f"{psp_charge.status}: {psp_charge.status_detail}"
        return {"failure_reason": reason[:_MAX_REASON_CHARS]}
    return {}


def fail_creation(reason: str, now: datetime) -> Change:
    """The PSP refused to issue the charge."""

    def change(charge: Charge) -> Charge | None:
        if charge.status != "creating":
            return None
        return _changed(
            charge, _moved(charge, "failed", now, failure_reason=reason[:_MAX_REASON_CHARS]), now
        )

    return change


def expire_if_due(now: datetime) -> Change:
    """An unpaid charge past its expiry expires."""

    def change(charge: Charge) -> Charge | None:
        if charge.status != "pending" or now < charge.expires_at:
            return None
        return _changed(charge, _moved(charge, "expired", now), now)

    return change


# -------------------------------------------------------------------------- events


def _lifecycle(charge: Charge) -> list[str]:
    """The statuses a charge in its status has announced: created (once issued), its end."""
    if charge.status == "creating" or charge.psp_payment_id is None:
        return []
    return ["pending"] if charge.status == "pending" else ["pending", charge.status]


def transition_events(before: Charge | None, after: Charge) -> list[Event]:
    """The lifecycle events that moving from ``before`` to ``after`` announces."""
    announced = set(_lifecycle(before)) if before is not None else set()
    return [lifecycle_event(after, s) for s in _lifecycle(after) if s not in announced]


def lifecycle_event(charge: Charge, status: str) -> Event:
    """The event announcing that ``charge`` reached ``status``.

    Its id depends only on the charge and the event type (time part: the charge's creation),
    so announcing the same step twice (a retried batch) gives the same id, which the
    pipeline stores once.
    """
    payload, occurred_at = _payload(charge, status)
    digest = hashlib.blake2b(
        f"{charge.charge_id}|{_EVENT_TYPES[status]}".encode(), digest_size=10
    ).digest()
    event_id = uuid7(int(charge.created_at.timestamp() * 1000), int.from_bytes(digest, "big"))
    return new_event(
        payload,
        source=EVENT_SOURCE,
        key=charge.charge_id,
        occurred_at=occurred_at,
        event_id=event_id,
    )


def _payload(charge: Charge, status: str) -> tuple[Payload, datetime]:
    if status == "pending":
        return _created_payload(charge), charge.created_at
    if status == "confirmed":
        at = charge.confirmed_at or charge.updated_at
        paid = from_cents(charge.paid_cents) if charge.paid_cents else charge.amount
        confirmed = ChargeConfirmed(
            charge_id=charge.charge_id,
            confirmed_at=at,
            amount_paid=paid,
            end_to_end_id=charge.end_to_end_id or "",
        )
        return confirmed, at
    if status == "failed":
        at = charge.failed_at or charge.updated_at
        reason = charge.failure_reason or "failed"
        return ChargeFailed(charge_id=charge.charge_id, failed_at=at, reason=reason), at
    at = charge.expired_at or charge.updated_at
    return ChargeExpired(charge_id=charge.charge_id, expired_at=at), at


def _created_payload(charge: Charge) -> ChargeCreated:
    return ChargeCreated(
        charge_id=charge.charge_id,
        txid=charge.txid,
        store_id=charge.store_id,
        city=charge.city,
        uf=charge.uf,
        amount=charge.amount,
        created_at=charge.created_at,
        expires_at=charge.expires_at,
        psp=charge.psp,
        description=charge.description,
        payer_document=charge.payer_document,
    )


# -------------------------------------------------------------------------- ledger


@dataclass(frozen=True, slots=True)
class Reservation:
    """A charge recorded for an idempotency key; ``created`` is False when the key was known."""

    charge: Charge
    created: bool


@dataclass(frozen=True, slots=True)
class Update:
    """A charge after a change; ``changed`` is False when the change had nothing to do."""

    charge: Charge
    changed: bool


@dataclass(slots=True)
class _Reserve:
    charge: Charge
    future: Future[Reservation]


@dataclass(slots=True)
class _Update:
    charge_id: str
    change: Change
    future: Future[Update]


@dataclass(slots=True)
class _Touch:
    charge_ids: list[str]
    at: datetime
    future: Future[None]


_Op = _Reserve | _Update | _Touch
_T = TypeVar("_T")
ChangeListener = Callable[[Sequence[Charge]], None]


@dataclass(slots=True)
class _Batch:
    """What one transaction does: results per op, and each charge it touches as it was
    before the batch (None: inserted by it), as the table holds it now, and as it ends."""

    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    before: dict[str, Charge | None] = field(default_factory=dict)
    stored: dict[str, Charge] = field(default_factory=dict)
    after: dict[str, Charge] = field(default_factory=dict)

    def found(self, charge: Charge, *, inserted: bool = False) -> None:
        """``charge`` is in the table now (read, or inserted by this batch)."""
        self.before.setdefault(charge.charge_id, None if inserted else charge)
        self.stored.setdefault(charge.charge_id, charge)
        self.after.setdefault(charge.charge_id, charge)

    def changed(self) -> list[Charge]:
        """Charges whose status or facts this batch changed, at their final state."""
        return [c for i, c in self.after.items() if c != self.before[i]]

    def unwritten(self) -> list[Charge]:
        """Changes the table does not hold yet."""
        return [c for i, c in self.after.items() if c != self.stored[i]]


class ChargeLedger:
    """The ``pix_charges`` table behind one writer thread that group-commits operations.

    On DuckDB, where one process owns the file and every write to ``pix_charges`` passes
    through this writer, the writer keeps the charges it wrote or read in a bounded cache:
    reads and the state a change starts from come from memory (each DuckDB statement costs
    ~2 ms here). On PostgreSQL other processes may write too, so rows are read under
    ``SELECT ... FOR UPDATE`` instead (``cache_size=0``).
    """

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_batch: int = 1024,
        cache_size: int | None = None,
        listeners: Iterable[ChangeListener] = (),
    ) -> None:
        self._store = store
        self._bus = bus
        self._max_batch = max_batch
        default_cache = DEFAULT_CACHE_SIZE if store.dialect == "duckdb" else 0
        self._cache_size = default_cache if cache_size is None else cache_size
        self._listeners = list(listeners)
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        # Written by the writer thread only; other threads only look things up.
        self._cache: dict[str, Charge] = {}
        self._by_psp: dict[tuple[str, str], str] = {}
        self.bus_error: str | None = None  # the last publish failure, until one succeeds

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="pulso-charge-writer", daemon=True
                )
                self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued operations, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout=timeout_s)

    # --- writes (any thread) -----------------------------------------------------------

    def reserve(self, charge: Charge) -> Future[Reservation]:
        """Record a ``creating`` charge, or find the charge its idempotency key created."""
        future: Future[Reservation] = Future()
        return self._submit(_Reserve(charge, future), future)

    def update(self, charge_id: str, change: Change) -> Future[Update]:
        """Apply ``change`` to the stored charge (ChargeNotFoundError when there is none)."""
        future: Future[Update] = Future()
        return self._submit(_Update(charge_id, change, future), future)

    def touch(self, charge_ids: Sequence[str], at: datetime) -> Future[None]:
        """Record that the reconciler checked these charges with the PSP at ``at``."""
        future: Future[None] = Future()
        return self._submit(_Touch(list(charge_ids), at, future), future)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every operation submitted before this call has committed."""
        self.touch([], datetime.now(UTC)).result(timeout=timeout_s)

    def _submit(self, op: _Op, future: Future[_T]) -> Future[_T]:
        if self._closed or self._thread is None:
            future.set_exception(StoreError("the charge ledger is not running; start it first"))
        else:
            self._queue.put(op)
        return future

    # --- reads (any thread) ------------------------------------------------------------

    def get(self, charge_id: str) -> Charge | None:
        cached = self._cache.get(charge_id)
        if cached is not None:
            return cached
        rows = self._store.query(f"{_SELECT_CHARGES} WHERE charge_id = %s", (charge_id,))
        return charge_from_row(rows[0]) if rows else None

    def find_by_psp(self, psp: str, psp_payment_id: str) -> Charge | None:
        charge_id = self._by_psp.get((psp, psp_payment_id))
        if charge_id is not None:
            return self.get(charge_id)
        rows = self._store.query(
            f"{_SELECT_CHARGES} WHERE psp = %s AND psp_payment_id = %s", (psp, psp_payment_id)
        )
        return charge_from_row(rows[0]) if rows else None

    def select(self, where: str, params: Sequence[Any], *, limit: int) -> list[Charge]:
        """Charges matching a ``WHERE`` clause written for the store's dialect."""
        rows = self._store.query(f"{_SELECT_CHARGES} WHERE {where} LIMIT {int(limit)}", params)
        return [charge_from_row(row) for row in rows]

    # --- the writer --------------------------------------------------------------------

    def _run(self) -> None:
        while (ops := self._next_ops()) is not None:
            self._commit(ops)

    def _next_ops(self) -> list[_Op] | None:
        """The next batch: blocks for the first op, then takes what else is queued."""
        ops: list[_Op] = []
        item = self._queue.get()
        while item is not None:
            ops.append(item)
            if len(ops) >= self._max_batch:
                return ops
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return ops
        if ops:  # closing: commit what came before the stop, then stop
            self._commit(ops)
        return None

    def _commit(self, ops: list[_Op]) -> None:
        """One transaction for the batch. Its events are published before the commit: a
        failed publish rolls the batch back, and a failed commit after a publish is
        repaired by the retry (same event ids), so no change is stored unannounced."""
        try:
            with self._store.transaction() as tx:
                batch = self._apply(tx, ops)
                self._publish(batch)
        except Exception as e:  # the store or the bus failed: every op fails with it
            log.error("charge ledger: a batch of %s operations failed: %s", len(ops), e)
            for op in ops:
                op.future.set_exception(e)
            return
        self._remember(batch)
        self._notify(batch.changed())
        _resolve(ops, batch)

    def _apply(self, tx: StoreTx, ops: list[_Op]) -> _Batch:
        batch = _Batch()
        reserves = [op for op in ops if isinstance(op, _Reserve)]
        if reserves:
            self._reserve(tx, reserves, batch)
        updates = [op for op in ops if isinstance(op, _Update)]
        if updates:
            self._update(tx, updates, batch)
        for touch in (op for op in ops if isinstance(op, _Touch)):
            self._touch(tx, touch, batch)
        return batch

    def _reserve(self, tx: StoreTx, ops: list[_Reserve], batch: _Batch) -> None:
        """Insert the drafts whose id (derived from the idempotency key) is new; a draft
        whose id is stored, or taken earlier in this batch, gets the stored charge."""
        firsts: dict[str, Charge] = {}
        for op in ops:
            firsts.setdefault(op.charge.charge_id, op.charge)
        inserted = tx.insert_new(PIX_CHARGES, _known_columns(list(firsts.values())))
        # The usual case: every key is new, and nothing needs reading back.
        stored = firsts if inserted == len(firsts) else _fetch_charges(tx, list(firsts))
        for op in ops:
            charge = stored.get(op.charge.charge_id)
            if charge is None:
                batch.errors[id(op)] = StoreError(f"charge {op.charge.charge_id} vanished")
                continue
            # txids are unique per draft: the stored one tells whose draft was inserted.
            created = charge.txid == op.charge.txid
            batch.found(charge, inserted=created)
            batch.results[id(op)] = Reservation(charge, created=created)

    def _update(self, tx: StoreTx, ops: list[_Update], batch: _Batch) -> None:
        current = self._current(tx, {op.charge_id for op in ops}, batch)
        for op in ops:
            charge = current.get(op.charge_id)
            if charge is None:
                batch.errors[id(op)] = ChargeNotFoundError(op.charge_id)
                continue
            try:
                after = op.change(charge)
            except Exception as e:  # a faulty change fails its own op, not the batch
                batch.errors[id(op)] = e
                continue
            if after is None:
                batch.results[id(op)] = Update(charge, changed=False)
            else:
                current[op.charge_id] = batch.after[op.charge_id] = after
                batch.results[id(op)] = Update(after, changed=True)
        unwritten = batch.unwritten()
        if unwritten:
            columns = _changed_columns(unwritten, batch.stored)
            sql = _update_sql(len(unwritten), self._store.dialect, columns)
            tx.execute(sql, _update_params(unwritten, columns))
            batch.stored.update((c.charge_id, c) for c in unwritten)

    def _current(self, tx: StoreTx, charge_ids: set[str], batch: _Batch) -> dict[str, Charge]:
        """The latest state of these charges: this batch's writes, the cache, the table."""
        for charge_id in charge_ids - batch.after.keys():
            cached = self._cache.get(charge_id) if self._cache_size else None
            if cached is not None:
                batch.found(cached)
        missing = sorted(charge_ids - batch.after.keys())
        if missing:
            # Row locks matter on PostgreSQL, where other API processes may share the table.
            lock = " FOR UPDATE" if self._store.dialect == "postgresql" else ""
            rows = tx.fetch(f"{_SELECT_CHARGES} WHERE charge_id = ANY(%s){lock}", (missing,))
            for row in rows:
                batch.found(charge_from_row(row))
        return {i: batch.after[i] for i in charge_ids if i in batch.after}

    def _touch(self, tx: StoreTx, op: _Touch, batch: _Batch) -> None:
        batch.results[id(op)] = None
        if not op.charge_ids:
            return
        tx.execute(
            "UPDATE pix_charges SET checked_at = %s WHERE charge_id = ANY(%s)",
            (op.at, op.charge_ids),
        )
        for charge_id in op.charge_ids:  # keeps the cache exact; not a change to announce
            known = batch.after.get(charge_id) or self._cache.get(charge_id)
            if known is None:
                continue
            batch.found(known)
            before = batch.before[charge_id]
            batch.before[charge_id] = None if before is None else replace(before, checked_at=op.at)
            batch.stored[charge_id] = replace(batch.stored[charge_id], checked_at=op.at)
            batch.after[charge_id] = replace(batch.after[charge_id], checked_at=op.at)

    def _publish(self, batch: _Batch) -> None:
        records: list[Record] = []
        for charge in batch.changed():
            for event in transition_events(batch.before.get(charge.charge_id), charge):
                records.append((charge.charge_id.encode(), encode_event(event)))
        if not records:
            return
        try:
            self._bus.publish(Topic.PAYMENTS, records)
        except Exception as e:
            self.bus_error = f"{type(e).__name__}: {e}"
            raise
        self.bus_error = None

    def _remember(self, batch: _Batch) -> None:
        """After a commit: cache what the batch wrote or read, index PSP payment ids."""
        for charge in batch.after.values():
            if charge.psp_payment_id is not None:
                self._by_psp[(charge.psp, charge.psp_payment_id)] = charge.charge_id
            if self._cache_size:
                self._cache.pop(charge.charge_id, None)  # re-insert: newest last
                self._cache[charge.charge_id] = charge
        _trim(self._by_psp, max(self._cache_size, DEFAULT_CACHE_SIZE))
        _trim(self._cache, self._cache_size)

    def _notify(self, changed: list[Charge]) -> None:
        if not changed:
            return
        for listener in self._listeners:
            try:
                listener(changed)
            except Exception:  # a listener (WebSocket hub, metrics) must not stop the writer
                log.exception("charge ledger: a change listener failed")


def _trim(index: dict[Any, Any], size: int) -> None:
    while len(index) > size:  # dicts keep insertion order: the oldest goes first
        del index[next(iter(index))]


def _fetch_charges(tx: StoreTx, charge_ids: list[str]) -> dict[str, Charge]:
    rows = tx.fetch(f"{_SELECT_CHARGES} WHERE charge_id = ANY(%s)", (charge_ids,))
    return {str(row[0]): charge_from_row(row) for row in rows}


_MUTABLE_COLUMNS: Final = tuple(
    c for c in PIX_CHARGES.columns if c.merge == "replace" and c.name != "checked_at"
)


def _known_columns(charges: list[Charge]) -> ColumnBatch:
    """The columns of ``charges`` that are not NULL in every row (a DuckDB write costs more
    with each column it carries; the others default to NULL)."""
    columns = charges_to_columns(charges)
    return {name: values for name, values in columns.items() if any(v is not None for v in values)}


def _changed_columns(charges: list[Charge], stored: Mapping[str, Charge]) -> tuple[Column, ...]:
    """The mutable columns in which any of ``charges`` differs from the stored row."""
    return tuple(
        c
        for c in _MUTABLE_COLUMNS
        if any(getattr(x, c.name) != getattr(stored[x.charge_id], c.name) for x in charges)
    )


@lru_cache(maxsize=512)
def _update_sql(rows: int, dialect: Dialect, columns: tuple[Column, ...]) -> str:
    """One ``UPDATE ... FROM (VALUES ...)`` of ``columns`` for ``rows`` charges (the casts
    type the NULLs, which PostgreSQL would otherwise read as text)."""
    names = ["charge_id", *(c.name for c in columns)]
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    sets = ", ".join(
        f"{quote(c.name)} = CAST(v.{quote(c.name)} AS {column_type(c.type, dialect)})"
        for c in columns
    )
    return (
        f"UPDATE pix_charges SET {sets} FROM (VALUES {', '.join([row] * rows)})"
        f" AS v({column_list(names)}) WHERE pix_charges.charge_id = v.charge_id"
    )


def _update_params(charges: list[Charge], columns: tuple[Column, ...]) -> list[Any]:
    names = ["charge_id", *(c.name for c in columns)]
    return [getattr(charge, name) for charge in charges for name in names]


def _resolve(ops: list[_Op], batch: _Batch) -> None:
    for op in ops:
        error = batch.errors.get(id(op))
        future: Future[Any] = op.future
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(batch.results.get(id(op)))


# -------------------------------------------------------------------------- service


@dataclass(frozen=True, slots=True)
class ChargeCreation:
    """The charge an API call issued (``created``: an earlier call with the key did not
    finish, or there was none), or found already issued for its idempotency key."""

    charge: Charge
    created: bool


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What a verified notification did: ``applied``, ``unchanged`` or ``ignored``."""

    outcome: Literal["applied", "unchanged", "ignored"]
    charge_id: str | None = None


class ChargeService:
    """The PIX charge use cases the API, the reconciler and the CLI share."""

    def __init__(
        self,
        ledger: ChargeLedger,
        psp: PSP,
        registry: StoreRegistry,
        *,
        clock: Clock = utc_now,
        write_timeout_s: float = 10.0,
    ) -> None:
        self.ledger = ledger
        self.psp = psp
        self.registry = registry
        self.clock = clock
        self._write_timeout_s = write_timeout_s
        # Issued charges whose "pending" update is not committed yet (see create_async), by
        # charge id and by PSP payment id (a webhook may arrive before that commit).
        self._issuing: dict[str, Charge] = {}
        self._issuing_by_psp: dict[tuple[str, str], Charge] = {}

    def create(self, new: NewCharge, *, idempotency_key: str | None = None) -> ChargeCreation:
        """Create a charge, or return the one this idempotency key already created."""
        draft = self._draft(new, idempotency_key)
        reservation = self._wait(self.ledger.reserve(draft))
        known = _known_charge(reservation, draft)
        if known is not None:
            return known
        return ChargeCreation(self.issue(reservation.charge), created=True)

    async def create_async(
        self, new: NewCharge, *, idempotency_key: str | None = None
    ) -> ChargeCreation:
        """:meth:`create` for an event loop, answering as soon as the PSP has issued the
        charge: the ``creating`` record is committed before the PSP call, as always, but the
        ``pending`` update is not waited for (it commits in the next batch; until then
        :meth:`get` answers from memory). Should that commit fail, the charge stays
        ``creating`` and the reconciler (or a retry with the same key) issues it again at
        the PSP, which returns the same charge: nothing is lost or doubled, and each request
        waits for one store commit instead of two (measured: ~2× the charges per second).
        Only the PSP call, which may block, runs on a worker thread."""
        draft = self._draft(new, idempotency_key)
        reservation = await self._wait_async(self.ledger.reserve(draft))
        known = _known_charge(reservation, draft)
        if known is not None:
            return known
        charge = reservation.charge
        change = await asyncio.to_thread(self._issue_change, charge)
        return ChargeCreation(self._update_behind(charge, change), created=True)

    def _update_behind(self, charge: Charge, change: Change) -> Charge:
        """Submit ``change`` and return the charge it will make, readable at once."""
        issued = change(charge) or charge
        psp_key = (issued.psp, issued.psp_payment_id or "")
        self._issuing[charge.charge_id] = issued
        self._issuing_by_psp[psp_key] = issued
        future = self.ledger.update(charge.charge_id, change)

        def settled(done: Future[Update]) -> None:
            if self._issuing.get(charge.charge_id) is issued:
                del self._issuing[charge.charge_id]
            if self._issuing_by_psp.get(psp_key) is issued:
                del self._issuing_by_psp[psp_key]
            if done.exception() is not None:
                log.warning(
                    "charge %s: recording its issue failed (%s); the reconciler re-issues it",
                    charge.charge_id,
                    done.exception(),
                )

        future.add_done_callback(settled)
        return issued

    def issue(self, charge: Charge) -> Charge:
        """Ask the PSP for a ``creating`` charge (idempotent at the PSP by charge id)."""
        change = self._issue_change(charge)
        return self._wait(self.ledger.update(charge.charge_id, change)).charge

    def _draft(self, new: NewCharge, idempotency_key: str | None) -> Charge:
        store = self.registry.require(new.store_id)
        return draft_charge(
            new, store, psp=self.psp.name, idempotency_key=idempotency_key, now=self.clock()
        )

    def _issue_change(self, charge: Charge) -> Change:
        """Call the PSP; the change that records its answer (a refusal is recorded here)."""
        try:
            psp_charge = self.psp.create_charge(
                charge.psp_request(), idempotency_key=charge.charge_id
            )
        except PSPUnavailableError as e:
            raise ChargeCreationPendingError(charge.charge_id, str(e)) from e
        except PSPError as e:
            self._wait(self.ledger.update(charge.charge_id, fail_creation(str(e), self.clock())))
            raise ChargeRefusedError(charge.charge_id, str(e)) from e
        return follow_psp(psp_charge, self.clock())

    def get(self, charge_id: str) -> Charge:
        charge = self._issuing.get(charge_id) or self.ledger.get(charge_id)
        if charge is None:
            raise ChargeNotFoundError(charge_id)
        return charge

    def follow(self, charge_id: str, psp_charge: PSPCharge) -> Update:
        """Bring the stored charge in line with the PSP's view of it."""
        return self._wait(self.ledger.update(charge_id, follow_psp(psp_charge, self.clock())))

    def refresh(self, charge: Charge) -> Update:
        """Re-read a charge from the PSP and follow it."""
        if charge.psp_payment_id is None:
            return Update(charge, changed=False)
        return self.follow(charge.charge_id, self.psp.get_charge(charge.psp_payment_id))

    def expire(self, charge_id: str) -> Update:
        return self._wait(self.ledger.update(charge_id, expire_if_due(self.clock())))

    def handle_notification(
        self, headers: Mapping[str, str], body: bytes, *, query_data_id: str | None
    ) -> WebhookOutcome:
        """Verify a PSP webhook, then re-read the payment from the PSP (the body only names
        it) and follow it. Raises WebhookSignatureError when the notification is not genuine."""
        notification = self.psp.read_notification(headers, body, query_data_id=query_data_id)
        charge = self._charge_of(notification)
        if charge is None:
            return WebhookOutcome("ignored")
        update = self.refresh(charge)
        return WebhookOutcome("applied" if update.changed else "unchanged", charge.charge_id)

    def pay_in_sandbox(self, charge_id: str) -> Charge:
        """Play the payer (sandbox PSP only); the confirmation comes back by webhook."""
        if not isinstance(self.psp, SimulatedPayer):
            raise SandboxOnlyError(self.psp.name)
        charge = self.get(charge_id)
        if charge.psp_payment_id is None:
            raise ChargeNotPayableError(charge_id, f"it is {charge.status}, not issued yet")
        try:
            self.psp.pay(charge.psp_payment_id)
        except PSPError as e:
            raise ChargeNotPayableError(charge_id, str(e)) from e
        return charge

    def _charge_of(self, notification: Notification) -> Charge | None:
        if not notification.action.startswith("payment"):
            log.info("webhook %s ignored: not about a payment", notification.action)
            return None
        key = (notification.psp, notification.psp_payment_id)
        charge = self._issuing_by_psp.get(key) or self.ledger.find_by_psp(*key)
        if charge is None:
            # Not one of ours, or its issue has not committed yet: the reconciler catches up.
            log.info(
                "webhook for unknown %s payment %s ignored",
                notification.psp,
                notification.psp_payment_id,
            )
        return charge

    def _wait(self, future: Future[_T]) -> _T:
        try:
            return future.result(timeout=self._write_timeout_s)
        except TimeoutError as e:
            raise self._write_timeout() from e

    async def _wait_async(self, future: Future[_T]) -> _T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._write_timeout_s)
        except TimeoutError as e:
            raise self._write_timeout() from e

    def _write_timeout(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the store did not commit a charge write within {self._write_timeout_s:.0f} s; "
            "check the database (PULSO_STORE_URL) and retry with the same Idempotency-Key"
        )


def _known_charge(reservation: Reservation, draft: Charge) -> ChargeCreation | None:
    """What an idempotency key that was already used answers, or None to go on issuing."""
    charge = reservation.charge
    if reservation.created:
        return None
    if charge.request_hash != draft.request_hash:
        raise IdempotencyConflictError(charge.charge_id)
    if charge.status == "creating":  # an earlier attempt did not finish: finish it now
        return None
    return ChargeCreation(charge, created=False)
