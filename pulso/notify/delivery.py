"""One notification to every channel: each failure retried, none stopping the others.

Channels are sent to side by side (a thread each), so a slow or failing one delays no other.
A passing failure (:class:`NotifyUnavailableError`) is retried with exponential backoff, or
after the wait the service asked for; a refusal (:class:`NotifyRejectedError`) is final.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from pulso.notify.errors import NotifyError, NotifyUnavailableError
from pulso.notify.factory import notifiers_from_settings
from pulso.notify.message import Notification
from pulso.notify.protocol import Notifier

__all__ = ["ChannelResult", "DeliveryReport", "deliver", "notifiers_from_settings"]

log = logging.getLogger(__name__)

BACKOFF_MAX_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """How one channel fared."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if not self.ok:
            return f"{self.channel}: failed after {tries}: {self.error}"
        notes = "".join(f"; warning: {w}" for w in self.warnings)
        return f"{self.channel}: sent ({tries}){notes}"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Every channel's result, in the order the notifiers were given."""

    notification_id: str
    results: tuple[ChannelResult, ...]

    @property
    def ok(self) -> bool:
        """At least one channel, and every channel delivered."""
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[ChannelResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def result(self, channel: str) -> ChannelResult:
        for result in self.results:
            if result.channel == channel:
                return result
        raise KeyError(channel)

    def describe(self) -> str:
        return "\n".join(r.describe() for r in self.results) or "no channel to send to"


def deliver(
    notification: Notification,
    notifiers: Sequence[Notifier],
    *,
    retries: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send ``notification`` through every notifier.

    ``retries`` is the number of attempts per channel (``PULSO_NOTIFY_RETRIES``; 1 = no
    retry); ``backoff`` the seconds before the second attempt, doubled before each next one
    (at most 60 s) unless the service said how long to wait.
    """
    if retries < 1 or backoff < 0:
        raise ValueError("retries must be >= 1 and backoff >= 0")

    def one(notifier: Notifier) -> ChannelResult:
        return _deliver_one(notification, notifier, retries, backoff, sleep)

    if len(notifiers) <= 1:
        results = [one(n) for n in notifiers]
    else:
        with ThreadPoolExecutor(len(notifiers), thread_name_prefix="pulso-notify") as pool:
            results = list(pool.map(one, notifiers))
    return DeliveryReport(notification.notification_id, tuple(results))


def backoff_s(attempt: int, backoff: float, error: NotifyUnavailableError) -> float:
    """Seconds to wait after failed ``attempt`` (1-based)."""
    if error.retry_after_s is not None:
        return error.retry_after_s
    return min(BACKOFF_MAX_S, backoff * 2.0 ** (attempt - 1))


def _deliver_one(
    notification: Notification,
    notifier: Notifier,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> ChannelResult:
    name, nid = notifier.name, notification.notification_id
    for attempt in range(1, retries + 1):
        try:
            sent = notifier.send(notification)
        except NotifyUnavailableError as e:
            log.warning(
                "notification %s: %s attempt %d/%d failed: %s",
                nid,
                name,
                attempt,
                retries,
                e.reason,
            )
            if attempt == retries:
                return ChannelResult(name, False, attempt, f"{e.reason} (gave up)")
            sleep(backoff_s(attempt, backoff, e))
        except NotifyError as e:
            log.error("notification %s: %s refused: %s", nid, name, e.reason)
            return ChannelResult(name, False, attempt, e.reason)
        except Exception as e:  # a bug in one channel must not cost the others their send
            log.exception("notification %s: %s failed unexpectedly", nid, name)
            return ChannelResult(name, False, attempt, f"unexpected error ({type(e).__name__})")
        else:
            for warning in sent.warnings:
                log.warning("notification %s: %s: %s", nid, name, warning)
            log.info("notification %s: sent by %s (attempt %d)", nid, name, attempt)
            return ChannelResult(name, True, attempt, warnings=sent.warnings)
    raise AssertionError("unreachable: the loop returns on its last attempt")
