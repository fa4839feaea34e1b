"""PIX charge lifecycle payloads: created, confirmed, failed, expired."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from pulso.domain.rules import (
    AwareDatetime,
    Identifier,
    RuleError,
    ShortText,
    check_amount,
    check_document,
    check_uf,
)

Txid = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{1,35}$")]
PaymentType = Literal["pix_dynamic", "pix_static"]


class ChargeCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A PIX charge was issued at a till."""

    charge_id: Identifier
    txid: Txid
    store_id: Identifier
    city: ShortText
    uf: Annotated[str, msgspec.Meta(min_length=2, max_length=2)]
    amount: Decimal
    created_at: AwareDatetime
    expires_at: AwareDatetime
    payment_type: PaymentType = "pix_dynamic"
    psp: Identifier = "sandbox"
    description: str = ""
    payer_document: str | None = None  # CPF or CNPJ, digits only; never logged
    # Ground truth for evaluation only (pulso.domain.fraud.ANOMALY_KINDS), set by the
    # generator on anomalous charges; the detector never reads it.
    label: str | None = None

    def __post_init__(self) -> None:
        check_amount("amount", self.amount)
        check_uf(self.uf)
        check_document(self.payer_document)
        if self.expires_at <= self.created_at:
            raise RuleError("invalid_time", "expires_at must be after created_at")


class ChargeConfirmed(msgspec.Struct, frozen=True, kw_only=True):
    """The PSP confirmed that the payer paid."""

    charge_id: Identifier
    confirmed_at: AwareDatetime
    amount_paid: Decimal
    end_to_end_id: str = ""

    def __post_init__(self) -> None:
        check_amount("amount_paid", self.amount_paid)


class ChargeFailed(msgspec.Struct, frozen=True, kw_only=True):
    """The payment was refused or errored."""

    charge_id: Identifier
    failed_at: AwareDatetime
    reason: ShortText


class ChargeExpired(msgspec.Struct, frozen=True, kw_only=True):
    """The charge reached its expiry unpaid."""

    charge_id: Identifier
    expired_at: AwareDatetime
