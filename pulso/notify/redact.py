"""Keeping tokens and webhook URLs out of messages and logs.

The Telegram token travels in the URL path (``/bot<token>/sendMessage``) and a Slack incoming
webhook URL is itself the secret; httpx logs every request URL at INFO level. Each notifier
registers its secrets here, and a filter on the ``httpx`` and ``httpcore`` loggers masks them.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

MASK: Final = "********"
_HTTP_LOGGERS: Final = ("httpx", "httpcore")


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by a mask (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


class _SecretFilter(logging.Filter):
    """Rewrites log records that mention a registered secret."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, secrets: tuple[str, ...]) -> None:
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = tuple(self._secrets)
        if not secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER: Final = _SecretFilter()
_installed = False
_install_lock = threading.Lock()


def hide_in_http_logs(*secrets: str) -> None:
    """Mask these secrets in everything the HTTP client logs."""
    global _installed
    _FILTER.add(secrets)
    with _install_lock:
        if not _installed:
            for name in _HTTP_LOGGERS:
                logging.getLogger(name).addFilter(_FILTER)
            _installed = True
