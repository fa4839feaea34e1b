"""Building the dispatcher from the settings, and running it on a thread (``pulso up``)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from pulso.alerts.dispatcher import AlertDispatcher, DispatchConfig
from pulso.notify import Notifier, notifiers_from_settings

if TYPE_CHECKING:
    from pulso.bus.protocol import Bus
    from pulso.config import Settings
    from pulso.store.protocol import Store

log = logging.getLogger(__name__)


def alert_notifiers(settings: Settings) -> list[Notifier]:
    """The channels alerts go to: ``PULSO_ALERT_CHANNELS`` (empty: every configured one,
    ``none``: no channel; naming a channel that is not configured is a ConfigError)."""
    names = [c for c in settings.alert_channels.split(",") if c]
    if "none" in names:
        return []
    return notifiers_from_settings(settings, names or None)


def dispatcher_from_settings(settings: Settings, store: Store, bus: Bus | None) -> AlertDispatcher:
    return AlertDispatcher(
        store, bus, alert_notifiers(settings), DispatchConfig.from_settings(settings)
    )


class AlertThread:
    """The dispatcher on a background thread, stopped by an event; :meth:`problem` is a
    readiness check (None while passes succeed)."""

    def __init__(self, dispatcher: AlertDispatcher) -> None:
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="pulso-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def problem(self) -> str | None:
        if self._failure is not None:
            return self._failure
        return None if self._thread.is_alive() else "not running"

    def wake(self) -> None:
        """A batch that may have written alert rows has committed: look now (the pipeline
        thread of ``pulso up`` calls this after each batch; see ``AlertDispatcher.wake``)."""
        self.dispatcher.wake()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self.dispatcher.wake()  # seen at once, not at the end of the poll wait
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _note(self, failure: str | None) -> None:
        self._failure = failure

    def _run(self) -> None:
        try:
            self.dispatcher.run(self._stop, on_error=self._note)
        except Exception as e:  # reported by /readyz; the API keeps serving
            self._failure = f"{type(e).__name__}: {e}"
            log.exception("the alert dispatcher stopped")
