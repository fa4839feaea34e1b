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

:func:`install_hot_path` puts it in front of the app's whole middleware stack (Starlette's
server-error, FastAPI's telemetry and body-limit layers, pulso's body limit and metrics):
each layer costs the event loop a coroutine and a ``send`` wrapper per request, ~15 % of a
charge's time on the loop (py-spy). It therefore does for the requests it answers what those
layers would: it times and counts them in the metrics, refuses none over the body limit (an
oversized body goes on to the stack, whose limit answers 413), and answers an unexpected
error with the same 500 problem before re-raising it for the server's log.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.responses import Response
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
_HOST: Final = b"host"
_READ: Final = frozenset({_API_KEY, _IDEMPOTENCY_KEY, b"content-type", _HOST})


def install_hot_path(app: FastAPI, state: ApiState, route: object, *, max_body_bytes: int) -> None:
    """Answer well-formed ``POST /v1/pix/charges`` in front of ``app``'s middleware stack
    (see the module doc); everything else goes through the stack as before."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_behind_hot_path() -> ASGIApp:
        return CreateChargeHotPath(build(), state, route, max_body_bytes=max_body_bytes)

    # Starlette builds the stack on the first request by calling this attribute.
    app.build_middleware_stack = build_behind_hot_path  # type: ignore[method-assign]


class CreateChargeHotPath:
    """Answers well-formed ``POST /v1/pix/charges`` requests itself (see the module doc).

    ``route`` is what the metrics label the request with (FastAPI's route object, as the
    router would have set it in the scope)."""

    def __init__(
        self, app: ASGIApp, state: ApiState, route: object, *, max_body_bytes: int
    ) -> None:
        self.app = app
        self.state = state
        self.route = route
        self.route_path = str(getattr(route, "path", CHARGES_PATH))
        self.max_body_bytes = max_body_bytes
        self._metric_children: dict[int, tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHARGES_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = self._well_formed_headers(scope)
        if headers is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages, body = await _read_body(receive, self.max_body_bytes)
        charge_in = None if body is None else _valid_body(body)
        if charge_in is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self.route
        try:
            answer = await self._answer(scope, charge_in, headers)
        except Exception as e:  # nothing sent yet: as Starlette's ServerErrorMiddleware does
            self._observe(500, time.perf_counter() - started)
            await error_response(e, scope["path"])(scope, receive, send)
            raise
        if isinstance(answer, Response):
            await answer(scope, receive, send)
            status = answer.status_code
        else:
            status, content, location = answer
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-length", b"%d" % len(content)),
                        (b"content-type", _JSON),
                        (b"location", location),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
        self._observe(status, time.perf_counter() - started)

    def _observe(self, status: int, seconds: float) -> None:
        """``metrics.observe("POST", route, status, seconds)`` with the label lookups
        remembered (prometheus_client's ``labels()`` costs more than the count itself)."""
        children = self._metric_children.get(status)
        if children is None:
            metrics = self.state.metrics
            children = (
                metrics.requests.labels("POST", self.route_path, str(status)),
                metrics.latency.labels(self.route_path),
            )
            self._metric_children[status] = children
        children[0].inc()
        children[1].observe(seconds)

    async def _answer(
        self, scope: Scope, charge_in: ChargeIn, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, bytes] | Response:
        """Create the charge: its status, body and Location, or the problem response."""
        key = headers.get(_IDEMPOTENCY_KEY)
        try:
            result = await self.state.service.create_async(
                charge_in.to_domain(), idempotency_key=None if key is None else key.decode("ascii")
            )
        except PulsoError as e:  # as the app's PulsoError handler answers it
            return error_response(e, HTTPConnection(scope).url.path)
        charge = result.charge
        base_url = _base_url(scope, headers.get(_HOST))
        location = f"{base_url}{CHARGES_PATH}/{charge.charge_id}".encode()
        return 201 if result.created else 200, charge_json(charge, base_url), location

    def _well_formed_headers(self, scope: Scope) -> dict[bytes, bytes] | None:
        """The headers the route reads (and Host), when each is there at most once, the
        API key is right, the Idempotency-Key (if any) well-formed and the body said to be
        JSON; None otherwise (the route then answers, or refuses, the request)."""
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
        return found


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body (None when the client went away, or when
    the body outgrows ``limit``: the app's body limit then answers it)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


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


def _base_url(scope: Scope, host: bytes | None) -> str:
    """``str(request.base_url).rstrip("/")`` (``host``: the Host header), remembered per
    host (it is the same for every request of a till)."""
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
