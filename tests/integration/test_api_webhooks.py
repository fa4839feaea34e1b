"""POST /v1/webhooks/mercadopago: only a genuine, fresh notification changes anything, and it
is believed only after the payment is re-read from the PSP; repeats change nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.events import decode_event
from pulso.pix import webhooks
from pulso.pix.charges import ChargeService
from pulso.pix.errors import PSPUnavailableError
from pulso.pix.providers import open_psp
from pulso.pix.providers.protocol import PSPCharge
from pulso.pix.providers.sandbox import SandboxPSP, notification_body
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.store import open_store
from pulso.store.protocol import Store

TOKEN = "hook-api-token"
SECRET = "hook-webhook-secret"
STORE = StoreInfo("LJ-0003", "Farmácia Boa", "Curitiba", "PR")
PATH = "/v1/webhooks/mercadopago"


@dataclass
class World:
    client: TestClient
    store: Store
    bus: Bus
    psp: SandboxPSP

    def charge(self) -> dict[str, Any]:
        body = {"amount": "10.00", "description": "x", "store_id": STORE.store_id}
        response = self.client.post("/v1/pix/charges", json=body)
        assert response.status_code == 201
        return dict(response.json())

    def psp_id(self, charge_id: str) -> str:
        return str(self.service.get(charge_id).psp_payment_id)

    @property
    def service(self) -> ChargeService:
        service: ChargeService = self.client.app.state.pulso.service  # type: ignore[attr-defined]
        return service

    def row(self, charge_id: str) -> tuple[Any, ...]:
        self.service.ledger.flush()  # what the table holds once every write has committed
        return self.store.query(
            "SELECT status, updated_at FROM pix_charges WHERE charge_id = %s", (charge_id,)
        )[0]

    def events_of(self, charge_id: str) -> list[str]:
        self.service.ledger.flush()
        consumer = self.bus.consumer(f"reader-{uuid.uuid4().hex}", ["payments"])
        try:
            messages = consumer.poll_batch(10_000, 0.5)
        finally:
            consumer.close()
        events = [decode_event(m.value) for m in messages]
        return [e.type for e in events if e.key == charge_id]


@pytest.fixture
def world(settings_factory: Callable[..., Settings]) -> Iterator[World]:
    settings = settings_factory(
        api_token=TOKEN,
        webhook_secret=SECRET,
        sandbox_pay_after_s=0,
        public_url="http://127.0.0.1:9",  # the sandbox's own webhooks go nowhere
    )
    store, bus = open_store(settings), open_bus(settings)
    StoreRegistry(store).register([STORE])
    psp = open_psp(settings)
    assert isinstance(psp, SandboxPSP)
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    with TestClient(app, headers={"X-API-Key": TOKEN}) as client:
        yield World(client, store, bus, psp)
    psp.close()
    bus.close()
    store.close()


def signed(
    data_id: str,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    request_id: str | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A notification as Mercado Pago sends it: query, headers and body."""
    request_id = request_id or str(uuid.uuid4())
    signature = webhooks.sign_notification(
        secret, data_id, request_id, int(time.time()) if ts is None else ts
    )
    return {
        "params": {"data.id": data_id, "type": "payment"},
        "headers": {"x-signature": signature, "x-request-id": request_id},
        "content": json.dumps(body if body is not None else notification_body(data_id)),
    }


def post(world: World, notification: Mapping[str, Any]) -> Any:
    # The webhook needs no API key: the signature authenticates it.
    return TestClient(world.client.app).post(PATH, **notification)


def test_a_genuine_notification_confirms_the_charge_after_re_reading_it(world: World) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    world.psp.pay(psp_id)

    answer = post(world, signed(psp_id))

    assert answer.status_code == 200
    assert answer.json() == {"outcome": "applied", "charge_id": charge["id"]}
    assert world.row(charge["id"])[0] == "confirmed"
    assert world.events_of(charge["id"]) == ["pix.charge.created", "pix.charge.confirmed"]


def test_the_body_is_not_trusted_the_psp_is(world: World) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    # Genuinely signed, but the payment is still pending at the PSP: nothing changes.
    forged_claim = {**notification_body(psp_id), "action": "payment.updated", "status": "approved"}

    answer = post(world, signed(psp_id, body=forged_claim))

    assert answer.json() == {"outcome": "unchanged", "charge_id": charge["id"]}
    assert world.row(charge["id"])[0] == "pending"


def test_a_replayed_or_duplicated_notification_changes_nothing(world: World) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    world.psp.pay(psp_id)
    notification = signed(psp_id)

    first = post(world, notification)
    replayed = post(world, notification)  # the very same request again
    duplicated = post(world, signed(psp_id))  # another delivery of the same news

    assert first.json()["outcome"] == "applied"
    assert replayed.status_code == duplicated.status_code == 200
    assert replayed.json()["outcome"] == duplicated.json()["outcome"] == "unchanged"
    assert world.events_of(charge["id"]) == ["pix.charge.created", "pix.charge.confirmed"]


def _forgeries(psp_id: str) -> dict[str, dict[str, Any]]:
    now = int(time.time())
    wrong_secret = signed(psp_id, secret="not-the-secret")
    no_signature = signed(psp_id)
    del no_signature["headers"]["x-signature"]
    no_request_id = signed(psp_id)
    del no_request_id["headers"]["x-request-id"]
    malformed = signed(psp_id)
    malformed["headers"]["x-signature"] = "v1=abc"
    tampered_id = signed(psp_id)
    tampered_id["params"]["data.id"] = "999999"
    other_request = signed(psp_id)
    other_request["headers"]["x-request-id"] = str(uuid.uuid4())  # not what was signed
    not_json = signed(psp_id)
    not_json["params"] = {}
    not_json["content"] = "data.id=1"
    return {
        "wrong secret": wrong_secret,
        "no signature": no_signature,
        "no request id": no_request_id,
        "malformed signature": malformed,
        "id changed": tampered_id,
        "request id changed": other_request,
        "stale": signed(psp_id, ts=now - 3600),
        "from the future": signed(psp_id, ts=now + 3600),
        "body not json": not_json,
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "wrong secret",
        "no signature",
        "no request id",
        "malformed signature",
        "id changed",
        "request id changed",
        "stale",
        "from the future",
        "body not json",
    ],
)
def test_a_forged_stale_or_malformed_notification_is_401_and_stores_nothing(
    world: World, forgery: str
) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    world.psp.pay(psp_id)  # so a believed notification would confirm it
    before = world.row(charge["id"])

    answer = post(world, _forgeries(psp_id)[forgery])

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:pulso:problem:webhook-signature"
    assert world.row(charge["id"]) == before
    assert world.events_of(charge["id"]) == ["pix.charge.created"]
    metrics = world.client.get("/metrics").text
    assert 'pulso_pix_webhooks_total{outcome="rejected"} 1.0' in metrics


def test_a_notification_about_an_unknown_payment_is_acknowledged_and_ignored(
    world: World,
) -> None:
    answer = post(world, signed("123456789"))
    assert answer.status_code == 200
    assert answer.json() == {"outcome": "ignored", "charge_id": None}


def test_a_notification_that_is_not_about_a_payment_is_ignored(world: World) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    world.psp.pay(psp_id)
    body = {**notification_body(psp_id), "action": "merchant_order.updated"}

    answer = post(world, signed(psp_id, body=body))

    assert answer.json()["outcome"] == "ignored"
    assert world.row(charge["id"])[0] == "pending"


def test_a_psp_that_cannot_be_re_read_gets_a_503_so_it_retries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    charge = world.charge()
    psp_id = world.psp_id(charge["id"])
    world.psp.pay(psp_id)

    def unavailable(_: str) -> PSPCharge:
        raise PSPUnavailableError("the PSP did not answer")

    monkeypatch.setattr(world.psp, "get_charge", unavailable)
    answer = post(world, signed(psp_id))

    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:pulso:problem:psp-unavailable"
    assert world.row(charge["id"])[0] == "pending"
