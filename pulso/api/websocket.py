"""Status pushes to the tills: ``WS /v1/pix/charges/{id}/events``.

On connect the till gets the charge as ``GET /v1/pix/charges/{id}`` returns it, then the same
document after every status change, and the server closes (code 1000) after a terminal
status (confirmed, failed, expired). A wrong API key or an unknown charge is refused at the
handshake with the problem document as an HTTP answer (401 / 404) where the server supports
WebSocket denial responses, else with close code 1008.

The ledger's writer thread hands each commit's changes to :meth:`ChargeHub.publish`, which
hops onto the event loop once per commit and fans out to in-memory queues; one loop serves
hundreds of tills, as each waiting till is only a parked coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.websockets import WebSocket

from pulso.api.problems import error_response
from pulso.api.schemas import charge_json
from pulso.pix.charge import Charge
from pulso.pix.charges import ChargeService
from pulso.pix.errors import ChargeNotFoundError

log = logging.getLogger(__name__)

POLICY_VIOLATION: Final = 1008
_QUEUE_SIZE: Final = 8  # a charge changes status at most ~3 times


class ChargeHub:
    """Fans charge changes out to the WebSocket connections watching them."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: dict[str, set[asyncio.Queue[Charge]]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the WebSocket connections run on (set when the app starts)."""
        self._loop = loop

    @property
    def watching(self) -> int:
        """How many connections are watching a charge now."""
        return sum(len(queues) for queues in self._watchers.values())

    def publish(self, charges: Sequence[Charge]) -> None:
        """Deliver changed charges to their watchers; safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # Membership tests on a dict are atomic under the GIL, so filtering here spares the
        # loop a wake-up for the (usual) commit nobody is watching.
        watched = [c for c in charges if c.charge_id in self._watchers]
        if watched:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: shutting down
                loop.call_soon_threadsafe(self._deliver, watched)

    @contextlib.contextmanager
    def watch(self, charge_id: str) -> Iterator[asyncio.Queue[Charge]]:
        """A queue of the changes of ``charge_id`` for as long as the block runs (on the loop)."""
        changes: asyncio.Queue[Charge] = asyncio.Queue(_QUEUE_SIZE)
        self._watchers.setdefault(charge_id, set()).add(changes)
        try:
            yield changes
        finally:
            queues = self._watchers.get(charge_id)
            if queues is not None:
                queues.discard(changes)
                if not queues:
                    del self._watchers[charge_id]

    def _deliver(self, charges: list[Charge]) -> None:
        for charge in charges:
            for changes in self._watchers.get(charge.charge_id, ()):
                if changes.full():  # a till that stopped reading: the newest state matters
                    changes.get_nowait()
                changes.put_nowait(charge)


async def stream_charge(
    websocket: WebSocket, charge_id: str, *, hub: ChargeHub, service: ChargeService
) -> None:
    """Send the charge now and after each change, until it ends or the till leaves."""
    with hub.watch(charge_id) as changes:  # before reading: no change slips in between
        try:
            charge = await run_in_threadpool(service.get, charge_id)
        except ChargeNotFoundError as e:
            await deny(websocket, error_response(e, websocket.url.path))
            return
        await websocket.accept()
        base_url = _http_base(websocket)
        await websocket.send_text(charge_json(charge, base_url).decode())
        if charge.is_terminal or not await _follow(websocket, changes, charge, base_url):
            await websocket.close(1000)


async def _follow(
    websocket: WebSocket, changes: asyncio.Queue[Charge], last: Charge, base_url: str
) -> bool:
    """Send each newer state until a terminal one (False) or the till leaves (True)."""
    stream = _UpdateStream(websocket, changes)
    try:
        async for update in stream:
            if update.updated_at <= last.updated_at:
                continue  # older than what the till has (read before it was delivered)
            await websocket.send_text(charge_json(update, base_url).decode())
            last = update
            if last.is_terminal:
                return False
    finally:
        stream.close()
    return True


class _UpdateStream:
    """Changes from the queue, ending when the client disconnects (messages it sends are
    ignored: the protocol is server → till)."""

    def __init__(self, websocket: WebSocket, changes: asyncio.Queue[Charge]) -> None:
        self._websocket = websocket
        self._changes = changes
        self._receiver: asyncio.Task[object] | None = None

    def __aiter__(self) -> _UpdateStream:
        return self

    async def __anext__(self) -> Charge:
        while True:
            if self._receiver is None:
                self._receiver = asyncio.ensure_future(self._websocket.receive())
            getter = asyncio.ensure_future(self._changes.get())
            done, _ = await asyncio.wait(
                {getter, self._receiver}, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                return getter.result()
            getter.cancel()
            message = self._receiver.result()
            self._receiver = None
            if isinstance(message, dict) and message.get("type") == "websocket.disconnect":
                raise StopAsyncIteration

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()


async def deny(websocket: WebSocket, response: Response) -> None:
    """Refuse a handshake with an HTTP answer when the server can, else close with 1008."""
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # the server lacks the websocket.http.response extension
        await websocket.close(POLICY_VIOLATION)


def _http_base(websocket: WebSocket) -> str:
    base = str(websocket.base_url)
    return "http" + base.removeprefix("ws")  # ws→http, wss→https
