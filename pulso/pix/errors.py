"""Errors of the PIX context.

PulsoError
└── PixError                   anything PIX-specific went wrong
    ├── BRCodeError            a BR Code cannot be built or parsed (names the field: "26.01")
    ├── InvalidPixKeyError     a PIX key is malformed (names the key type it was read as)
    ├── PSPError               the payment service provider failed or refused
    │   └── PSPUnavailableError    the PSP cannot be reached or keeps answering 5xx/429
    ├── ChargeNotFoundError    no charge with this id (carries charge_id)
    └── WebhookSignatureError  a notification's signature is missing, malformed, stale or forged

Messages say what happened and what fixes it; none of them carries a whole CPF or CNPJ.
"""

from __future__ import annotations

from pulso.errors import PulsoError


class PixError(PulsoError):
    """Root of the PIX context's errors."""


class BRCodeError(PixError):
    """A BR Code payload is invalid, or its inputs cannot form one."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"BR Code field {field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidPixKeyError(PixError):
    """A PIX key does not follow the DICT format of its type."""

    def __init__(self, key_type: str, problem: str) -> None:
        super().__init__(f"invalid PIX key ({key_type}): {problem}")
        self.key_type = key_type
        self.problem = problem


class PSPError(PixError):
    """The payment service provider failed or refused a request."""


class PSPUnavailableError(PSPError):
    """The payment service provider cannot be reached."""


class ChargeNotFoundError(PixError):
    """No charge has this id."""

    def __init__(self, charge_id: str) -> None:
        super().__init__(f"no PIX charge with id {charge_id!r}")
        self.charge_id = charge_id


class WebhookSignatureError(PixError):
    """A webhook notification failed signature validation."""
