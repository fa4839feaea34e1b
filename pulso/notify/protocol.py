"""The one protocol every delivery channel (e-mail, Telegram, Slack) implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pulso.notify.message import Notification


@dataclass(frozen=True, slots=True)
class SendResult:
    """A send that went through, with what it could not do (e.g. attachments skipped)."""

    warnings: tuple[str, ...] = ()


@runtime_checkable
class Notifier(Protocol):
    """A delivery channel.

    ``send`` makes one attempt and raises a :class:`~pulso.notify.errors.NotifyError`
    subclass that says whether retrying can help; :func:`pulso.notify.delivery.deliver` does
    the retrying. Sends of several parts (text, pictures, PDF) remember which parts of a
    notification went through, so a retry does not repeat them. No message carries a secret.
    """

    name: str

    def send(self, notification: Notification) -> SendResult: ...
