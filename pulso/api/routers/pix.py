"""PIX charges: create, read, QR images, receipt, and the WebSocket of status changes."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Request, Response, WebSocket
from fastapi.routing import APIRoute

from pulso.api.deps import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    ApiKeyDep,
    ServiceDep,
    StateDep,
    api_key_matches,
)
from pulso.api.problems import (
    CHARGE_NOT_FOUND,
    IDEMPOTENCY_KEY_REUSED,
    PSP_REFUSED,
    PSP_UNAVAILABLE,
    UNAUTHORIZED,
    UNKNOWN_STORE,
    VALIDATION,
    ApiError,
    ProblemType,
    UnauthorizedError,
    error_response,
)
from pulso.api.schemas import ChargeIn, ChargeOut, charge_json
from pulso.api.websocket import deny, stream_charge
from pulso.pix.charge import Charge
from pulso.pix.errors import ChargeNotFoundError

router = APIRouter(prefix="/v1/pix/charges", tags=["pix"])

CHARGE_NOT_ISSUED: Final = ProblemType("charge-not-issued", 409, "The charge has no BR Code")
RECEIPT_NOT_READY: Final = ProblemType("receipt-not-ready", 503, "The receipt is not ready yet")
QR_CACHE_SIZE: Final = 1024


def _problems(*problems: ProblemType) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem documents a route can answer."""
    return {
        p.status: {"description": p.title, "content": {"application/problem+json": {}}}
        for p in problems
    }


@router.post(
    "",
    status_code=201,
    dependencies=[ApiKeyDep],
    response_class=Response,
    responses={
        201: {"model": ChargeOut, "description": "The charge, created"},
        200: {"model": ChargeOut, "description": "The charge this Idempotency-Key created"},
        **_problems(
            VALIDATION,
            UNKNOWN_STORE,
            IDEMPOTENCY_KEY_REUSED,
            UNAUTHORIZED,
            PSP_UNAVAILABLE,
            PSP_REFUSED,
        ),
    },
)
async def create_charge(
    body: ChargeIn,
    request: Request,
    service: ServiceDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retry-safe key: the same key and body return the same charge",
        ),
    ] = None,
) -> Response:
    """Create a PIX charge for a till and return its BR Code (copia e cola) and links.

    Answers 201 with the new charge, or 200 with the charge an earlier request with the
    same ``Idempotency-Key`` and body created."""
    # Well-formed requests are answered by pulso.api.hotpath before they get here, the same
    # way; this route answers the others, errors included.
    result = await service.create_async(body.to_domain(), idempotency_key=idempotency_key)
    base_url = str(request.base_url).rstrip("/")
    return Response(
        charge_json(result.charge, base_url),
        status_code=201 if result.created else 200,
        headers={"Location": f"{base_url}{router.prefix}/{result.charge.charge_id}"},
        media_type="application/json",
    )


def create_route() -> APIRoute:
    """The route of ``create_charge`` (what metrics label its requests with)."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is create_charge)


@router.get(
    "/{charge_id}",
    dependencies=[ApiKeyDep],
    responses=_problems(CHARGE_NOT_FOUND, UNAUTHORIZED),
)
def get_charge(charge_id: str, request: Request, service: ServiceDep) -> ChargeOut:
    """The charge as it stands now."""
    return ChargeOut.of(service.get(charge_id), str(request.base_url))


@router.get(
    "/{charge_id}/qr.png",
    dependencies=[ApiKeyDep],
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        **_problems(CHARGE_NOT_FOUND, CHARGE_NOT_ISSUED, UNAUTHORIZED),
    },
)
def get_qr_png(charge_id: str, service: ServiceDep) -> Response:
    """The BR Code as a PNG QR code."""
    brcode = _brcode(service.get(charge_id))
    return Response(_png(brcode), media_type="image/png", headers=_IMMUTABLE)


@router.get(
    "/{charge_id}/qr.svg",
    dependencies=[ApiKeyDep],
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}},
        **_problems(CHARGE_NOT_FOUND, CHARGE_NOT_ISSUED, UNAUTHORIZED),
    },
)
def get_qr_svg(charge_id: str, service: ServiceDep) -> Response:
    """The BR Code as an SVG QR code."""
    brcode = _brcode(service.get(charge_id))
    return Response(_svg(brcode), media_type="image/svg+xml", headers=_IMMUTABLE)


@router.get(
    "/{charge_id}/receipt.pdf",
    dependencies=[ApiKeyDep],
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}},
        **_problems(CHARGE_NOT_FOUND, RECEIPT_NOT_READY, UNAUTHORIZED),
    },
)
def get_receipt_pdf(charge_id: str, service: ServiceDep, state: StateDep) -> Response:
    """The charge's receipt ("comprovante") as a one-page PDF, from the facts the pipeline
    keeps; 503 for the moment between a change and the pipeline folding it."""
    from pulso.reports import ReportError
    from pulso.reports.receipt import receipt_for_charge, render_receipt

    service.get(charge_id)  # 404 for a charge the API does not know
    try:
        receipt = receipt_for_charge(state.store, charge_id)
    except (ChargeNotFoundError, ReportError) as e:
        raise ApiError(
            RECEIPT_NOT_READY,
            f"the pipeline has not recorded charge {charge_id} yet; retry in a few seconds",
        ) from e
    return Response(
        render_receipt(receipt),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="comprovante-{charge_id}.pdf"'},
    )


@router.websocket("/{charge_id}/events")
async def charge_events(websocket: WebSocket, charge_id: str, state: StateDep) -> None:
    """The charge now, then after every status change; closes after a terminal status."""
    if not api_key_matches(state, websocket.headers.get(API_KEY_HEADER)):
        error = UnauthorizedError(f"missing or wrong {API_KEY_HEADER} header")
        await deny(websocket, error_response(error, websocket.url.path))
        return
    await stream_charge(websocket, charge_id, hub=state.hub, service=state.service)


# The BR Code of a charge never changes, so its images may be cached by the till.
_IMMUTABLE: Final = {"Cache-Control": "private, max-age=86400, immutable"}


def _brcode(charge: Charge) -> str:
    if not charge.brcode:
        raise ApiError(
            CHARGE_NOT_ISSUED,
            f"charge {charge.charge_id} is {charge.status} and has no BR Code yet",
        )
    return charge.brcode


@lru_cache(maxsize=QR_CACHE_SIZE)
def _png(brcode: str) -> bytes:
    from pulso.pix.qr import qr_png

    return qr_png(brcode)


@lru_cache(maxsize=QR_CACHE_SIZE)
def _svg(brcode: str) -> str:
    from pulso.pix.qr import qr_svg

    return qr_svg(brcode)
