"""The polling reconciler: the fallback when a webhook is lost, and the clock that expires.

Every ``interval_s`` it

1. re-drives charges stuck in ``creating`` (the PSP timed out and nobody retried): the PSP
   call is repeated with the same idempotency key, so it can only finish the one charge;
2. asks the PSP about pending charges that are due a check (older than ``min_age_s``, not
   checked for ``recheck_s``, soonest expiry first, at most ``batch_limit`` per pass) and
   follows what it says;
3. expires pending charges past their ``expires_at`` that the PSP did not report paid
   (and asks the PSP to cancel them, so a late payment is refused there too).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from pulso.errors import PulsoError
from pulso.pix.charge import Charge, follow_psp
from pulso.pix.charges import ChargeService
from pulso.pix.errors import ChargeNotFoundError, PSPError
from pulso.pix.ledger import Update
from pulso.pix.providers.protocol import PSPCharge

log = logging.getLogger(__name__)

# Charges older than this are not looked at: a charge lives at most a day, so anything older
# that is still open was settled by an earlier pass or needs a person, not a poll.
LOOKBACK: Final = timedelta(days=7)


@dataclass(slots=True)
class ReconcileStats:
    """What one pass did."""

    redriven: int = 0
    checked: int = 0
    changed: int = 0
    expired: int = 0
    errors: int = 0


class Reconciler:
    """Re-checks open charges with the PSP on a schedule, in a background thread."""

    def __init__(
        self,
        service: ChargeService,
        *,
        interval_s: float = 5.0,
        min_age_s: float = 10.0,
        recheck_s: float = 30.0,
        batch_limit: int = 200,
    ) -> None:
        if interval_s <= 0 or batch_limit < 1:
            raise ValueError("interval_s must be > 0 and batch_limit >= 1")
        self._service = service
        self.interval_s = interval_s
        self._min_age = timedelta(seconds=min_age_s)
        self._recheck = timedelta(seconds=recheck_s)
        self._batch_limit = batch_limit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: ReconcileStats | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pulso-reconciler", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def run_once(self) -> ReconcileStats:
        """One pass over the open charges."""
        stats = ReconcileStats()
        for charge in self._stale_creating():
            self._redrive(charge, stats)
        due = self._due_for_check()
        if due:
            self._check_all(due, stats)
        for charge in self._overdue():
            self._expire(charge, stats)
        self.last = stats
        return stats

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                stats = self.run_once()
            except PulsoError as e:  # the store or the PSP is down: try again next tick
                log.warning("reconciler pass failed: %s", e)
                continue
            if stats.redriven or stats.changed or stats.expired or stats.errors:
                log.info("reconciler: %s", stats)

    # --- what to look at -------------------------------------------------------------

    def _stale_creating(self) -> list[Charge]:
        now = self._service.clock()
        return self._service.ledger.select(
            "status = 'creating' AND created_at >= %s AND created_at <= %s ORDER BY created_at",
            (now - LOOKBACK, now - self._min_age),
            limit=self._batch_limit,
        )

    def _due_for_check(self) -> list[Charge]:
        now = self._service.clock()
        return self._service.ledger.select(
            "status = 'pending' AND created_at >= %s AND created_at <= %s"
            " AND (checked_at IS NULL OR checked_at <= %s OR expires_at <= %s)"
            " ORDER BY expires_at",
            (now - LOOKBACK, now - self._min_age, now - self._recheck, now),
            limit=self._batch_limit,
        )

    def _overdue(self) -> list[Charge]:
        now = self._service.clock()
        return self._service.ledger.select(
            "status = 'pending' AND created_at >= %s AND expires_at <= %s ORDER BY expires_at",
            (now - LOOKBACK, now),
            limit=self._batch_limit,
        )

    # --- what to do --------------------------------------------------------------------

    def _redrive(self, charge: Charge, stats: ReconcileStats) -> None:
        try:
            self._service.issue(charge)
        except PSPError as e:  # unavailable: next pass; refused: issue() recorded it failed
            stats.errors += 1
            log.warning("reconciler: charge %s not issued yet: %s", charge.charge_id, e)
            return
        stats.redriven += 1

    def _check_all(self, charges: list[Charge], stats: ReconcileStats) -> None:
        """Ask the PSP about each charge, then record every answer in one ledger batch."""
        now = self._service.clock()
        pending: list[Future[Update]] = []
        for charge in charges:
            psp_charge = self._ask_psp(charge, stats)
            if psp_charge is not None:
                pending.append(
                    self._service.ledger.update(charge.charge_id, follow_psp(psp_charge, now))
                )
        pending_touch = self._service.ledger.touch([c.charge_id for c in charges], now)
        stats.checked += len(charges)
        stats.changed += sum(int(f.result().changed) for f in pending)
        pending_touch.result()

    def _ask_psp(self, charge: Charge, stats: ReconcileStats) -> PSPCharge | None:
        if charge.psp_payment_id is None:
            return None
        try:
            return self._service.psp.get_charge(charge.psp_payment_id)
        except ChargeNotFoundError:
            # The PSP does not know it (e.g. a sandbox that restarted): expiry settles it.
            log.warning("reconciler: the PSP does not know charge %s", charge.charge_id)
        except PSPError as e:
            stats.errors += 1
            log.warning("reconciler: PSP check of %s failed: %s", charge.charge_id, e)
        return None

    def _expire(self, charge: Charge, stats: ReconcileStats) -> None:
        update = self._service.expire(charge.charge_id)
        if not update.changed:
            return
        stats.expired += 1
        if charge.psp_payment_id is None:
            return
        try:
            self._service.psp.cancel_charge(charge.psp_payment_id)
        except PSPError as e:  # expired here anyway; the PSP refuses payment after expiry too
            log.warning(
                "reconciler: could not cancel expired %s at the PSP: %s", charge.charge_id, e
            )
