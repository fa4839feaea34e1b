"""POST/GET /v1/pix/charges against the real app: DuckDB store, local bus, sandbox PSP (or the
fake Mercado Pago server, or a PSP that fails at the protocol seam). Every bad input gets a
documented problem, and no charge is ever created twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cv2
import numpy as np
import orjson
import pytest
import zxingcpp
from fake_mercadopago import FakeMercadoPago
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pulso.api import create_app, hotpath
from pulso.api.routers import pix as pix_routes
from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.validators import complete_cnpj, complete_cpf
from pulso.pix.brcode import parse_brcode
from pulso.pix.charge import charge_id_for
from pulso.pix.errors import PSPError, PSPUnavailableError
from pulso.pix.providers import open_psp
from pulso.pix.providers.mercadopago import MercadoPagoPSP
from pulso.pix.providers.protocol import PSP, ChargeRequest, Notification, PSPCharge
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.store import open_store
from pulso.store.protocol import Store

TOKEN = "test-api-token"
SECRET = "test-webhook-secret"
STORE = StoreInfo("LJ-0001", "Padaria Central", "São Paulo", "SP")
CPF = complete_cpf("529982247")  # 52998224725
BAD_CPF = CPF[:-1] + str((int(CPF[-1]) + 1) % 10)
CNPJ = complete_cnpj("112223330001")
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: the sandbox's own webhooks go nowhere


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    store: Store
    psp: PSP

    def post(self, body: Any, key: str | None = None, **headers: str) -> Any:
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post("/v1/pix/charges", json=body, headers=headers)

    def count(self, where: str = "TRUE") -> int:
        return int(self.store.query(f"SELECT count(*) FROM pix_charges WHERE {where}")[0][0])


class FlakyPSP:
    """A PSP at the protocol seam whose create_charge fails as told, then delegates."""

    def __init__(self, inner: PSP, failures: list[Exception]) -> None:
        self.inner = inner
        self.name = inner.name
        self.failures = failures
        self.create_calls: list[str] = []

    def create_charge(self, request: ChargeRequest, *, idempotency_key: str) -> PSPCharge:
        self.create_calls.append(idempotency_key)
        if self.failures:
            raise self.failures.pop(0)
        return self.inner.create_charge(request, idempotency_key=idempotency_key)

    def get_charge(self, psp_payment_id: str) -> PSPCharge:
        return self.inner.get_charge(psp_payment_id)

    def cancel_charge(self, psp_payment_id: str) -> PSPCharge:
        return self.inner.cancel_charge(psp_payment_id)

    def read_notification(
        self, headers: Mapping[str, str], body: bytes, *, query_data_id: str | None = None
    ) -> Notification:
        return self.inner.read_notification(headers, body, query_data_id=query_data_id)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(
        api_token=TOKEN, webhook_secret=SECRET, sandbox_pay_after_s=0, public_url=DEAD_URL
    )


@pytest.fixture
def backends(settings: Settings) -> Iterator[tuple[Store, Bus]]:
    store = open_store(settings)
    bus = open_bus(settings)
    StoreRegistry(store).register([STORE])
    yield store, bus
    bus.close()
    store.close()


@pytest.fixture
def make_api(settings: Settings, backends: tuple[Store, Bus]) -> Iterator[Callable[..., Api]]:
    opened: list[tuple[TestClient, PSP]] = []

    def make(psp: PSP | None = None, *, api_token: str | None = TOKEN) -> Api:
        store, bus = backends
        psp = psp or open_psp(settings)
        app_settings = (
            settings.model_copy(update={"api_token": None}) if not api_token else settings
        )
        app = create_app(app_settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
        client = TestClient(app, headers={"X-API-Key": TOKEN})
        client.__enter__()
        opened.append((client, psp))
        return Api(client, app, store, psp)

    yield make
    for client, psp in opened:
        client.__exit__(None, None, None)
        psp.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def body(**changes: Any) -> dict[str, Any]:
    return {"amount": "25.90", "description": "Pão e café", "store_id": STORE.store_id, **changes}


# --- the happy path ----------------------------------------------------------------------


def test_a_charge_is_created_with_a_valid_brcode_and_links(api: Api) -> None:
    response = api.post(body(payer={"email": "ana@example.com", "document": CPF}), key="k-1")

    assert response.status_code == 201
    charge = response.json()
    assert charge["status"] == "pending"
    assert charge["amount"] == "25.90"
    assert charge["store_id"] == STORE.store_id
    assert response.headers["location"] == charge["links"]["self"]
    assert charge["links"]["events"].startswith("ws://")
    assert charge["links"]["events"].endswith(f"/v1/pix/charges/{charge['id']}/events")
    decoded = parse_brcode(charge["brcode"])
    assert decoded.amount == Decimal("25.90")
    assert CPF not in response.text  # the payer's document never comes back
    assert api.count() == 1


# --- the hot path and the route (pulso.api.hotpath answers well-formed requests) ---------


@pytest.fixture
def answered_by(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which code wrote each charge answer: "hot path" or "route"."""
    seen: list[str] = []
    for module, name in ((hotpath, "hot path"), (pix_routes, "route")):

        def spy(
            charge: Any, base_url: str, real: Any = module.charge_json, name: str = name
        ) -> bytes:
            seen.append(name)
            return bytes(real(charge, base_url))

        monkeypatch.setattr(module, "charge_json", spy)
    return seen


def _comparable(charge: dict[str, Any]) -> dict[str, Any]:
    unique = {"id", "txid", "brcode", "created_at", "expires_at", "links"}
    return {k: v for k, v in charge.items() if k not in unique}


def test_the_hot_path_and_the_route_answer_alike(api: Api, answered_by: list[str]) -> None:
    fast = api.post(body(), key="alike-1")
    slow = api.client.post(  # a Content-Type the hot path leaves to the route
        "/v1/pix/charges",
        content=orjson.dumps(body()),
        headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "alike-2"},
    )
    again = api.post(body(), key="alike-1")

    assert answered_by == ["hot path", "route", "hot path"]
    assert (fast.status_code, slow.status_code, again.status_code) == (201, 201, 200)
    first, second = fast.json(), slow.json()
    assert _comparable(first) == _comparable(second)
    assert list(first) == list(second) and list(first["links"]) == list(second["links"])
    assert again.json() == first
    for response, charge in ((fast, first), (slow, second), (again, first)):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["location"] == charge["links"]["self"]
        assert parse_brcode(charge["brcode"]).amount == Decimal("25.90")
    assert api.client.get(f"/v1/pix/charges/{first['id']}").json() == first


def test_the_hot_path_reads_a_chunked_body_and_hands_a_bad_one_to_the_route(
    api: Api, answered_by: list[str]
) -> None:
    def chunks(data: dict[str, Any]) -> Iterator[bytes]:
        encoded = orjson.dumps(data)
        yield from (encoded[i : i + 7] for i in range(0, len(encoded), 7))

    headers = {"Content-Type": "application/json"}
    good = api.client.post("/v1/pix/charges", content=chunks(body()), headers=headers)
    bad = api.client.post("/v1/pix/charges", content=chunks(body(amount="0")), headers=headers)

    assert good.status_code == 201
    assert answered_by == ["hot path"]
    assert bad.status_code == 422  # the route read the replayed body
    assert [e["field"] for e in bad.json()["errors"]] == ["amount"]
    assert api.count() == 1


def test_a_repeated_header_is_left_to_the_route(api: Api, answered_by: list[str]) -> None:
    response = api.client.post(
        "/v1/pix/charges",
        content=orjson.dumps(body()),
        headers=[
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "one"),
            ("Idempotency-Key", "two"),
        ],
    )
    assert answered_by == ["route"]  # which of the two keys counts is FastAPI's choice
    assert response.status_code == 201
    assert response.json()["id"] in {charge_id_for("one"), charge_id_for("two")}


def test_the_hot_path_answers_an_unexpected_error_with_a_500_problem_and_counts_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hot path runs in front of Starlette's server-error layer: it answers as that would.
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api.app.state.pulso.service, "create_async", broken)
    client = TestClient(api.app, headers={"X-API-Key": TOKEN}, raise_server_exceptions=False)

    response = client.post("/v1/pix/charges", json=body())

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:pulso:problem:internal"
    assert "a bug" not in response.text
    assert 'route="/v1/pix/charges",status="500"} 1.0' in client.get("/metrics").text


def test_the_hot_path_leaves_a_body_over_the_limit_to_the_413(
    api: Api, answered_by: list[str]
) -> None:
    def chunks() -> Iterator[bytes]:  # well-formed JSON, announced as such, but too long
        yield orjson.dumps(body(description="x" * 70_000))

    response = api.client.post(
        "/v1/pix/charges", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["type"] == "urn:pulso:problem:payload-too-large"
    assert answered_by == []
    assert api.count() == 0


def test_get_returns_the_charge_and_unknown_ids_are_404(api: Api) -> None:
    created = api.post(body()).json()

    got = api.client.get(f"/v1/pix/charges/{created['id']}")
    missing = api.client.get("/v1/pix/charges/no-such-charge")

    assert got.status_code == 200
    assert got.json() == created
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "urn:pulso:problem:charge-not-found"
    assert missing.json()["charge_id"] == "no-such-charge"


def test_the_qr_images_carry_the_brcode(api: Api) -> None:
    charge = api.post(body()).json()

    png = api.client.get(f"/v1/pix/charges/{charge['id']}/qr.png")
    svg = api.client.get(f"/v1/pix/charges/{charge['id']}/qr.svg")

    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    # zxing-cpp: OpenCV's QRCodeDetector misses ~2 % of valid codes (random charge ids)
    qr_only = zxingcpp.BarcodeFormat.QRCode  # other formats can "see" a stray code in it
    decoded = [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=qr_only)]
    assert decoded == [charge["brcode"]]
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text


def test_a_receipt_waits_for_the_pipeline_and_unknown_charges_are_404(api: Api) -> None:
    charge = api.post(body()).json()

    not_yet = api.client.get(f"/v1/pix/charges/{charge['id']}/receipt.pdf")
    unknown = api.client.get("/v1/pix/charges/nope/receipt.pdf")

    assert not_yet.status_code == 503  # the pipeline has not folded the charge yet
    assert not_yet.json()["type"] == "urn:pulso:problem:receipt-not-ready"
    assert not_yet.headers["retry-after"] == "5"
    assert unknown.status_code == 404


def test_a_cnpj_payer_and_a_numeric_amount_are_accepted(api: Api) -> None:
    response = api.post(body(amount=12.5, payer={"document": CNPJ}))
    assert response.status_code == 201
    assert response.json()["amount"] == "12.50"
    stored = api.store.query("SELECT payer_document FROM pix_charges")
    assert stored == [(CNPJ,)]


# --- idempotency -------------------------------------------------------------------------


def test_the_same_key_and_body_return_the_same_charge(api: Api) -> None:
    first = api.post(body(), key="till-7-sale-42")
    again = api.post(body(), key="till-7-sale-42")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["brcode"] == first.json()["brcode"]
    assert api.count() == 1


def test_the_same_key_with_another_body_is_refused(api: Api) -> None:
    first = api.post(body(), key="k-2").json()
    conflict = api.post(body(amount="25.91"), key="k-2")

    assert conflict.status_code == 422
    assert conflict.json()["type"] == "urn:pulso:problem:idempotency-key-reused"
    assert conflict.json()["charge_id"] == first["id"]
    assert api.count() == 1


def test_without_a_key_each_request_is_a_new_charge(api: Api) -> None:
    ids = {api.post(body()).json()["id"] for _ in range(3)}
    assert len(ids) == 3
    assert api.count() == 3


def test_concurrent_requests_with_one_key_make_one_charge(api: Api) -> None:
    answers: list[Any] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        answers.append(api.post(body(), key="same-key"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # A request that finds the key's charge still being issued finishes it (the PSP call
    # repeats the same idempotency key), so several may answer 201: all with one charge.
    assert {a.status_code for a in answers} <= {200, 201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["brcode"] for a in answers}) == 1
    assert api.count() == 1


def test_a_malformed_idempotency_key_is_refused(api: Api) -> None:
    response = api.post(body(), key="has spaces in it")
    assert response.status_code == 422
    assert response.json()["errors"][0]["in"] == "header"
    assert api.count() == 0


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "0.00",
        0,
        "-1",
        -5.5,
        "1.234",
        25.999,
        "1000000.01",
        "1e400",
        "NaN",
        "Infinity",
        True,
        "abc",
        "25,90",
        None,
    ],
)
def test_invalid_amounts_are_refused(api: Api, amount: Any) -> None:
    response = api.post(body(amount=amount))

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:pulso:problem:validation"
    assert [e["field"] for e in problem["errors"]] == ["amount"]
    assert api.count() == 0


def test_the_largest_amount_is_accepted(api: Api) -> None:
    assert api.post(body(amount="1000000.00")).status_code == 201


def test_an_unknown_store_is_refused(api: Api) -> None:
    response = api.post(body(store_id="LJ-9999"))
    assert response.status_code == 422
    assert response.json()["type"] == "urn:pulso:problem:unknown-store"
    assert response.json()["store_id"] == "LJ-9999"
    assert api.count() == 0


@pytest.mark.parametrize(
    "document",
    [BAD_CPF, "111.111.111-11", "123", CNPJ[:-1] + "0" if CNPJ[-1] != "0" else CNPJ[:-1] + "1"],
)
def test_an_invalid_payer_document_is_refused_without_echoing_it(api: Api, document: str) -> None:
    response = api.post(body(payer={"document": document}))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["payer.document"]
    assert document not in response.text
    assert api.count() == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 86_401}, "expires_in"),
        ({"description": ""}, "description"),
        ({"description": "x" * 141}, "description"),
        ({"store_id": ""}, "store_id"),
        ({"payer": {"email": "not-an-email"}}, "payer.email"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_other_invalid_fields_are_named(api: Api, changes: dict[str, Any], field: str) -> None:
    response = api.post(body(**changes))
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert api.count() == 0


def test_a_missing_field_is_named(api: Api) -> None:
    response = api.client.post("/v1/pix/charges", json={"amount": "1.00"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"description", "store_id"}


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/v1/pix/charges",
        content=b'{"amount": "1.00", ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:pulso:problem:malformed-body"
    assert api.count() == 0


def test_a_body_that_is_not_an_object_is_422(api: Api) -> None:
    as_text = api.client.post(
        "/v1/pix/charges", content=b"amount=1.00", headers={"Content-Type": "text/plain"}
    )
    as_list = api.client.post("/v1/pix/charges", json=[body()])
    assert as_text.status_code == 422
    assert as_list.status_code == 422
    assert api.count() == 0


def test_an_oversized_body_is_413(api: Api) -> None:
    response = api.post(body(description="x" * 70_000))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:pulso:problem:payload-too-large"
    assert api.count() == 0


def test_an_oversized_chunked_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"description": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post(
        "/v1/pix/charges", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert api.count() == 0


# --- the API key -----------------------------------------------------------------------------


@pytest.mark.parametrize("presented", [None, "wrong-token", TOKEN + "x", ""])
def test_a_missing_or_wrong_api_key_is_401(api: Api, presented: str | None) -> None:
    headers = {} if presented is None else {"X-API-Key": presented}
    client = TestClient(api.app, headers=headers)  # no default key
    for response in (
        client.post("/v1/pix/charges", json=body()),
        client.get("/v1/pix/charges/x"),
        client.get("/metrics"),
    ):
        assert response.status_code == 401
        assert response.json()["type"] == "urn:pulso:problem:unauthorized"
    assert api.count() == 0


def test_health_needs_no_key(api: Api) -> None:
    client = TestClient(api.app)
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "bus": "ok"}


def test_without_a_token_the_api_is_open(make_api: Callable[..., Api], caplog: Any) -> None:
    api = make_api(api_token=None)
    client = TestClient(api.app)
    assert client.post("/v1/pix/charges", json=body()).status_code == 201
    assert "PULSO_API_TOKEN is not set" in caplog.text


# --- a PSP that fails ----------------------------------------------------------------------


def test_a_psp_timeout_leaves_one_recorded_charge_that_a_retry_finishes(
    make_api: Callable[..., Api], settings: Settings
) -> None:
    psp = FlakyPSP(open_psp(settings), [PSPUnavailableError("timed out after 10 s")])
    api = make_api(psp)

    failed = api.post(body(), key="k-timeout")
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "5"
    problem = failed.json()
    assert problem["type"] == "urn:pulso:problem:psp-unavailable"
    assert api.count("status = 'creating'") == 1

    retried = api.post(body(), key="k-timeout")
    assert retried.status_code == 201
    assert retried.json()["id"] == problem["charge_id"]
    assert retried.json()["status"] == "pending"
    assert api.count() == 1
    assert psp.create_calls == [problem["charge_id"]] * 2  # the PSP saw one idempotency key


def test_a_psp_refusal_records_a_failed_charge_and_is_not_retried(
    make_api: Callable[..., Api], settings: Settings
) -> None:
    psp = FlakyPSP(open_psp(settings), [PSPError("payer.email must be a valid email")])
    api = make_api(psp)

    refused = api.post(body(), key="k-refused")
    again = api.post(body(), key="k-refused")

    assert refused.status_code == 502
    assert refused.json()["type"] == "urn:pulso:problem:psp-refused"
    assert again.status_code == 200
    assert again.json()["status"] == "failed"
    assert again.json()["failure_reason"] == "payer.email must be a valid email"
    assert len(psp.create_calls) == 1
    assert api.count() == 1


@pytest.fixture
def mercadopago() -> Iterator[FakeMercadoPago]:
    with FakeMercadoPago() as fake:
        yield fake


def _mp_psp(fake: FakeMercadoPago) -> MercadoPagoPSP:
    return MercadoPagoPSP(
        fake.access_token,
        base_url=fake.base_url,
        webhook_secret=SECRET,
        notification_url=None,
        timeout_s=0.3,
        max_retries=1,
        sleep=lambda _: None,
    )


def test_mercadopago_answering_500_then_recovering_makes_one_payment(
    make_api: Callable[..., Api], mercadopago: FakeMercadoPago
) -> None:
    api = make_api(_mp_psp(mercadopago))
    mercadopago.fail_next(500, times=2, method="POST")  # both attempts of the first request

    failed = api.post(body(payer={"email": "ana@example.com"}), key="k-500")
    retried = api.post(body(payer={"email": "ana@example.com"}), key="k-500")

    assert failed.status_code == 503
    assert retried.status_code == 201
    assert retried.json()["id"] == failed.json()["charge_id"]
    assert len(mercadopago.payments) == 1
    assert api.count() == 1


def test_mercadopago_timing_out_after_creating_still_makes_one_payment(
    make_api: Callable[..., Api], mercadopago: FakeMercadoPago
) -> None:
    api = make_api(_mp_psp(mercadopago))
    # Mercado Pago creates the payment, but answers after our timeout, twice.
    mercadopago.answer_late(1.0, times=2, method="POST")

    failed = api.post(body(payer={"email": "ana@example.com"}), key="k-late")
    retried = api.post(body(payer={"email": "ana@example.com"}), key="k-late")

    assert failed.status_code == 503
    assert retried.status_code == 201
    assert len(mercadopago.payments) == 1  # the idempotency key found the first payment
    keys = {r.headers["x-idempotency-key"] for r in mercadopago.requests_to("POST")}
    assert keys == {retried.json()["id"]}


def test_mercadopago_refusing_the_payer_is_a_502(
    make_api: Callable[..., Api], mercadopago: FakeMercadoPago
) -> None:
    api = make_api(_mp_psp(mercadopago))
    response = api.post(body())  # Mercado Pago requires payer.email
    assert response.status_code == 502
    assert response.json()["type"] == "urn:pulso:problem:psp-refused"
    assert api.count("status = 'failed'") == 1


def test_sandbox_routes_exist_only_with_the_sandbox(
    make_api: Callable[..., Api], mercadopago: FakeMercadoPago
) -> None:
    api = make_api(_mp_psp(mercadopago))
    response = api.client.post("/v1/sandbox/charges/anything/pay")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:pulso:problem:not-found"


def test_sandbox_pay_of_an_unknown_charge_is_404(api: Api) -> None:
    response = api.client.post("/v1/sandbox/charges/nope/pay")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:pulso:problem:charge-not-found"


# --- readiness, metrics, the store registry ---------------------------------------------------


def test_readyz_reports_a_failing_check_as_503(
    settings: Settings, backends: tuple[Store, Bus]
) -> None:
    store, bus = backends
    psp = open_psp(settings)
    checks = {"pipeline": lambda: "stopped: StoreError: disk full", "other": lambda: None}
    app = create_app(
        settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None, health_checks=checks
    )
    try:
        with TestClient(app) as client:
            response = client.get("/readyz")
    finally:
        psp.close()
    assert response.status_code == 503
    problem = response.json()
    assert problem["type"] == "urn:pulso:problem:not-ready"
    assert problem["checks"] == {
        "store": "ok",
        "bus": "ok",
        "pipeline": "stopped: StoreError: disk full",
        "other": "ok",
    }


def test_metrics_count_requests_by_route_and_charges_by_status(api: Api) -> None:
    api.post(body())
    api.post(body(amount="0"))
    api.app.state.pulso.ledger.flush()
    text = api.client.get("/metrics").text
    assert 'route="/v1/pix/charges",status="201"} 1.0' in text
    assert 'route="/v1/pix/charges",status="422"} 1.0' in text
    assert 'pulso_pix_charge_changes_total{status="creating"} 1.0' in text
    assert 'pulso_pix_charge_changes_total{status="pending"} 1.0' in text
    assert "pulso_pix_websocket_watchers 0.0" in text


def test_stores_come_from_a_csv_and_a_bad_row_names_its_line(
    backends: tuple[Store, Bus], tmp_path: Any
) -> None:
    from pulso.errors import ConfigError
    from pulso.pix.stores import read_stores_csv

    good = tmp_path / "stores.csv"
    good.write_text("store_id,name,city,uf\nLJ-0100,Loja Cem,Natal,RN\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("store_id,name,city,uf\nLJ-1,A,Natal,RN\nLJ-2,B,Lima,PE-RU\n", encoding="utf-8")

    registry = StoreRegistry(backends[0])
    assert registry.register(read_stores_csv(good)) == 1
    assert registry.require("LJ-0100") == StoreInfo("LJ-0100", "Loja Cem", "Natal", "RN")
    assert StoreRegistry(backends[0]).get("LJ-0100") is not None  # read back from the table
    with pytest.raises(ConfigError, match=r"bad.csv line 3: .*unknown UF"):
        read_stores_csv(bad)


def test_sandbox_pay_of_a_charge_that_can_no_longer_be_paid_is_409(api: Api) -> None:
    charge = api.post(body()).json()
    issued = api.app.state.pulso.service.get(charge["id"])
    api.psp.cancel_charge(issued.psp_payment_id)

    response = api.client.post(f"/v1/sandbox/charges/{charge['id']}/pay")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:pulso:problem:charge-not-payable"
    assert response.json()["charge_id"] == charge["id"]
