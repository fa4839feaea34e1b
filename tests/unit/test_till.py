"""The till client: problem documents become clear errors; a dead WebSocket falls back to
polling the API."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pulso.pix.till import ChargeView, Till, TillError


def charge_json(status: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "ch_1",
        "txid": "T1",
        "status": status,
        "amount": "25.90",
        "brcode": "000201",
        "store_id": "LJ-0001",
        "description": "x",
        "created_at": "2026-11-20T15:00:00+00:00",
        "expires_at": "2026-11-20T15:10:00+00:00",
        "confirmed_at": "2026-11-20T15:00:07.500000+00:00" if status == "confirmed" else None,
        "failure_reason": None,
        # A port nothing listens on: the socket fails at once and the till polls.
        "links": {"events": "ws://127.0.0.1:1/v1/pix/charges/ch_1/events"},
    }
    body.update(changes)
    return body


def test_create_sends_an_idempotency_key_and_the_api_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=charge_json("pending"))

    http = httpx.Client(
        base_url="http://api", transport=httpx.MockTransport(handler), headers={"X-API-Key": "k"}
    )
    charge = Till("http://api", api_key="k", http=http).create_charge(
        store_id="LJ-0001", amount=Decimal("25.9"), description="café"
    )
    assert charge.status == "pending" and charge.amount == Decimal("25.90")
    [request] = seen
    assert request.headers["Idempotency-Key"] and request.headers["X-API-Key"] == "k"
    assert json.loads(request.content) == {
        "amount": "25.90",
        "store_id": "LJ-0001",
        "description": "café",
    }


def test_a_problem_document_becomes_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        problem = {"title": "Unknown store", "detail": "no store LJ-9999", "status": 422}
        return httpx.Response(422, json=problem)

    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(handler))
    with pytest.raises(TillError, match="422 Unknown store: no store LJ-9999"):
        Till("http://api", api_key=None, http=http).create_charge(
            store_id="LJ-9999", amount=Decimal("1.00"), description="x"
        )


def test_unreachable_api_says_what_to_start() -> None:
    with pytest.raises(TillError, match="pulso up"):
        Till("http://127.0.0.1:1", api_key=None).get_charge("ch_1")


def test_dead_websocket_falls_back_to_polling_until_paid() -> None:
    answers = iter(["pending", "pending", "confirmed"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=charge_json(next(answers)))

    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(handler))
    till = Till("http://api", api_key=None, http=http)
    updates: list[tuple[str, str]] = []
    final = till.wait(
        ChargeView.from_json(charge_json("pending")),
        timeout_s=30,
        poll_every_s=0.01,
        on_update=lambda c, via: updates.append((c.status, via)),
    )
    assert final.status == "confirmed" and final.confirmation_s == 7.5
    assert updates == [("confirmed", "polling")]


def test_waiting_gives_up_at_the_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=charge_json("pending"))

    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(handler))
    till = Till("http://api", api_key=None, http=http)
    final = till.wait(
        ChargeView.from_json(charge_json("pending")),
        timeout_s=0.05,
        poll_every_s=0.01,
        on_update=lambda c, via: None,
    )
    assert final.status == "pending"
