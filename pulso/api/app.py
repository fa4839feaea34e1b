"""The FastAPI application: ``create_app(settings, store=..., bus=..., psp=...)``.

The caller owns the store, the bus and the PSP (opens and closes them); the app owns what it
builds on them: the charge ledger's writer thread, the reconciler, the WebSocket hub and the
metrics, started and stopped with the app's lifespan.

Authentication: ``X-API-Key`` must equal ``PULSO_API_TOKEN`` on every route except
``/healthz``, ``/readyz`` and the PSP webhook (which its HMAC signature authenticates). When
``PULSO_API_TOKEN`` is unset the API is open, and a WARNING says so at start: fine on a
developer's machine, never on a network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulso.api.deps import ApiState, HealthCheck
from pulso.api.hotpath import install_hot_path
from pulso.api.metrics import ApiMetrics, MetricsMiddleware
from pulso.api.problems import PayloadTooLargeError, error_response, install_problem_handlers
from pulso.api.routers import (
    alerts,
    analytics,
    health,
    kpis,
    market,
    orders_query,
    pix,
    sandbox,
    webhooks,
)
from pulso.api.websocket import ChargeHub
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.pix.charge import Clock, utc_now
from pulso.pix.charges import ChargeService
from pulso.pix.ledger import ChargeLedger
from pulso.pix.providers.protocol import PSP, SimulatedPayer
from pulso.pix.reconciler import Reconciler
from pulso.pix.stores import StoreRegistry
from pulso.store.protocol import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_RECONCILE_INTERVAL_S: Final = 5.0


def create_app(
    settings: Settings,
    *,
    store: Store,
    bus: Bus,
    psp: PSP,
    registry: StoreRegistry | None = None,
    clock: Clock = utc_now,
    reconcile_interval_s: float | None = DEFAULT_RECONCILE_INTERVAL_S,
    health_checks: Mapping[str, HealthCheck] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The API over these backends; ``reconcile_interval_s=None`` runs no reconciler (tests
    drive ``app.state.pulso`` and a :class:`Reconciler` themselves)."""
    state = _build_state(settings, store, bus, psp, registry, clock, health_checks)
    reconciler = (
        Reconciler(state.service, interval_s=reconcile_interval_s)
        if reconcile_interval_s is not None
        else None
    )
    app = FastAPI(
        title="pulso",
        summary="PIX charges at the till, confirmed in real time",
        version="0.1.0",
        lifespan=_lifespan(state, reconciler),
    )
    app.state.pulso = state
    install_problem_handlers(app)
    for router in (pix.router, webhooks.router, health.router, analytics.router, kpis.router):
        app.include_router(router)
    app.include_router(alerts.router)
    app.include_router(market.router)
    app.include_router(orders_query.router)
    if isinstance(psp, SimulatedPayer):
        app.include_router(sandbox.router)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    install_hot_path(app, state, pix.create_route(), max_body_bytes=max_body_bytes)
    return app


def _build_state(
    settings: Settings,
    store: Store,
    bus: Bus,
    psp: PSP,
    registry: StoreRegistry | None,
    clock: Clock,
    health_checks: Mapping[str, HealthCheck] | None,
) -> ApiState:
    hub = ChargeHub()
    metrics = ApiMetrics()
    metrics.watch_websockets(lambda: hub.watching)
    ledger = ChargeLedger(store, bus, listeners=(hub.publish, metrics.on_changes))
    service = ChargeService(ledger, psp, registry or StoreRegistry(store), clock=clock)
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None
    return ApiState(
        service=service,
        ledger=ledger,
        hub=hub,
        metrics=metrics,
        store=store,
        api_token=token or None,
        health_checks=dict(health_checks or {}),
    )


def _lifespan(
    state: ApiState, reconciler: Reconciler | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.api_token is None:
            log.warning(
                "PULSO_API_TOKEN is not set: the API is open to anyone who can reach it; "
                "set it before exposing this server"
            )
        state.hub.bind(asyncio.get_running_loop())
        state.ledger.start()
        if reconciler is not None:
            reconciler.start()
        try:
            yield
        finally:
            if reconciler is not None:
                reconciler.stop()
            state.ledger.close()

    return lifespan


class BodyLimitMiddleware:
    """Refuses bodies over ``max_body_bytes`` with a 413 problem: at once when
    Content-Length says so, and while reading when a chunked body grows past it (the app
    then reads a disconnect, and whatever it answers is dropped: the 413 went first)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_body_bytes:
            await self._too_large(scope)(scope, receive, send)
            return
        received_bytes = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received_bytes, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    refused = True
                    await self._too_large(scope)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:  # after the 413, the app's complaint about the cut body is moot
                raise

    def _too_large(self, scope: Scope) -> ASGIApp:
        return error_response(PayloadTooLargeError(self.max_body_bytes), scope["path"])


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
