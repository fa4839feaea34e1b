"""Errors as RFC 9457 problem documents (``application/problem+json``), from one handler.

Every error the API answers is one of these types (``type`` is ``urn:pulso:problem:<slug>``):

=========================  ======  ==========================================================
slug                       status  when
=========================  ======  ==========================================================
validation                 422     the request does not match its schema (``errors`` lists
                                   each field: ``field``, ``in``, ``message``; the values
                                   sent are never echoed, so a CPF never comes back)
malformed-body             400     the body is not JSON
payload-too-large          413     the body is larger than 64 KiB
unauthorized               401     ``X-API-Key`` missing or wrong
webhook-signature          401     a webhook's ``x-signature`` is missing, malformed, stale
                                   or forged; nothing was stored
unknown-store              422     ``store_id`` is not registered (``store_id``)
idempotency-key-reused     422     the ``Idempotency-Key`` created a charge from another body
                                   (``charge_id``)
charge-not-found           404     no charge has this id (``charge_id``)
charge-not-payable         409     sandbox pay of a charge that is not pending (``charge_id``)
charge-not-issued          409     a QR image of a charge the PSP has not issued (yet)
receipt-not-ready          503     a receipt before the pipeline has recorded the charge
psp-unavailable            503     the PSP did not answer; when ``charge_id`` is present the
                                   charge is recorded: retry with the same Idempotency-Key
psp-refused                502     the PSP refused; the charge is recorded as failed
store-unavailable          503     the database cannot be reached
bus-unavailable            503     the message bus cannot be reached
not-ready                  503     ``/readyz``: a dependency is down (``checks``)
not-found                  404     no such route
method-not-allowed         405     the route exists, the method does not
internal                   500     anything else (logged with its traceback, not shown)
=========================  ======  ==========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pulso.analytics.heatmaps import HeatmapError, UnknownHeatmapError
from pulso.errors import BusUnavailableError, PulsoError, StoreUnavailableError
from pulso.pix.charge import (
    ChargeNotPayableError,
    ChargeRefusedError,
    IdempotencyConflictError,
    SandboxOnlyError,
)
from pulso.pix.errors import (
    ChargeNotFoundError,
    PSPError,
    PSPUnavailableError,
    WebhookSignatureError,
)
from pulso.pix.stores import UnknownStoreError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:pulso:problem:"
RETRY_AFTER_S: Final = 5
_EXTENSION_ATTRIBUTES: Final = ("charge_id", "store_id")
ErrorT = TypeVar("ErrorT", bound=Exception)


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.slug


VALIDATION = ProblemType("validation", 422, "Request validation failed")
MALFORMED_BODY = ProblemType("malformed-body", 400, "The request body is not valid JSON")
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", 413, "Request body too large")
UNAUTHORIZED = ProblemType("unauthorized", 401, "Missing or wrong API key")
WEBHOOK_SIGNATURE = ProblemType("webhook-signature", 401, "Webhook signature rejected")
UNKNOWN_STORE = ProblemType("unknown-store", 422, "Unknown store")
IDEMPOTENCY_KEY_REUSED = ProblemType(
    "idempotency-key-reused", 422, "Idempotency-Key reused with a different request"
)
UNKNOWN_HEATMAP = ProblemType("unknown-heatmap", 404, "Unknown heatmap")
BAD_ANALYTICS_QUERY = ProblemType("bad-query", 422, "The analytics query cannot be answered")
CHARGE_NOT_FOUND = ProblemType("charge-not-found", 404, "PIX charge not found")
CHARGE_NOT_PAYABLE = ProblemType("charge-not-payable", 409, "The charge cannot be paid")
SANDBOX_ONLY = ProblemType("not-found", 404, "Sandbox endpoint")
PSP_UNAVAILABLE = ProblemType("psp-unavailable", 503, "Payment provider unavailable")
PSP_REFUSED = ProblemType("psp-refused", 502, "Payment provider refused the request")
STORE_UNAVAILABLE = ProblemType("store-unavailable", 503, "Database unavailable")
BUS_UNAVAILABLE = ProblemType("bus-unavailable", 503, "Message bus unavailable")
NOT_READY = ProblemType("not-ready", 503, "Not ready")
NOT_FOUND = ProblemType("not-found", 404, "Not found")
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", 405, "Method not allowed")
INTERNAL = ProblemType("internal", 500, "Internal server error")


class ApiError(PulsoError):
    """An error the HTTP layer raises itself, with the problem type it answers."""

    def __init__(self, problem: ProblemType, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


class UnauthorizedError(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(UNAUTHORIZED, detail)


class PayloadTooLargeError(ApiError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            PAYLOAD_TOO_LARGE,
            f"the request body exceeds {limit_bytes // 1024} KiB; send a smaller body",
        )
        self.limit_bytes = limit_bytes


# The most specific class wins: lookups walk the error's MRO.
_BY_ERROR: Final[dict[type[BaseException], ProblemType]] = {
    WebhookSignatureError: WEBHOOK_SIGNATURE,
    UnknownHeatmapError: UNKNOWN_HEATMAP,
    HeatmapError: BAD_ANALYTICS_QUERY,
    UnknownStoreError: UNKNOWN_STORE,
    IdempotencyConflictError: IDEMPOTENCY_KEY_REUSED,
    ChargeNotFoundError: CHARGE_NOT_FOUND,
    ChargeNotPayableError: CHARGE_NOT_PAYABLE,
    SandboxOnlyError: SANDBOX_ONLY,
    PSPUnavailableError: PSP_UNAVAILABLE,
    ChargeRefusedError: PSP_REFUSED,
    PSPError: PSP_REFUSED,
    StoreUnavailableError: STORE_UNAVAILABLE,
    BusUnavailableError: BUS_UNAVAILABLE,
}


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses`` for OpenAPI: the statuses its problem documents may have."""
    return {status: {"description": text} for status, text in descriptions.items()}


@contextmanager
def raised_as(problems: Mapping[type[ErrorT], ProblemType]) -> Iterator[None]:
    """Re-raise an error of one of ``problems``' classes as an :class:`ApiError` of its
    problem type (the most specific class wins), its message the ``detail``."""
    try:
        yield
    except tuple(problems) as e:
        problem = next(problems[cls] for cls in type(e).__mro__ if cls in problems)
        raise ApiError(problem, str(e)) from e


def problem_type_of(error: BaseException) -> ProblemType:
    if isinstance(error, ApiError):
        return error.problem
    for cls in type(error).__mro__:
        problem = _BY_ERROR.get(cls)
        if problem is not None:
            return problem
    return INTERNAL


def problem_document(
    problem: ProblemType, detail: str, *, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": problem.uri,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    if instance:
        document["instance"] = instance
    document.update({k: v for k, v in extensions.items() if v is not None})
    return document


def problem_response(
    problem: ProblemType,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = orjson.dumps(problem_document(problem, detail, instance=instance, **extensions))
    all_headers = dict(headers or {})
    if problem.status == 503:
        all_headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return Response(body, problem.status, all_headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(error: BaseException, instance: str | None) -> Response:
    """The problem response for any exception (unexpected ones are logged, not shown)."""
    problem = problem_type_of(error)
    if problem is INTERNAL:
        log.error("unexpected error answering %s", instance, exc_info=error)
        return problem_response(
            INTERNAL, "an unexpected error occurred; it was logged", instance=instance
        )
    extensions = {a: getattr(error, a, None) for a in _EXTENSION_ATTRIBUTES}
    return problem_response(problem, str(error), instance=instance, **extensions)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Each failed field as ``{field, in, message}``; the input values are left out."""
    listed: list[dict[str, str]] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "body"
        field = ".".join(location[1:]) if len(location) > 1 else where
        message = str(error.get("msg", "invalid"))
        listed.append({"field": field, "in": where, "message": message})
    return listed


def _is_malformed_json(errors: Sequence[Any]) -> bool:
    return any(e.get("type") == "json_invalid" for e in errors)


async def _on_pulso_error(request: Request, error: Exception) -> Response:
    return error_response(error, request.url.path)


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if _is_malformed_json(errors):
        return problem_response(
            MALFORMED_BODY,
            "the body could not be parsed as JSON; send a JSON object with "
            "Content-Type: application/json",
            instance=request.url.path,
        )
    fields = validation_errors(errors)
    names = ", ".join(f["field"] for f in fields)
    return problem_response(
        VALIDATION, f"invalid fields: {names}", instance=request.url.path, errors=fields
    )


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    by_status = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 401: UNAUTHORIZED}
    problem = by_status.get(error.status_code)
    if problem is None:
        problem = ProblemType("http-error", error.status_code, "HTTP error")
    detail = error.detail if isinstance(error.detail, str) else problem.title
    return problem_response(problem, detail, instance=request.url.path, headers=error.headers)


async def _on_unexpected(request: Request, error: Exception) -> Response:
    return error_response(error, request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to a problem document."""
    app.add_exception_handler(PulsoError, _on_pulso_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
