"""A till's whole story over real HTTP and WebSockets, against uvicorn on a random port:
create → the WebSocket says pending → the sandbox payer pays → the sandbox posts its signed
webhook → the WebSocket says confirmed and closes → GET says confirmed → the pipeline writes
the ``payments`` row. On DuckDB and on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pypdf
import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.validators import complete_cpf
from pulso.pipeline.factory import build_runner
from pulso.pix.charge import NewCharge
from pulso.pix.providers import open_psp
from pulso.pix.providers.sandbox import SandboxPSP
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.store import open_store
from pulso.store.protocol import Store

TOKEN = "flow-api-token"
SECRET = "flow-webhook-secret"
STORE = StoreInfo("LJ-0002", "Mercadinho Sol", "Recife", "PE")
CPF = complete_cpf("390533447")
WAIT_S = 15.0  # a guard against hanging, not a speed assertion


@dataclass
class Served:
    url: str
    settings: Settings
    store: Store
    bus: Bus
    psp: SandboxPSP
    app: Any

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": TOKEN}, timeout=WAIT_S)


def _serve(app: Any, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Iterator[Served]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store_url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    settings = settings_factory(
        api_token=TOKEN,
        webhook_secret=SECRET,
        sandbox_pay_after_s=0,
        public_url=url,  # the sandbox posts its webhooks to this server
        store_url=store_url,
    )
    store, bus = open_store(settings), open_bus(settings)
    StoreRegistry(store).register([STORE])
    psp = open_psp(settings)
    assert isinstance(psp, SandboxPSP)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    server, thread = _serve(app, sock)
    yield Served(url, settings, store, bus, psp, app)
    server.should_exit = True
    thread.join(timeout=WAIT_S)
    psp.close()
    bus.close()
    store.close()


def run_pipeline(served: Served) -> None:
    runner = build_runner(served.settings, served.bus, served.store)
    try:
        while runner.step() is not None:
            pass
    finally:
        runner.close()


def test_a_till_sees_its_charge_paid_and_the_pipeline_records_it(served: Served) -> None:
    with served.http() as http:
        body = {"amount": "42.10", "description": "Feira", "store_id": STORE.store_id}
        charge = http.post("/v1/pix/charges", json={**body, "payer": {"document": CPF}}).json()
        events_url = f"{served.ws_url}/v1/pix/charges/{charge['id']}/events"

        with connect(events_url, additional_headers={"X-API-Key": TOKEN}) as ws:
            first = json.loads(ws.recv(timeout=WAIT_S))
            assert (first["id"], first["status"]) == (charge["id"], "pending")

            paid = http.post(f"/v1/sandbox/charges/{charge['id']}/pay")
            assert paid.status_code == 202

            pushed = json.loads(ws.recv(timeout=WAIT_S))  # after the sandbox's signed webhook
            assert pushed["status"] == "confirmed"
            assert pushed["amount_paid"] == "42.10"
            assert pushed["confirmed_at"] is not None
            with pytest.raises(ConnectionClosedOK):  # closed after a terminal status
                ws.recv(timeout=WAIT_S)

        assert http.get(f"/v1/pix/charges/{charge['id']}").json()["status"] == "confirmed"
        metrics = http.get("/metrics").text
    assert 'pulso_pix_webhooks_total{outcome="applied"} 1.0' in metrics

    run_pipeline(served)
    rows = served.store.query(
        "SELECT status, store_id, city, uf, amount_cents, paid_cents, payer_hash"
        " FROM payments WHERE charge_id = %s",
        (charge["id"],),
    )
    assert len(rows) == 1
    assert rows[0][:6] == ("confirmed", STORE.store_id, STORE.city, STORE.uf, 4210, 4210)
    assert rows[0][6] is not None and CPF not in rows[0][6]  # a keyed hash, not the CPF
    types = served.store.query(
        "SELECT type FROM raw_events WHERE key = %s ORDER BY type", (charge["id"],)
    )
    assert types == [("pix.charge.confirmed",), ("pix.charge.created",)]

    with served.http() as http:
        receipt = http.get(f"/v1/pix/charges/{charge['id']}/receipt.pdf")
    assert receipt.status_code == 200
    assert receipt.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(receipt.content)).pages)
    assert "Comprovante de pagamento PIX" in text
    assert CPF not in text.replace(".", "").replace("-", "")


def test_the_websocket_refuses_a_wrong_key_and_an_unknown_charge(served: Served) -> None:
    with served.http() as http:
        body = {"amount": "1.00", "description": "x", "store_id": STORE.store_id}
        charge_id = http.post("/v1/pix/charges", json=body).json()["id"]

    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"{served.ws_url}/v1/pix/charges/{charge_id}/events",
            additional_headers={"X-API-Key": "wrong"},
        )
    assert refused.value.response.status_code == 401

    with pytest.raises(InvalidStatus) as missing:
        connect(
            f"{served.ws_url}/v1/pix/charges/nope/events", additional_headers={"X-API-Key": TOKEN}
        )
    assert missing.value.response.status_code == 404
    assert json.loads(missing.value.response.body)["type"] == "urn:pulso:problem:charge-not-found"


def test_two_hundred_tills_each_get_their_confirmation(served: Served) -> None:
    service = served.app.state.pulso.service
    new = NewCharge(amount=Decimal("9.90"), description="x", store_id=STORE.store_id)
    charges = [service.create(new).charge for _ in range(200)]

    async def till(charge_id: str, psp_payment_id: str) -> list[str]:
        async with websockets.connect(
            f"{served.ws_url}/v1/pix/charges/{charge_id}/events",
            additional_headers={"X-API-Key": TOKEN},
        ) as ws:
            statuses = [json.loads(await ws.recv())["status"]]
            await asyncio.to_thread(served.psp.pay, psp_payment_id)  # its webhook follows
            async for message in ws:
                statuses.append(json.loads(message)["status"])
            return statuses

    async def all_tills() -> list[list[str]]:
        return await asyncio.wait_for(
            asyncio.gather(*(till(c.charge_id, str(c.psp_payment_id)) for c in charges)), WAIT_S * 2
        )

    seen = asyncio.run(all_tills())
    assert seen == [["pending", "confirmed"]] * 200
    assert served.app.state.pulso.hub.watching == 0
