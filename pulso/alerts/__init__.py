"""Alerts after the detectors: throttled into notices, published on the alerts topic and
delivered through the notifier channels (:mod:`pulso.alerts.dispatcher`); read back by the
API, the CLI and the dashboard (:mod:`pulso.alerts.query`)."""

from __future__ import annotations

from pulso.alerts.dispatcher import AlertDispatcher, DispatchConfig, Notice, PassReport
from pulso.alerts.service import AlertThread, alert_notifiers, dispatcher_from_settings

__all__ = [
    "AlertDispatcher",
    "AlertThread",
    "DispatchConfig",
    "Notice",
    "PassReport",
    "alert_notifiers",
    "dispatcher_from_settings",
]
