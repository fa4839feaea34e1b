"""uvicorn's httptools protocol, with each loop turn's writes to a connection sent as one.

uvicorn writes an answer's head when the app sends ``http.response.start`` and its body on
``http.response.body``: two ``send()`` system calls, each of which runs loopback TCP and
wakes the client. Under load those two writes were ~25 % of the event loop's time on the
charge-creation path (py-spy), the first one most of it. Here the connection's transport
is wrapped so that whatever one turn of the loop writes goes out in one call, at the end of
the turn (``loop.call_soon``): the head and body of an answer become one segment. Nothing
else changes: closing, aborting and flow control reach the real transport, a close sends
what is pending first, and a WebSocket upgrade hands the same wrapper on.

The server's first connection also tunes the process for answering quickly (see
:func:`tune_serving_process`): its start-up heap out of the garbage collector's sight, and a
shorter GIL switch interval.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """An asyncio transport whose writes within one loop turn are joined into one."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what this turn wrote (the loop calls this at the end of the turn)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


SWITCH_INTERVAL_S = 0.001
"""How long a thread may keep the GIL while another waits for it (Python's default: 5 ms).
The charge ledger's writer gives the GIL up four or five times a batch (DuckDB calls, the
bus write, waking the loop) and, while the event loop and the pipeline compute, waited up
to an interval each time to take it back: 5-25 ms a batch under load."""

FULL_COLLECTION_EVERY_S = 300.0
"""The serving process's full garbage collections: on this schedule, not when the
collector's own rule (25 % more long-lived objects) would start one."""

_NO_AUTOMATIC_FULL_COLLECTION = 1_000_000_000  # gc threshold 2: never reached

_frozen = threading.Event()


def tune_serving_process() -> bool:
    """Once per process, when the server is up:

    - collect, then ``gc.freeze()`` what is alive (modules, the app, its routes and
      models): no collection walks it again (reference counting still frees it);
    - no automatic full collection: one every :data:`FULL_COLLECTION_EVERY_S` instead, on
      a thread of its own (the young generations are still collected as usual, and with
      them most cyclic garbage). A full pass walks every object the process holds, and
      the ledger's cache and the sandbox PSP's charges grow to hundreds of thousands:
      under load the automatic ones took 60-130 ms in a short run and 300-650 ms after
      150,000 charges, every request waiting through each (gc callbacks, 2026-11-24);
    - the GIL switch interval to :data:`SWITCH_INTERVAL_S`.

    True the first time."""
    if _frozen.is_set():
        return False
    _frozen.set()
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_AUTOMATIC_FULL_COLLECTION)
    threading.Thread(target=_collect_fully, name="pulso-gc", daemon=True).start()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return True


def _collect_fully() -> None:
    while True:
        time.sleep(FULL_COLLECTION_EVERY_S)
        gc.collect()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=CoalescingHttpToolsProtocol)``: see the module doc."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not _frozen.is_set():  # the server is up: its start-up heap is all there is
            tune_serving_process()
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
