"""What the routes depend on, as ``Annotated`` aliases: the app's services and the API key.

The dependencies are ``async def`` although they never wait: FastAPI runs a plain ``def``
dependency on a worker thread, and three thread hops per request cost more than the rest
of a request's routing (measured with py-spy under load).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from pulso.api.metrics import ApiMetrics
from pulso.api.problems import UnauthorizedError
from pulso.api.websocket import ChargeHub
from pulso.pix.charges import ChargeService
from pulso.pix.ledger import ChargeLedger
from pulso.store.protocol import Store

API_KEY_HEADER: Final = "X-API-Key"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x21-\x7e]{1,255}$"
"""1 to 255 visible ASCII characters."""

HealthCheck = Callable[[], str | None]
"""A readiness check: None when fine, else what is wrong."""


@dataclass(slots=True)
class ApiState:
    """Everything the routes use, built once by ``create_app``."""

    service: ChargeService
    ledger: ChargeLedger
    hub: ChargeHub
    metrics: ApiMetrics
    store: Store
    api_token: bytes | None
    health_checks: Mapping[str, HealthCheck] = field(default_factory=dict)


async def get_state(connection: HTTPConnection) -> ApiState:
    state: ApiState = connection.app.state.pulso
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_service(state: StateDep) -> ChargeService:
    return state.service


ServiceDep = Annotated[ChargeService, Depends(get_service)]

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The API token (PULSO_API_TOKEN); not needed when the server runs without one",
)


def api_key_matches(state: ApiState, presented: str | None) -> bool:
    """Constant-time comparison with the configured token; no token configured: open API."""
    if state.api_token is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), state.api_token)


async def require_api_key(
    state: StateDep, presented: Annotated[str | None, Security(_api_key_header)]
) -> None:
    if not api_key_matches(state, presented):
        reason = "missing" if presented is None else "wrong"
        raise UnauthorizedError(
            f"{reason} {API_KEY_HEADER} header: send the API token the server was started "
            "with (PULSO_API_TOKEN)"
        )


ApiKeyDep = Depends(require_api_key)
