"""Run an iterator on a worker thread, a few items ahead of its consumer.

The ETL reads, cleans and checks the next blocks while the store loads the current one; the
Arrow kernels, the CSV parser and the database drivers release the GIL, so the two cores work
at once. The bounded queue keeps memory to ``depth`` blocks whatever the file's size.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _Done:
    pass


class Prefetch(Generic[T]):
    """``with Prefetch(items) as ahead: for item in ahead: ...`` (the worker stops on exit)."""

    def __init__(self, items: Iterator[T], *, depth: int = 2, name: str = "pulso-prefetch") -> None:
        self._items = items
        self._queue: queue.Queue[T | _Failed | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def __enter__(self) -> Prefetch[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a worker waiting for room in the queue
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_S)
        self._thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._put(_Failed(e))
            return
        self._put(_Done())

    def _put(self, item: T | _Failed | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False
