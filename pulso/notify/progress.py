"""Which parts of recent notifications a channel already delivered.

A retried send skips those parts, so a PDF that failed does not bring the text message twice.
A notification is forgotten once it is fully sent, so sending it again repeats everything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class Progress:
    """Done parts per notification id, for the last ``keep`` notifications."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._done: OrderedDict[str, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, notification_id: str, part: str, action: Callable[[], None]) -> None:
        """Run ``action`` unless ``part`` of this notification already went through."""
        with self._lock:
            if part in self._done.get(notification_id, ()):
                return
        action()
        with self._lock:
            self._done.setdefault(notification_id, set()).add(part)
            self._done.move_to_end(notification_id)
            while len(self._done) > self._keep:
                self._done.popitem(last=False)

    def finish(self, notification_id: str) -> None:
        with self._lock:
            self._done.pop(notification_id, None)
