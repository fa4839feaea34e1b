"""RFC 9457 problem documents: which error becomes which problem, and what they never show."""

from __future__ import annotations

import orjson
import pytest

from pulso.api.problems import (
    INTERNAL,
    PROBLEM_MEDIA_TYPE,
    PayloadTooLargeError,
    UnauthorizedError,
    error_response,
    problem_document,
    problem_type_of,
    validation_errors,
)
from pulso.errors import BusUnavailableError, PulsoError, StoreError, StoreUnavailableError
from pulso.pix.charge import (
    ChargeCreationPendingError,
    ChargeNotPayableError,
    ChargeRefusedError,
    IdempotencyConflictError,
)
from pulso.pix.errors import (
    ChargeNotFoundError,
    PSPError,
    PSPUnavailableError,
    WebhookSignatureError,
)
from pulso.pix.stores import UnknownStoreError


@pytest.mark.parametrize(
    ("error", "slug", "status"),
    [
        (ChargeNotFoundError("c1"), "charge-not-found", 404),
        (UnknownStoreError("LJ-9"), "unknown-store", 422),
        (IdempotencyConflictError("c1"), "idempotency-key-reused", 422),
        (ChargeNotPayableError("c1", "expired"), "charge-not-payable", 409),
        (ChargeCreationPendingError("c1", "timeout"), "psp-unavailable", 503),
        (PSPUnavailableError("down"), "psp-unavailable", 503),
        (ChargeRefusedError("c1", "no"), "psp-refused", 502),
        (PSPError("no"), "psp-refused", 502),
        (WebhookSignatureError("bad signature"), "webhook-signature", 401),
        (StoreUnavailableError("down"), "store-unavailable", 503),
        (BusUnavailableError("down"), "bus-unavailable", 503),
        (UnauthorizedError("missing"), "unauthorized", 401),
        (PayloadTooLargeError(64 * 1024), "payload-too-large", 413),
    ],
)
def test_each_error_maps_to_its_problem(error: PulsoError, slug: str, status: int) -> None:
    problem = problem_type_of(error)
    assert (problem.slug, problem.status) == (slug, status)
    assert problem.uri == f"urn:pulso:problem:{slug}"


def test_an_error_without_a_problem_of_its_own_is_internal() -> None:
    assert problem_type_of(StoreError("disk full")) is INTERNAL
    assert problem_type_of(ValueError("bug")) is INTERNAL


def test_the_response_is_a_problem_document_with_the_error_identifiers() -> None:
    response = error_response(ChargeNotFoundError("01abc"), "/v1/pix/charges/01abc")
    assert response.status_code == 404
    assert response.media_type == PROBLEM_MEDIA_TYPE
    assert orjson.loads(response.body) == {
        "type": "urn:pulso:problem:charge-not-found",
        "title": "PIX charge not found",
        "status": 404,
        "detail": "no PIX charge with id '01abc'",
        "instance": "/v1/pix/charges/01abc",
        "charge_id": "01abc",
    }


def test_unavailable_answers_say_when_to_retry() -> None:
    response = error_response(ChargeCreationPendingError("c1", "timeout"), "/v1/pix/charges")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert orjson.loads(response.body)["charge_id"] == "c1"


def test_an_unexpected_error_is_logged_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    response = error_response(RuntimeError("secret detail at /etc/x"), "/v1/x")
    body = orjson.loads(response.body)
    assert response.status_code == 500
    assert body["type"] == "urn:pulso:problem:internal"
    assert "secret detail" not in bytes(response.body).decode()
    assert "secret detail" in caplog.text


def test_absent_extensions_are_left_out() -> None:
    document = problem_document(INTERNAL, "x", instance=None, charge_id=None, store_id="LJ-1")
    assert "charge_id" not in document
    assert "instance" not in document
    assert document["store_id"] == "LJ-1"


def test_validation_errors_name_the_fields_and_never_echo_the_values() -> None:
    errors = [
        {
            "type": "value_error",
            "loc": ("body", "payer", "document"),
            "msg": "Value error, is not a valid CPF: its check digits do not match",
            "input": "529.982.247-26",
        },
        {"type": "missing", "loc": ("body", "amount"), "msg": "Field required", "input": {}},
        {"type": "missing", "loc": ("header",), "msg": "bad", "input": None},
    ]
    listed = validation_errors(errors)
    assert listed == [
        {
            "field": "payer.document",
            "in": "body",
            "message": "Value error, is not a valid CPF: its check digits do not match",
        },
        {"field": "amount", "in": "body", "message": "Field required"},
        {"field": "header", "in": "header", "message": "bad"},
    ]
    assert "529" not in orjson.dumps(listed).decode()
