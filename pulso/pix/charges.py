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
PSP has issued the charge, leaving the ``pending`` update to a later batch, which the ledger
may hold back up to a quarter of a second so that many share one statement (see there).

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
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pulso.errors import StoreUnavailableError
from pulso.pix.charge import (
    Change,
    Charge,
    ChargeCreationPendingError,
    ChargeNotPayableError,
    ChargeRefusedError,
    Clock,
    IdempotencyConflictError,
    NewCharge,
    SandboxOnlyError,
    draft_charge,
    expire_if_due,
    fail_creation,
    follow_psp,
    utc_now,
)
from pulso.pix.errors import ChargeNotFoundError, PSPError, PSPUnavailableError
from pulso.pix.ledger import ChargeLedger, Reservation, Update
from pulso.pix.providers.protocol import (
    PSP,
    Notification,
    PSPCharge,
    SimulatedPayer,
    answers_from_memory,
)
from pulso.pix.stores import StoreRegistry

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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
        ``pending`` update is not waited for (it commits with a later batch; until then
        :meth:`get` answers from memory). Should that commit fail, the charge stays
        ``creating`` and the reconciler (or a retry with the same key) issues it again at
        the PSP, which returns the same charge: nothing is lost or doubled, and each request
        waits for one store commit instead of two (measured: ~2× the charges per second).
        A PSP that may block is called on a worker thread; one that answers from memory
        (the sandbox) on the loop itself, which costs less than the hop."""
        draft = self._draft(new, idempotency_key)
        loop = asyncio.get_running_loop()
        reservation = await self._wait_on(loop, self.ledger.reserve_on(loop, draft))
        known = _known_charge(reservation, draft)
        if known is not None:
            return known
        charge = reservation.charge
        if answers_from_memory(self.psp):
            try:
                psp_charge = self._create_at_psp(charge)
            except PSPError as e:  # rare: record a refusal off the loop
                raise await asyncio.to_thread(self._not_issued, charge, e) from e
            change = follow_psp(psp_charge, self.clock())
        else:
            change = await asyncio.to_thread(self._issue_change, charge)
        return ChargeCreation(self._update_behind(loop, charge, change), created=True)

    def _update_behind(
        self, loop: asyncio.AbstractEventLoop, charge: Charge, change: Change
    ) -> Charge:
        """Submit ``change`` (from ``loop``'s thread) and return the charge it will make,
        readable at once."""
        issued = change(charge) or charge
        psp_key = (issued.psp, issued.psp_payment_id or "")
        self._issuing[charge.charge_id] = issued
        self._issuing_by_psp[psp_key] = issued

        def settled(_: Update | None, error: BaseException | None) -> None:
            if self._issuing.get(charge.charge_id) is issued:
                del self._issuing[charge.charge_id]
            if self._issuing_by_psp.get(psp_key) is issued:
                del self._issuing_by_psp[psp_key]
            if error is not None:
                log.warning(
                    "charge %s: recording its issue failed (%s); the reconciler re-issues it",
                    charge.charge_id,
                    error,
                )

        self.ledger.update_later(charge.charge_id, change, settled, loop=loop)
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
            psp_charge = self._create_at_psp(charge)
        except PSPError as e:
            raise self._not_issued(charge, e) from e
        return follow_psp(psp_charge, self.clock())

    def _create_at_psp(self, charge: Charge) -> PSPCharge:
        return self.psp.create_charge(charge.psp_request(), idempotency_key=charge.charge_id)

    def _not_issued(self, charge: Charge, error: PSPError) -> PSPError:
        """What to raise for a charge the PSP did not issue: pending when the PSP could not
        be reached (a retry finishes it), refused otherwise (recorded as failed, here)."""
        if isinstance(error, PSPUnavailableError):
            return ChargeCreationPendingError(charge.charge_id, str(error))
        self._wait(self.ledger.update(charge.charge_id, fail_creation(str(error), self.clock())))
        return ChargeRefusedError(charge.charge_id, str(error))

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

    async def _wait_on(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[_T]) -> _T:
        """``future``, or StoreUnavailableError after the write timeout (a timer on the loop
        costs less than ``asyncio.wait_for``, which wraps the wait in a task)."""
        timer = loop.call_later(self._write_timeout_s, _time_out, future)
        try:
            return await future
        except TimeoutError as e:
            raise self._write_timeout() from e
        finally:
            timer.cancel()

    def _write_timeout(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the store did not commit a charge write within {self._write_timeout_s:.0f} s; "
            "check the database (PULSO_STORE_URL) and retry with the same Idempotency-Key"
        )


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


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
