"""HTTP API speed: PIX charge creation, and webhook → WebSocket push latency.

Starts ``pulso serve`` (API + pipeline, sandbox PSP, DuckDB + local bus in a temporary
folder) in a child process on a free loopback port, then from this process:

1. baseline: ``GET /healthz`` at the same concurrency (the cost of HTTP itself here);
2. ``POST /v1/pix/charges``: charges/s and latency percentiles, as a ratio of the baseline;
3. 200 tills each watching its charge on the WebSocket; the sandbox payer pays them all,
   then the PSP webhooks (signed like Mercado Pago's) are posted at once, and each till
   times webhook sent → "confirmed" pushed. Baseline: ``GET /healthz`` latency with 200
   requests in flight.

Targets (issue 3): ≥ 1,500 charges/s with p99 ≤ 50 ms; push p99 ≤ 100 ms with 200 tills.
The client (httpx, asyncio) and the server share the machine's cores, so the client's own
cost is part of every figure; the baseline shows how much.

    python benchmarks/bench_api.py [--charges 6000] [--concurrency 32] [--tills 200] [--no-pipeline]
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import websockets

from pulso.pix import webhooks
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

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        cpu = ""
        if self.server_cpu_s:
            cpu = (
                f"  cpu/request: server {self.server_cpu_s / self.count * 1000:.2f} ms,"
                f" client {self.client_cpu_s / self.count * 1000:.2f} ms"
            )
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
    data_dir: Path, port: int, dead_port: int, *, pipeline: bool, store_url: str
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
    command = [
        sys.executable,
        "-c",
        "import typer; from pulso.cli.serve import serve; typer.run(serve)",
        "--port",
        str(port),
        "--demo-stores",
        "20",
        "--pipeline" if pipeline else "--no-pipeline",
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


Call = Callable[[httpx.AsyncClient, int], Awaitable[None]]


async def run_load(
    name: str, base_url: str, count: int, concurrency: int, max_seconds: float, call: Call
) -> Figure:
    """``count`` calls, ``concurrency`` in flight, stopping early after ``max_seconds``.

    Each worker has a client of its own with one connection: a shared httpx pool of 32
    connections cost the client 3.5 ms of CPU per request here, against ~1.5 ms this way.
    """
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal next_index
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"X-API-Key": API_TOKEN},
            limits=httpx.Limits(max_connections=1),
            timeout=60,
        ) as client:
            while next_index < count and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                started = time.perf_counter()
                await call(client, index)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Figure(name, len(latencies), time.perf_counter() - started, latencies)


def charge_body(index: int) -> dict[str, object]:
    return {
        "amount": f"{10 + index % 500}.{index % 100:02d}",
        "description": f"bench {index}",
        "store_id": f"LJ-{1 + index % 20:04d}",
    }


async def healthz(client: httpx.AsyncClient, _: int) -> None:
    (await client.get("/healthz")).raise_for_status()


async def create(client: httpx.AsyncClient, index: int) -> None:
    response = await client.post(
        "/v1/pix/charges",
        json=charge_body(index),
        headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
    )
    if response.status_code != 201:
        raise SystemExit(f"POST /v1/pix/charges: {response.status_code} {response.text}")


async def bench_charges(
    base_url: str, pid: int, count: int, concurrency: int
) -> tuple[Figure, Figure]:
    await run_load("warm-up", base_url, min(500, count), concurrency, 10, create)
    await asyncio.sleep(2)  # let the pipeline fold the warm-up's events first
    baseline = await measured(
        pid, run_load("baseline GET /healthz", base_url, count, concurrency, 20, healthz)
    )
    charges = await measured(
        pid, run_load("POST /v1/pix/charges", base_url, count, concurrency, 30, create)
    )
    return baseline, charges


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


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pulso-bench-api-") as folder:
        port, dead_port = free_port(), free_port()
        server = start_server(
            Path(folder), port, dead_port, pipeline=args.pipeline, store_url=args.store_url
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base_url)
            baseline, charges = await bench_charges(
                base_url, server.pid, args.charges, args.concurrency
            )
            push_baseline, push = await bench_push(base_url, args.tills, args.webhook_rate)
        finally:
            server.terminate()
            server.wait(timeout=30)
    pipeline = "on" if args.pipeline else "off"
    store = "PostgreSQL" if args.store_url else "DuckDB"
    print(
        f"concurrency {args.concurrency}, sandbox PSP, {store} + local bus, pipeline {pipeline},"
        f" {os.cpu_count()} cores shared by server and client"
    )
    for figure in (baseline, charges):
        print(figure.line())
    print(
        f"  charges/s ÷ healthz/s = {charges.rate / baseline.rate:.2f}"
        f"   (target ≥ 1,500 charges/s, p99 ≤ 50 ms)"
    )
    for figure in (push_baseline, push):
        print(figure.line())
    print(
        f"  push p99 ÷ healthz p99 = {push.pct_ms(0.99) / push_baseline.pct_ms(0.99):.2f}"
        f"   (target push p99 ≤ 100 ms)"
    )
    print(f"  mean push {statistics.fmean(push.latencies_s) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=6000, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--tills", type=int, default=200, help="WebSocket tills")
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
        "--pipeline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the pipeline in the server too (as `pulso serve` does)",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
