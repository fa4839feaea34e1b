"""Notice new objects in a bucket and announce each one on the ``files`` topic.

Detection lists the bucket and compares it with a persisted **seen map** ``key → etag`` of
the objects announced so far, pruned to the keys still in the bucket. An object is new when
its key is absent from the map or its etag differs (the same key uploaded again), so:

- listing order and modification times do not matter: a file whose key sorts *before*
  everything seen (a late upload of an older day) is found like any other;
- a re-upload under the same key is announced again; a deleted-then-restored object too;
- the map stays as large as the bucket's matching objects, and no larger (the bound).

A key-only high-water mark was rejected: it misses late keys that sort before it and cannot
see re-uploads. The map is saved as the store checkpoint ``bucket-watch/<dataset>/<url>``
*after* the bus accepted the batch of ``file.detected`` events: a crash in between announces
those files again on restart (at-least-once; the ETL's checksum makes the second load a
no-op), and nothing is ever lost.

Candidates end in ``.csv`` or ``.csv.gz``; keys with a segment starting with ``.`` or ``_``
(temporary and system files) and the ETL's rejects files (``*.rejects.csv``, see
:func:`rejects_key`) are never announced. ``settle_s`` leaves an object alone until it has not
changed for that long, for folders filled by copiers that write in place; pulso's own writes
(and S3 uploads) appear whole, so the default is 0.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from pulso.buckets.errors import BucketUnavailableError
from pulso.buckets.protocol import Bucket, ObjectInfo
from pulso.bus.protocol import Bus, Record
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.files import FileDetected
from pulso.errors import BusUnavailableError
from pulso.store.protocol import Store

log = logging.getLogger(__name__)

SOURCE: Final = "etl.watch"
SUFFIXES: Final[tuple[str, ...]] = (".csv", ".csv.gz")
REJECTS_MARK: Final = ".rejects."
_MAX_EVENT_KEY: Final = 128
_STATE_VERSION: Final = 1


class _State(msgspec.Struct, frozen=True):
    version: int
    seen: dict[str, str]


_STATE_DECODER: Final = msgspec.json.Decoder(_State)


def rejects_key(key: str) -> str:
    """Where the ETL puts the rejected rows of ``key``: ``d/sales.csv`` → ``d/sales.rejects.csv``
    (``.csv.gz`` too); the watcher never announces such keys."""
    for suffix in SUFFIXES:
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix)}.rejects.csv"
    return f"{key}.rejects.csv"


def is_candidate(key: str, suffixes: Sequence[str] = SUFFIXES) -> bool:
    """True for keys the watcher announces (see the module docstring)."""
    segments = key.split("/")
    if any(s.startswith((".", "_")) for s in segments):
        return False
    return key.endswith(tuple(suffixes)) and REJECTS_MARK not in segments[-1]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BucketWatcher:
    """Announces the new objects of ``bucket`` on the bus's ``files`` topic, one
    ``file.detected`` event each, remembering what it announced in the store."""

    def __init__(
        self,
        bucket: Bucket,
        bus: Bus,
        store: Store,
        dataset: str = "sales",
        *,
        suffixes: Sequence[str] = SUFFIXES,
        settle_s: float = 0.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._bucket, self._bus, self._store = bucket, bus, store
        self.dataset = dataset
        self._suffixes = tuple(suffixes)
        self._settle = timedelta(seconds=settle_s)
        self._clock = clock
        self.checkpoint_name = f"bucket-watch/{dataset}/{bucket.url}"
        self._seen = self._load()

    @property
    def seen(self) -> dict[str, str]:
        """The persisted map ``key → etag`` of announced objects still in the bucket."""
        return dict(self._seen)

    def scan(self) -> list[FileDetected]:
        """List once; announce and remember every new object; return what was announced."""
        listing = [o for o in self._bucket.list_objects() if is_candidate(o.key, self._suffixes)]
        settled_before = self._clock() - self._settle
        new = [
            o
            for o in listing
            if self._seen.get(o.key) != o.etag and o.modified_at <= settled_before
        ]
        present = {o.key for o in listing}
        seen = {k: v for k, v in self._seen.items() if k in present}
        seen.update((o.key, o.etag) for o in new)
        detected = [self._payload(o) for o in new]
        if detected:
            self._bus.publish(Topic.FILES, self._records(detected))
        if seen != self._seen:
            self._save(seen)
        self._seen = seen
        return detected

    def run(
        self,
        interval_s: float,
        stop: threading.Event,
        on_detected: Callable[[FileDetected], None] = lambda _: None,
    ) -> None:
        """Scan every ``interval_s`` until ``stop`` is set. An unreachable bucket or broker
        is logged and tried again at the next scan; other errors end the loop."""
        while not stop.is_set():
            try:
                for payload in self.scan():
                    on_detected(payload)
            except (BucketUnavailableError, BusUnavailableError) as e:
                log.warning("bucket watch: %s; trying again in %.1f s", e, interval_s)
            stop.wait(interval_s)

    def _payload(self, info: ObjectInfo) -> FileDetected:
        return FileDetected(
            url=info.url,
            size=info.size,
            etag=info.etag,
            modified_at=info.modified_at,
            dataset=self.dataset,
        )

    def _records(self, detected: list[FileDetected]) -> list[Record]:
        now = self._clock()
        records: list[Record] = []
        for payload in detected:
            key = _event_key(payload.url)
            event = new_event(payload, source=SOURCE, key=key, occurred_at=now)
            records.append((key.encode(), encode_event(event)))
        return records

    def _load(self) -> dict[str, str]:
        with self._store.transaction() as tx:
            raw = tx.load_checkpoint(self.checkpoint_name)
        if raw is None:
            return {}
        try:
            state = _STATE_DECODER.decode(raw)
        except msgspec.DecodeError:
            log.warning("bucket watch: unreadable checkpoint %s ignored", self.checkpoint_name)
            return {}
        return dict(state.seen) if state.version == _STATE_VERSION else {}

    def _save(self, seen: dict[str, str]) -> None:
        raw = msgspec.json.encode(_State(version=_STATE_VERSION, seen=seen))
        with self._store.transaction() as tx:
            tx.save_checkpoint(self.checkpoint_name, raw)


def _event_key(url: str) -> str:
    """The partition key of a file's events: its URL, or a digest of a very long one."""
    if len(url) <= _MAX_EVENT_KEY:
        return url
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()
