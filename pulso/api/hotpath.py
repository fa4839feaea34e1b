"""``POST /v1/pix/charges`` without FastAPI's per-request machinery, for well-formed requests.

Charge creation is the API's busiest route, and FastAPI's routing, dependency solving and
body parsing cost more CPU per request than creating the charge itself (measured with py-spy
under load: ~55 % of the event loop's time). This ASGI middleware answers the requests it
can prove well-formed (the right API key, a well-formed ``Idempotency-Key``, a JSON body
that ``ChargeIn`` validates) by calling the same service and writing the same answer as the
route in ``routers/pix.py``. Every other request (an error of any kind, an unusual
``Content-Type``, a repeated header...) goes on to that route with its body replayed, so
every error answer comes from one place. Errors the service raises are answered here with
the same problem documents the app's exception handlers write.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache
from typing import Any, Final

from pydantic import ValidationError
from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulso.api.deps import API_KEY_HEADER, IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_PATTERN, ApiState
from pulso.api.problems import error_response
from pulso.api.schemas import ChargeIn, charge_json
from pulso.errors import PulsoError

CHARGES_PATH: Final = "/v1/pix/charges"

_API_KEY: Final = API_KEY_HEADER.lower().encode()
_IDEMPOTENCY_KEY: Final = IDEMPOTENCY_HEADER.lower().encode()
_KEY_SHAPE: Final = re.compile(IDEMPOTENCY_KEY_PATTERN.encode())
_JSON: Final = b"application/json"
_READ: Final = frozenset({_API_KEY, _IDEMPOTENCY_KEY, b"content-type"})


class CreateChargeHotPath:
    """Answers well-formed ``POST /v1/pix/charges`` requests itself (see the module doc).

    ``route`` is what the metrics label the request with (FastAPI's route object, as the
    router would have set it in the scope)."""

    def __init__(self, app: ASGIApp, state: ApiState, route: object) -> None:
        self.app = app
        self.state = state
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHARGES_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = self._well_formed_headers(scope)
        if headers is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        charge_in = None if body is None else _valid_body(body)
        if charge_in is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self.route
        try:
            result = await self.state.service.create_async(
                charge_in.to_domain(), idempotency_key=headers.get(_IDEMPOTENCY_KEY)
            )
        except PulsoError as e:  # as the app's PulsoError handler answers it
            await error_response(e, HTTPConnection(scope).url.path)(scope, receive, send)
            return
        charge = result.charge
        base_url = _base_url(scope)
        content = charge_json(charge, base_url)
        await send(
            {
                "type": "http.response.start",
                "status": 201 if result.created else 200,
                "headers": [
                    (b"content-length", b"%d" % len(content)),
                    (b"content-type", _JSON),
                    (b"location", f"{base_url}{CHARGES_PATH}/{charge.charge_id}".encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def _well_formed_headers(self, scope: Scope) -> dict[bytes, str] | None:
        """The headers the route reads, when each is there at most once, the API key is
        right, the Idempotency-Key (if any) well-formed and the body said to be JSON;
        None otherwise (the route then answers, or refuses, the request)."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _READ:
                if name in found:
                    return None
                found[name] = value
        if found.get(b"content-type") != _JSON:
            return None
        token = self.state.api_token
        if token is not None:
            presented = found.get(_API_KEY)
            # As deps.api_key_matches sees it: the header read as latin-1, then UTF-8.
            if presented is None or not hmac.compare_digest(
                presented.decode("latin-1").encode(), token
            ):
                return None
        key = found.get(_IDEMPOTENCY_KEY)
        if key is not None and not _KEY_SHAPE.fullmatch(key):
            return None
        return {} if key is None else {_IDEMPOTENCY_KEY: key.decode("ascii")}


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body (None when the client went away)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _valid_body(body: bytes) -> ChargeIn | None:
    try:
        return ChargeIn.model_validate_json(body)
    except ValidationError:
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back the messages already read."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _base_url(scope: Scope) -> str:
    """``str(request.base_url).rstrip("/")``, remembered per host (it is the same for
    every request of a till)."""
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    return _base_url_of(scope.get("scheme", "http"), host, _server(scope), root)


def _server(scope: Scope) -> tuple[str, int | None] | None:
    server: Any = scope.get("server")
    return None if server is None else (str(server[0]), server[1])


@lru_cache(maxsize=256)
def _base_url_of(
    scheme: str, host: bytes | None, server: tuple[str, int | None] | None, root: str
) -> str:
    headers = [] if host is None else [(b"host", host)]
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "path": root if root.endswith("/") else root + "/",
        "root_path": root,
        "query_string": b"",
        "headers": headers,
    }
    return str(URL(scope=scope)).rstrip("/")
