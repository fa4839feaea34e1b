"""The archiver on a background thread, for ``pulso up``."""

from __future__ import annotations

import logging
import threading

from pulso.archive import archive_topics, open_archive
from pulso.archive.archiver import Archiver
from pulso.bus.protocol import Bus
from pulso.config import Settings

log = logging.getLogger(__name__)


class ArchiveThread:
    """Runs an :class:`Archiver` until ``stop``; a failure is kept for the readiness check."""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._bucket = open_archive(settings)
        try:
            self._archiver = Archiver(
                bus,
                self._bucket,
                topics=archive_topics(settings),
                batch_size=settings.archive_batch_size,
                poll_timeout_s=settings.archive_poll_s,
                linger_s=settings.archive_linger_s,
            )
        except BaseException:
            self._bucket.close()
            raise
        self._cancel = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="pulso-archive", daemon=True)

    @property
    def url(self) -> str:
        return self._bucket.url

    def start(self) -> None:
        self._thread.start()

    def problem(self) -> str | None:
        """None while the archiver runs; what stopped it otherwise."""
        if self._failure is not None:
            return self._failure
        return None if self._thread.is_alive() else "not running"

    def stop(self, timeout_s: float = 30.0) -> None:
        self._cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._archiver.close()
        self._bucket.close()

    def _run(self) -> None:
        try:
            self._archiver.run(self._cancel)
        except Exception as e:  # reported by /readyz; the API keeps serving
            self._failure = f"{type(e).__name__}: {e}"
            log.exception("the archiver stopped")
