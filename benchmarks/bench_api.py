"""HTTP API speed: PIX charge creation, and webhook → WebSocket push latency.

Starts ``pulso serve`` (uvicorn, API + pipeline, sandbox PSP, DuckDB + local bus in a
temporary folder) in a child process on a free loopback port, then from this process:

1. ``POST /v1/pix/charges`` against its baseline ``GET /healthz`` (the cost of HTTP and the
   framework on this machine), in alternating rounds at the same concurrency with the same
   client: charges/s, latency percentiles, and the ratio of the two rates;
2. 200 tills each watching its charge on the WebSocket; the sandbox payer pays them all,
   then the PSP webhooks (signed like Mercado Pago's) are posted at once, and each till
   times webhook sent → "confirmed" pushed. Baseline: ``GET /healthz`` latency with 200
   requests in flight.

Targets (issue 3): ≥ 1,500 charges/s with p99 ≤ 50 ms; push p99 ≤ 100 ms with 200 tills.

The load generator of phase 1 is a lean asyncio client: raw HTTP/1.1 over keep-alive
sockets, one request in flight per connection, real JSON bodies, every answer's status
checked and every ``--check-every``-th body checked whole (fields, Location, a BR Code that
parses and carries the amount). It costs ~0.1 ms of CPU per request, where httpx cost
1.5-2.5 ms: on a 2-core machine the client shares the cores with the server, and an
expensive client would measure itself. Phase 2 uses httpx and websockets (latency, not rate).

``--client httpx`` drives phase 1 with httpx instead (both phases then cost the client far
more CPU than the server; kept to compare with the first figures).

    python benchmarks/bench_api.py [--charges 6000] [--concurrency 32] [--rounds 3]
        [--tills 200] [--no-pipeline] [--client raw|httpx] [--store-url postgresql://...]
        [--compare-before]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import cast

import httpx
import orjson
import websockets

from pulso.pix import webhooks
from pulso.pix.brcode import parse_brcode
from pulso.pix.providers.sandbox import notification_body

API_TOKEN = "bench-" + secrets.token_hex(8)
WEBHOOK_SECRET = secrets.token_hex(16)
SERVER_BOOT_TIMEOUT_S = 60.0


@dataclass
class Figure:
    name: str
    count: int
    seconds: float
    latencies_s: list[float]
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    cpu_of: str = "server"
    load: float | None = None  # the machine's 1-minute load average while it ran

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        cpu = ""
        if self.server_cpu_s:
            cpu = f"  cpu/request: {self.cpu_of} {self.server_cpu_s / self.count * 1000:.2f} ms"
        if self.client_cpu_s:
            cpu += f", client {self.client_cpu_s / self.count * 1000:.2f} ms"
        return (
            f"{self.name:<34} {self.count:>6} in {self.seconds:6.2f} s = {self.rate:8,.0f}/s"
            f"   p50 {self.pct_ms(0.50):6.1f} ms  p99 {self.pct_ms(0.99):6.1f} ms"
            f"  max {max(self.latencies_s) * 1000:6.1f} ms{cpu}"
        )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, load: Awaitable[Figure]) -> Figure:
    """``load``, with the CPU the server and this client spent on it."""
    server_before, client_before = process_cpu_s(pid), time.process_time()
    figure = await load
    figure.server_cpu_s = process_cpu_s(pid) - server_before
    figure.client_cpu_s = time.process_time() - client_before
    return figure


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path,
    port: int,
    dead_port: int,
    *,
    pipeline: bool,
    store_url: str,
    linger_s: float | None = None,
    before: bool = False,
) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PULSO_")},
        "PULSO_DATA_DIR": str(data_dir),
        "PULSO_API_TOKEN": API_TOKEN,
        "PULSO_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PULSO_SANDBOX_PAY_AFTER_S": "0",  # the payer pays only when told
        # The sandbox's own webhooks go nowhere: this script posts them, so it knows when.
        "PULSO_PUBLIC_URL": f"http://127.0.0.1:{dead_port}",
        "PULSO_LOG_LEVEL": "ERROR",
        "PULSO_STORE_URL": store_url,
    }
    if before:  # the charge path as it was (see before_ledger_writers/sitecustomize.py)
        harness = str(Path(__file__).resolve().parent / "before_ledger_writers")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [harness, env.get("PYTHONPATH")]))
        env["PULSO_BENCH_BEFORE"] = "1"
    command = [
        sys.executable,
        "-c",
        "import typer; from pulso.cli.serve import serve; typer.run(serve)",
        "--port",
        str(port),
        "--demo-stores",
        "20",
        "--pipeline" if pipeline else "--no-pipeline",
        *([] if linger_s is None else ["--pipeline-linger", str(linger_s)]),
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data_dir
    )


async def wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + SERVER_BOOT_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"the server did not become ready within {SERVER_BOOT_TIMEOUT_S:.0f} s")


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight, parsed by hand.

    Enough HTTP for this server's answers (Content-Length bodies, no chunking); anything
    else ends the run with the answer shown."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[RawResponse] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:head_end]).decode("latin-1").split("\r\n")
        headers = dict(_header(line) for line in head[1:])
        if "content-length" not in headers:
            self._fail(ConnectionError(f"an answer without Content-Length: {head}"))
            return
        total = head_end + 4 + int(headers["content-length"])
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[head_end + 4 : total])
        del self._buffer[:total]
        waiter, self._waiter = self._waiter, None
        waiter.set_result(RawResponse(int(head[0].split(" ", 2)[1]), headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("the server closed the connection"))

    def _fail(self, error: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def request(self, raw: bytes) -> asyncio.Future[RawResponse]:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


class Endpoint:
    """Builds one kind of request and checks its answers."""

    name: str

    def request(self, index: int) -> bytes:
        raise NotImplementedError

    def check(self, index: int, response: RawResponse, *, whole: bool) -> None:
        raise NotImplementedError


class Healthz(Endpoint):
    name = "baseline GET /healthz"

    def __init__(self, host: str) -> None:
        self._raw = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def request(self, index: int) -> bytes:
        return self._raw

    def check(self, index: int, response: RawResponse, *, whole: bool) -> None:
        if response.status != 200 or (
            whole and orjson.loads(response.body) != {"status": "ok", "checks": {}}
        ):
            raise SystemExit(f"GET /healthz: {response.status} {response.body!r}")


class CreateCharge(Endpoint):
    """``POST /v1/pix/charges`` with a new Idempotency-Key each time: 201 and the charge."""

    name = "POST /v1/pix/charges"

    def __init__(self, host: str) -> None:
        self._head = (
            f"POST /v1/pix/charges HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {API_TOKEN}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self._run = uuid.uuid4().hex[:8]

    def request(self, index: int) -> bytes:
        body = orjson.dumps(charge_body(index))
        return b"%sIdempotency-Key: bench-%s-%d\r\nContent-Length: %d\r\n\r\n%s" % (
            self._head,
            self._run.encode(),
            index,
            len(body),
            body,
        )

    def check(self, index: int, response: RawResponse, *, whole: bool) -> None:
        if response.status != 201:
            raise SystemExit(f"POST /v1/pix/charges: {response.status} {response.body!r}")
        if whole:
            problem = charge_problem(charge_body(index), response)
            if problem:
                raise SystemExit(f"POST /v1/pix/charges answered a wrong charge: {problem}")


def charge_problem(sent: dict[str, str], response: RawResponse) -> str | None:
    """What is wrong with a 201 answer to ``sent`` (None: nothing)."""
    charge = orjson.loads(response.body)
    amount = Decimal(sent["amount"])
    expected = {
        "status": "pending",
        "amount": f"{amount:.2f}",
        "store_id": sent["store_id"],
        "description": sent["description"],
    }
    wrong = {k: charge.get(k) for k, v in expected.items() if charge.get(k) != v}
    if wrong:
        return f"{wrong} instead of {expected}"
    if response.headers.get("location") != charge["links"]["self"]:
        return f"Location {response.headers.get('location')} is not {charge['links']['self']}"
    if not charge["links"]["self"].endswith(f"/v1/pix/charges/{charge['id']}"):
        return f"links.self {charge['links']['self']} does not name {charge['id']}"
    if parse_brcode(charge["brcode"]).amount != amount:
        return f"the BR Code does not carry {amount}"
    if datetime.fromisoformat(charge["expires_at"]) <= datetime.fromisoformat(charge["created_at"]):
        return "expires_at is not after created_at"
    return None


class HttpxConnection:
    """The same requests sent with httpx (``--client httpx``): what the first versions of
    this benchmark used; it costs the client 1.5-2.5 ms of CPU per request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def request(self, raw: bytes) -> RawResponse:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = dict(_header(line) for line in lines[1:])
        headers.pop("content-length", None)
        headers.pop("host", None)
        answer = await self._client.request(method, path, headers=headers, content=body or None)
        return RawResponse(answer.status_code, dict(answer.headers), answer.content)

    def close(self) -> None:
        pass


async def run_load(
    endpoint: Endpoint,
    port: int,
    count: int,
    concurrency: int,
    max_seconds: float,
    *,
    check_every: int,
    name: str | None = None,
    client: str = "raw",
) -> Figure:
    """``count`` requests, ``concurrency`` connections each with one in flight, stopping
    early after ``max_seconds``."""
    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
        ) as shared:
            connections: list[RawConnection] | list[HttpxConnection] = [
                HttpxConnection(shared) for _ in range(concurrency)
            ]
            return await _drive(endpoint, connections, count, max_seconds, check_every, name)
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(RawConnection, "127.0.0.1", port))[1]
        for _ in range(concurrency)
    ]
    return await _drive(endpoint, connections, count, max_seconds, check_every, name)


async def _drive(
    endpoint: Endpoint,
    connections: list[RawConnection] | list[HttpxConnection],
    count: int,
    max_seconds: float,
    check_every: int,
    name: str | None,
) -> Figure:
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def worker(connection: RawConnection | HttpxConnection) -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            raw = endpoint.request(index)
            started = time.perf_counter()
            response = await connection.request(raw)
            latencies.append(time.perf_counter() - started)
            endpoint.check(index, response, whole=index % check_every == 0)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return Figure(name or endpoint.name, len(latencies), time.perf_counter() - started, latencies)


def charge_body(index: int) -> dict[str, str]:
    return {
        "amount": f"{10 + index % 500}.{index % 100:02d}",
        "description": f"bench {index}",
        "store_id": f"LJ-{1 + index % 20:04d}",
    }


async def bench_charges(
    port: int, pid: int, args: argparse.Namespace
) -> list[tuple[Figure, Figure]]:
    """Warm-up, then ``rounds`` of (healthz, charges), alternating so that both see the same
    machine: other jobs on it change both figures, and their ratio much less."""
    host = f"127.0.0.1:{port}"
    healthz, create = Healthz(host), CreateCharge(host)
    warm = min(1000, args.charges)
    await run_load(
        create, port, warm, args.concurrency, 15, name="warm-up", check_every=1, client=args.client
    )
    await asyncio.sleep(2)  # let the pipeline fold the warm-up's events first
    rounds = []
    offset = warm
    for _ in range(args.rounds):
        load_before = os.getloadavg()[0]
        baseline = await measured(
            pid,
            run_load(
                healthz,
                port,
                args.charges * 2,
                args.concurrency,
                10,
                check_every=args.check_every,
                client=args.client,
            ),
        )
        charges = await measured(
            pid,
            run_load(
                _Offset(create, offset),
                port,
                args.charges,
                args.concurrency,
                20,
                check_every=args.check_every,
                client=args.client,
            ),
        )
        baseline.load = charges.load = (load_before + os.getloadavg()[0]) / 2
        offset += args.charges
        rounds.append((baseline, charges))
        await asyncio.sleep(1)
    return rounds


async def in_process(args: argparse.Namespace, folder: Path) -> Figure:
    """The charges created by ``ChargeService.create_async`` in this process, at the same
    concurrency, on a store of its own (or the same PostgreSQL), with the sandbox PSP: the
    charge path without HTTP, uvicorn or the pipeline, i.e. what the store allows."""
    from pulso.bus import open_bus
    from pulso.config import Settings
    from pulso.pix.charge import NewCharge
    from pulso.pix.charges import ChargeService
    from pulso.pix.ledger import ChargeLedger
    from pulso.pix.providers.sandbox import SandboxPSP
    from pulso.pix.stores import StoreRegistry, demo_stores
    from pulso.store import open_store

    settings = Settings(data_dir=folder / "in-process", store_url=args.store_url)
    store, bus = open_store(settings), open_bus(settings)
    psp = SandboxPSP(webhook_url="http://127.0.0.1:9", webhook_secret=WEBHOOK_SECRET, pay_after_s=0)
    registry = StoreRegistry(store)
    registry.register(demo_stores(20))
    ledger = ChargeLedger(store, bus)
    ledger.start()
    service = ChargeService(ledger, psp, registry)
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < args.charges:
            index = next_index
            next_index += 1
            sent = charge_body(index)
            new = NewCharge(Decimal(sent["amount"]), sent["description"], sent["store_id"])
            started = time.perf_counter()
            await service.create_async(new, idempotency_key=f"in-process-{run}-{index}")
            latencies.append(time.perf_counter() - started)

    try:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        ledger.close()
        psp.close()
        bus.close()
        store.close()
    name = "same charges in-process, no HTTP"
    return Figure(name, len(latencies), seconds, latencies, server_cpu_s=cpu, cpu_of="process")


class _Offset(Endpoint):
    """``inner`` with indexes shifted, so that each round's Idempotency-Keys are new."""

    def __init__(self, inner: Endpoint, offset: int) -> None:
        self.name = inner.name
        self._inner = inner
        self._offset = offset

    def request(self, index: int) -> bytes:
        return self._inner.request(index + self._offset)

    def check(self, index: int, response: RawResponse, *, whole: bool) -> None:
        self._inner.check(index + self._offset, response, whole=whole)


async def open_till(
    client: httpx.AsyncClient, ws_base: str, index: int
) -> tuple[str, websockets.ClientConnection]:
    response = await client.post("/v1/pix/charges", json=charge_body(index))
    response.raise_for_status()
    charge_id = str(response.json()["id"])
    ws = await websockets.connect(
        f"{ws_base}/v1/pix/charges/{charge_id}/events",
        additional_headers={"X-API-Key": API_TOKEN},
        open_timeout=30,
    )
    first = json.loads(await ws.recv())
    assert first["status"] == "pending", first
    return charge_id, ws


def signed_webhook(psp_payment_id: str) -> tuple[dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    signature = webhooks.sign_notification(
        WEBHOOK_SECRET, psp_payment_id, request_id, int(time.time())
    )
    headers = {
        "Content-Type": "application/json",
        webhooks.REQUEST_ID_HEADER: request_id,
        webhooks.SIGNATURE_HEADER: signature,
    }
    return headers, json.dumps(notification_body(psp_payment_id)).encode()


async def bench_push(base_url: str, tills: int, rate_per_s: float) -> tuple[Figure, Figure]:
    """Each till watches its charge; the PSP's webhooks then arrive at ``rate_per_s`` and
    each till times its push from the moment its webhook was sent."""
    ws_base = "ws" + base_url.removeprefix("http")
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, headers={"X-API-Key": API_TOKEN}, timeout=60
    ) as client:
        opened = [await open_till(client, ws_base, i) for i in range(tills)]
        payments = [await client.post(f"/v1/sandbox/charges/{cid}/pay") for cid, _ in opened]
        psp_ids = [str(p.json()["psp_payment_id"]) for p in payments]
        started = time.perf_counter()
        latencies = await asyncio.gather(
            *(
                push_one(client, ws, psp_id, started + i / rate_per_s)
                for i, ((_, ws), psp_id) in enumerate(zip(opened, psp_ids, strict=True))
            )
        )
        push = Figure(
            f"webhook → WS push ({tills} tills, {rate_per_s:.0f}/s)",
            tills,
            time.perf_counter() - started,
            list(latencies),
        )
        for _, ws in opened:
            await ws.close()
        baseline = await paced_healthz(client, tills, rate_per_s)
    return baseline, push


async def paced_healthz(client: httpx.AsyncClient, count: int, rate_per_s: float) -> Figure:
    """The floor of a push: GET /healthz round trips at the webhooks' pace and client."""
    started = time.perf_counter()

    async def one(send_at: float) -> float:
        await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
        sent = time.perf_counter()
        (await client.get("/healthz")).raise_for_status()
        return time.perf_counter() - sent

    latencies = await asyncio.gather(*(one(started + i / rate_per_s) for i in range(count)))
    return Figure(
        f"baseline GET /healthz ({rate_per_s:.0f}/s)",
        count,
        time.perf_counter() - started,
        list(latencies),
    )


async def push_one(
    client: httpx.AsyncClient, ws: websockets.ClientConnection, psp_id: str, send_at: float
) -> float:
    await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
    note_headers, body = signed_webhook(psp_id)
    sent = time.perf_counter()
    answer = await client.post(
        f"/v1/webhooks/mercadopago?data.id={psp_id}&type=payment",
        content=body,
        headers=note_headers,
    )
    assert answer.status_code == 200, answer.text
    pushed = json.loads(await ws.recv())
    assert pushed["status"] == "confirmed", pushed
    return time.perf_counter() - sent


def fsync_ms(folder: Path, count: int = 100) -> tuple[float, float]:
    """p50 and p99 of a 4 KiB write + fsync in ``folder``: what each DuckDB commit waits
    for at least (a charge is answered only once its record is committed)."""
    path = folder / "fsync-probe"
    took = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    took.sort()
    return took[len(took) // 2] * 1000, took[int(len(took) * 0.99)] * 1000


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pulso-bench-api-", dir=args.data_dir) as folder:
        disk_before = fsync_ms(Path(folder))
        port, dead_port = free_port(), free_port()
        server = start_server(
            Path(folder),
            port,
            dead_port,
            pipeline=args.pipeline,
            store_url=args.store_url,
            linger_s=args.pipeline_linger,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base_url)
            rounds = await bench_charges(port, server.pid, args)
            push = await bench_push(base_url, args.tills, args.webhook_rate) if args.tills else None
        finally:
            server.terminate()
            server.wait(timeout=30)
        alone = await in_process(args, Path(folder)) if args.in_process else None
        before = await charges_before(args) if args.compare_before else None
        disk_after = fsync_ms(Path(folder))
    pipeline = "on" if args.pipeline else "off"
    store = "PostgreSQL" if args.store_url else "DuckDB"
    print(
        f"concurrency {args.concurrency}, sandbox PSP, {store} + local bus, pipeline {pipeline},"
        f" {os.cpu_count()} cores shared by server and client ({args.client} HTTP/1.1 client)"
    )
    print(
        f"data folder {args.data_dir or tempfile.gettempdir()}: fsync p50/p99"
        f" {disk_before[0]:.1f}/{disk_before[1]:.1f} ms before,"
        f" {disk_after[0]:.1f}/{disk_after[1]:.1f} ms after (each commit waits for one)"
    )
    for number, (baseline, charges) in enumerate(rounds, 1):
        print(f"round {number} (load average {charges.load:.1f})")
        for figure in (baseline, charges):
            print("  " + figure.line())
        print(f"    charges/s ÷ healthz/s = {charges.rate / baseline.rate:.2f}")
    print(summary(rounds))
    best = max(rounds, key=lambda r: r[1].rate)
    met = best[1].rate >= 1500 and best[1].pct_ms(0.99) <= 50
    print(f"  target ≥ 1,500 charges/s with p99 ≤ 50 ms: {'met' if met else 'not met'}")
    if before is not None:
        print("the same rounds on the charge path as it was before (--compare-before):")
        for number, (baseline, charges) in enumerate(before, 1):
            print(f"round {number} (load average {charges.load:.1f})")
            for figure in (baseline, charges):
                print("  " + figure.line())
        print(summary(before))
        p99_now = statistics.median(c.pct_ms(0.99) for _, c in rounds)
        p99_then = statistics.median(c.pct_ms(0.99) for _, c in before)
        print(f"  median p99 now ÷ before = {p99_now / p99_then:.2f}")
    if alone is not None:
        print(alone.line())
        print(f"    best HTTP round ÷ in-process = {best[1].rate / alone.rate:.2f}")
    if push is None:
        return
    push_baseline, push_figure = push
    for figure in (push_baseline, push_figure):
        print(figure.line())
    print(
        f"  push p99 ÷ healthz p99 = {push_figure.pct_ms(0.99) / push_baseline.pct_ms(0.99):.2f}"
        f"   (target push p99 ≤ 100 ms)"
    )
    print(f"  mean push {statistics.fmean(push_figure.latencies_s) * 1000:.1f} ms")


async def charges_before(args: argparse.Namespace) -> list[tuple[Figure, Figure]]:
    """The charge rounds again, on a server running the charge path as it was before the
    ledger had writers of its own (same machine, minutes apart)."""
    with tempfile.TemporaryDirectory(prefix="pulso-bench-api-", dir=args.data_dir) as folder:
        port, dead_port = free_port(), free_port()
        server = start_server(
            Path(folder),
            port,
            dead_port,
            pipeline=args.pipeline,
            store_url=args.store_url,
            linger_s=args.pipeline_linger,
            before=True,
        )
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
            return await bench_charges(port, server.pid, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


def summary(rounds: list[tuple[Figure, Figure]]) -> str:
    """Min / median / best over the rounds: charges/s, p99, ratio to healthz, load."""

    def spread(values: list[float], fmt: str) -> str:
        ordered = sorted(values)
        low, mid, high = ordered[0], statistics.median(ordered), ordered[-1]
        return f"{low:{fmt}} / {mid:{fmt}} / {high:{fmt}}"

    best = max(rounds, key=lambda r: r[1].rate)
    return "\n".join(
        [
            f"over {len(rounds)} rounds, min / median / max:",
            f"  charges/s          {spread([c.rate for _, c in rounds], ',.0f')}",
            f"  p99 ms             {spread([c.pct_ms(0.99) for _, c in rounds], '.1f')}",
            f"  healthz/s          {spread([b.rate for b, _ in rounds], ',.0f')}",
            f"  charges ÷ healthz  {spread([c.rate / b.rate for b, c in rounds], '.2f')}",
            f"  load average       {spread([c.load or 0.0 for _, c in rounds], '.1f')}",
            f"best round: {best[1].rate:,.0f} charges/s, p99 {best[1].pct_ms(0.99):.1f} ms"
            f" (healthz {best[0].rate:,.0f}/s, ratio {best[1].rate / best[0].rate:.2f},"
            f" load {best[1].load or 0.0:.1f})",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=6000, help="charges per round")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="healthz + charges rounds")
    parser.add_argument(
        "--check-every", type=int, default=20, help="check every N-th answer's body whole"
    )
    parser.add_argument("--tills", type=int, default=200, help="WebSocket tills (0: skip)")
    parser.add_argument(
        "--in-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also create the charges in this process, without HTTP (the store's ceiling)",
    )
    parser.add_argument(
        "--pipeline-linger",
        type=float,
        default=None,
        help="the server's --pipeline-linger (default: pulso serve's)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where the server's temporary data folder goes (default: the system's temporary "
        "folder); e.g. /dev/shm to see the figure without the disk's fsync latency (not "
        "durable: a diagnosis, not the figure)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator of the charge rounds: the lean raw HTTP/1.1 client, or httpx",
    )
    parser.add_argument(
        "--webhook-rate", type=float, default=100.0, help="webhooks per second to the tills"
    )
    parser.add_argument(
        "--store-url",
        default="",
        help="PULSO_STORE_URL for the server (default: DuckDB in a temporary folder); give an "
        "empty PostgreSQL database or schema",
    )
    parser.add_argument(
        "--compare-before",
        action="store_true",
        help="run the charge rounds again on the charge path as it was before the ledger's "
        "own writers (DuckDB; benchmarks/before_ledger_writers), and print both",
    )
    parser.add_argument(
        "--pipeline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the pipeline in the server too (as `pulso serve` does)",
    )
    run(main_async(parser.parse_args()))


def run(main: Coroutine[None, None, None]) -> None:
    """``asyncio.run`` on uvloop when it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    main()
