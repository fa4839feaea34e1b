"""Shared field rules for payloads; a broken rule raises :class:`RuleError` with a reason code."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from pulso.domain.money import MAX_AMOUNT, has_cents_precision
from pulso.domain.validators import is_valid_cnpj, is_valid_cpf, is_valid_uf

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]


class RuleError(ValueError):
    """A payload broke a domain rule; ``reason`` is a short code for the dead-letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_amount(field: str, amount: Decimal, *, allow_zero: bool = False) -> None:
    if not has_cents_precision(amount):
        raise RuleError("invalid_amount", f"{field} {amount} must have at most two decimal places")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise RuleError("invalid_amount", f"{field} must be positive, got {amount}")
    if amount > MAX_AMOUNT:
        raise RuleError("invalid_amount", f"{field} {amount} exceeds {MAX_AMOUNT}")


def check_uf(uf: str) -> None:
    if not is_valid_uf(uf):
        raise RuleError("invalid_uf", f"unknown UF {uf!r}")


def check_document(document: str | None) -> None:
    """A payer document is a CPF (11 digits) or a CNPJ (14) with valid check digits."""
    if document is None:
        return
    if len(document) == 11 and is_valid_cpf(document):
        return
    if len(document) == 14 and is_valid_cnpj(document):  # numeric or alphanumeric
        return
    kind = "CPF" if len(document) <= 11 else "CNPJ"
    raise RuleError(f"invalid_{kind.lower()}", f"payer {kind} fails its check digits")


def check_line(quantity: int, unit_price: Decimal, total: Decimal) -> None:
    """An order or sale line: positive prices and total = quantity × unit price, exactly."""
    check_amount("unit_price", unit_price)
    check_amount("total", total)
    if total != unit_price * quantity:
        raise RuleError(
            "invalid_total", f"total {total} is not quantity {quantity} × unit_price {unit_price}"
        )
