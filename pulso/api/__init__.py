"""The HTTP API (FastAPI): PIX charges, webhooks, WebSocket pushes, health and metrics."""

from __future__ import annotations

from pulso.api.app import create_app

__all__ = ["create_app"]
