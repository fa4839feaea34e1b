"""Notifications: one message delivered by e-mail, Telegram and Slack.

Build a :class:`Notification`, get the configured channels with
:func:`notifiers_from_settings` and hand both to :func:`deliver`, which retries each failing
channel and never lets one stop the others. Channel modules (``email``, ``telegram``,
``slack``) are imported only when their notifier is built.
"""

from __future__ import annotations

from pulso.notify.delivery import ChannelResult, DeliveryReport, deliver
from pulso.notify.errors import NotifyError, NotifyRejectedError, NotifyUnavailableError
from pulso.notify.factory import (
    CHANNELS,
    ChannelNotConfiguredError,
    configured_channels,
    notifiers_from_settings,
)
from pulso.notify.message import Attachment, Notification
from pulso.notify.protocol import Notifier, SendResult

__all__ = [
    "CHANNELS",
    "Attachment",
    "ChannelNotConfiguredError",
    "ChannelResult",
    "DeliveryReport",
    "Notification",
    "Notifier",
    "NotifyError",
    "NotifyRejectedError",
    "NotifyUnavailableError",
    "SendResult",
    "configured_channels",
    "deliver",
    "notifiers_from_settings",
]
