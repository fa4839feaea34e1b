"""Why a channel could not deliver a notification.

PulsoError
└── NotifyError                 a channel failed (names the channel, says why)
    ├── NotifyUnavailableError  worth retrying: network, timeout, 5xx, rate limit
    └── NotifyRejectedError     retrying will not help: bad credentials, unknown chat, 4xx

Messages never carry a token, password or webhook URL.
"""

from __future__ import annotations

from pulso.errors import PulsoError


class NotifyError(PulsoError):
    """A channel could not deliver a notification."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


class NotifyUnavailableError(NotifyError):
    """A passing failure: the same send may work later."""

    def __init__(self, channel: str, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(channel, reason)
        self.retry_after_s = retry_after_s


class NotifyRejectedError(NotifyError):
    """The service refused the send; fix the setting or the message first."""
