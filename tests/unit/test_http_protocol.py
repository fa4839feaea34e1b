"""CoalescingTransport: one loop turn's writes leave as one write, in order; close sends
what is pending first, abort drops it. Over a real loopback TCP connection."""

from __future__ import annotations

import asyncio
from typing import Any

from pulso.api.http_protocol import CoalescingTransport


class Recorder:
    """Stands between CoalescingTransport and the real transport, noting each write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _connected() -> tuple[Recorder, asyncio.StreamReader, asyncio.Server]:
    accepted: asyncio.Future[asyncio.StreamReader] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(reader)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_connection(
        asyncio.Protocol, "127.0.0.1", port
    )
    return Recorder(transport), await accepted, server


def test_writes_of_one_turn_leave_as_one_in_order() -> None:
    async def scenario() -> tuple[list[bytes], bytes]:
        recorder, reader, server = await _connected()
        coalescing = CoalescingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(memoryview(b"body"))
        assert recorder.writes == []  # not before the turn ends
        await asyncio.sleep(0)
        coalescing.write(b"|next")
        coalescing.close()  # sends what is pending before closing
        received = await reader.read()
        server.close()
        return recorder.writes, received

    writes, received = asyncio.run(scenario())

    assert writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"|next"]
    assert received == b"HTTP/1.1 200 OK\r\n\r\nbody|next"


def test_abort_drops_what_is_pending() -> None:
    async def scenario() -> tuple[list[bytes], bytes]:
        recorder, reader, server = await _connected()
        coalescing = CoalescingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        coalescing.write(b"never sent")
        assert coalescing.get_write_buffer_size() == len(b"never sent")
        coalescing.abort()
        await asyncio.sleep(0)
        received = await reader.read()
        server.close()
        return recorder.writes, received

    writes, received = asyncio.run(scenario())

    assert writes == []
    assert received == b""
