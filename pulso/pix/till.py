"""The till (PDV) side of a PIX charge: create it through the API, then wait for the verdict
on the charge's WebSocket, falling back to polling the API when the socket drops."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from pulso.errors import PulsoError

log = logging.getLogger(__name__)

TERMINAL: Final = frozenset({"confirmed", "failed", "expired"})


class TillError(PulsoError):
    """The API refused or could not be reached; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ChargeView:
    """A charge as the API shows it to the till."""

    id: str
    status: str
    amount: Decimal
    brcode: str | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    failure_reason: str | None
    events_url: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ChargeView:
        return cls(
            id=body["id"],
            status=body["status"],
            amount=Decimal(body["amount"]),
            brcode=body.get("brcode"),
            created_at=datetime.fromisoformat(body["created_at"]),
            expires_at=datetime.fromisoformat(body["expires_at"]),
            confirmed_at=_optional_time(body.get("confirmed_at")),
            failure_reason=body.get("failure_reason"),
            events_url=body["links"]["events"],
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def confirmation_s(self) -> float | None:
        if self.confirmed_at is None:
            return None
        return (self.confirmed_at - self.created_at).total_seconds()


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Till:
    """One point of sale talking to the pulso API."""

    def __init__(
        self, api_url: str, *, api_key: str | None, http: httpx.Client | None = None
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = http or httpx.Client(base_url=api_url, headers=headers, timeout=10.0)
        self._api_url = api_url

    def close(self) -> None:
        self._http.close()

    def create_charge(self, *, store_id: str, amount: Decimal, description: str) -> ChargeView:
        """Create a charge; the idempotency key makes a retried request return the same one."""
        body = {"amount": f"{amount:.2f}", "store_id": store_id, "description": description}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = self._request("POST", "/v1/pix/charges", json=body, headers=headers)
        return ChargeView.from_json(response.json())

    def get_charge(self, charge_id: str) -> ChargeView:
        return ChargeView.from_json(self._request("GET", f"/v1/pix/charges/{charge_id}").json())

    def wait(
        self,
        charge: ChargeView,
        *,
        timeout_s: float,
        on_update: Callable[[ChargeView, str], None],
        poll_every_s: float = 1.0,
    ) -> ChargeView:
        """Follow ``charge`` until it ends or ``timeout_s`` passes: on the WebSocket while it
        holds, then by polling. ``on_update`` hears each state and how it arrived."""
        deadline = time.monotonic() + timeout_s
        latest = self._follow_socket(charge, deadline, on_update)
        while not latest.is_terminal and time.monotonic() < deadline:
            time.sleep(poll_every_s)
            polled = self.get_charge(charge.id)
            if polled.status != latest.status:
                on_update(polled, "polling")
            latest = polled
        return latest

    def _follow_socket(
        self,
        charge: ChargeView,
        deadline: float,
        on_update: Callable[[ChargeView, str], None],
    ) -> ChargeView:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        latest = charge
        headers = dict(self._http.headers.items())
        api_key = {"X-API-Key": headers["x-api-key"]} if "x-api-key" in headers else {}
        try:
            with connect(charge.events_url, additional_headers=api_key, open_timeout=5) as ws:
                while not latest.is_terminal:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    update = ChargeView.from_json(json.loads(ws.recv(timeout=remaining)))
                    if update.status != latest.status:
                        on_update(update, "websocket")
                    latest = update
        except (OSError, TimeoutError, WebSocketException) as e:
            log.info("charge %s: WebSocket ended (%s); polling instead", charge.id, e)
        return latest

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise TillError(
                f"cannot reach the pulso API at {self._api_url} ({e}); is `pulso up` running?"
            ) from e
        if response.is_error:
            raise TillError(_problem_text(response))
        return response


def _problem_text(response: httpx.Response) -> str:
    """The problem document's title and detail (RFC 9457), or the bare status."""
    try:
        problem = response.json()
        detail = problem.get("detail") or ""
        return f"{response.status_code} {problem.get('title', '')}: {detail}".strip(": ")
    except (ValueError, AttributeError):
        return f"{response.status_code} {response.reason_phrase}"
