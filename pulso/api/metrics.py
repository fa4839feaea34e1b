"""Prometheus metrics of the API (``GET /metrics``), in a registry of the app's own, so that
several apps in one process (tests) never collide."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulso.pix.charge import Charge

LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED_ROUTE: Final = "unmatched"


class ApiMetrics:
    """The counters, histograms and gauges the API exports."""

    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pulso_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pulso_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.charge_changes = Counter(
            "pulso_pix_charge_changes",
            "PIX charge changes committed, by the status they reached",
            ["status"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "pulso_pix_webhooks",
            "PSP webhooks received, by outcome (applied, unchanged, ignored, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.websockets = Gauge(
            "pulso_pix_websocket_watchers",
            "WebSocket connections watching a charge",
            registry=self.registry,
        )

    def watch_websockets(self, count: Callable[[], float]) -> None:
        self.websockets.set_function(count)

    def on_changes(self, charges: Sequence[Charge]) -> None:
        """Ledger listener: count each committed change by its status."""
        for charge in charges:
            self.charge_changes.labels(charge.status).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template (not by raw path, which
    would make one series per charge id)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
