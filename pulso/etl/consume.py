"""The ETL as a consumer of the ``files`` topic: one run per ``file.detected`` event.

Each event's offset is committed after its run is recorded, so a crash replays at most the
event being handled, and the checksum makes that replay load nothing twice. A file that
cannot be read is a recorded failed run and the consumer moves on; an event that is not a
valid ``file.detected`` goes to the dead-letter. An unreachable store or bucket stops the
consumer without committing: the event is handled again on restart.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pulso.bus.protocol import Bus, Consumer, Message
from pulso.domain.events import Topic, decode_event
from pulso.domain.files import FileDetected
from pulso.errors import InvalidEventError
from pulso.etl.errors import SourceError
from pulso.etl.load import EtlOptions, ProgressCallback, run_file
from pulso.etl.runs import RunRecord
from pulso.etl.source import locate
from pulso.pipeline import deadletter
from pulso.store.protocol import Store
from pulso.store.tables import DEADLETTER

if TYPE_CHECKING:
    from pulso.config import Settings

log = logging.getLogger(__name__)

DEFAULT_GROUP: Final = "pulso-etl"
SALES_DATASET: Final = "sales"
_POLL_MESSAGES: Final = 16


@dataclass(slots=True)
class ConsumeStats:
    events: int = 0
    runs: Counter[str] = field(default_factory=Counter)  # by run status
    skipped: int = 0  # not a sales file, or a rejects file
    dead_letters: int = 0


@dataclass(frozen=True, slots=True)
class FileConsumer:
    """Runs the ETL for each file the watcher announces."""

    bus: Bus
    store: Store
    settings: Settings
    group: str = DEFAULT_GROUP
    options: EtlOptions | None = None
    poll_timeout_s: float = 0.5

    def run(
        self,
        *,
        stop_when_idle: bool = False,
        cancel: threading.Event | None = None,
        on_run: Callable[[RunRecord], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ConsumeStats:
        """Consume until ``cancel`` is set, or the topic has nothing new and
        ``stop_when_idle``."""
        stats = ConsumeStats()
        consumer = self.bus.consumer(self.group, [Topic.FILES])
        try:
            while cancel is None or not cancel.is_set():
                messages = consumer.poll_batch(_POLL_MESSAGES, self.poll_timeout_s)
                if not messages and stop_when_idle:
                    break
                for message in messages:
                    self._handle(message, stats, on_run, on_progress)
                    _commit(consumer, message)
        finally:
            consumer.close()
        return stats

    def _handle(
        self,
        message: Message,
        stats: ConsumeStats,
        on_run: Callable[[RunRecord], None] | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        stats.events += 1
        detected = self._file_detected(message, stats)
        if detected is None:
            return
        if detected.dataset != SALES_DATASET or locate(detected.url).is_rejects_file:
            log.info("skipping %s (dataset %s): not a sales file", detected.url, detected.dataset)
            stats.skipped += 1
            return
        try:
            record = run_file(
                self.store,
                detected.url,
                self.settings,
                options=self.options,
                on_progress=on_progress,
            )
        except SourceError as e:  # recorded as a failed run; the next file is unaffected
            log.warning("could not load %s: %s", detected.url, e.problem)
            stats.runs["failed"] += 1
            return
        stats.runs[str(record.status)] += 1
        if on_run is not None:
            on_run(record)

    def _file_detected(self, message: Message, stats: ConsumeStats) -> FileDetected | None:
        try:
            event = decode_event(message.value)
            if not isinstance(event.data, FileDetected):
                raise InvalidEventError("unroutable", f"{event.type} is not a file.detected event")
        except InvalidEventError as e:
            self._dead_letter(message, e)
            stats.dead_letters += 1
            return None
        return event.data

    def _dead_letter(self, message: Message, error: InvalidEventError) -> None:
        entry = deadletter.from_message(message, error.reason, error.detail, datetime.now(UTC))
        with self.store.transaction() as tx:
            tx.insert_new(DEADLETTER, deadletter.to_columns([entry]))
        log.warning("dead-lettered %s: %s", entry.id, error)


def _commit(consumer: Consumer, message: Message) -> None:
    consumer.commit({(message.topic, message.partition): message.offset + 1})
