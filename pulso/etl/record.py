"""The record rules of a sales file's row, as a pydantic model: the written definition the
vectorised checks (``validate``) implement for speed, and what explains a refused row.

Fields are checked in the file's column order and the first broken rule is the row's reason;
the vectorised checks report the same one (tests/integration/test_etl.py holds them to it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pulso.domain.money import CENT, MAX_AMOUNT, to_cents
from pulso.domain.validators import is_valid_uf
from pulso.etl import normalise
from pulso.etl.layout import (
    AMOUNT_PATTERN,
    ID_MAX_CHARS,
    QUANTITY_MAX,
    QUANTITY_PATTERN,
    TEXT_MAX_CHARS,
    TIMESTAMP_PATTERN,
    Reason,
)
from pulso.etl.rules import SaleRules

# ASCII: Python's \d would take any script's digits, RE2's (the bulk checks) only 0-9.
_TIMESTAMP_RE: Final = re.compile(TIMESTAMP_PATTERN, re.ASCII)
_QUANTITY_RE: Final = re.compile(QUANTITY_PATTERN, re.ASCII)
_AMOUNT_RE: Final = re.compile(AMOUNT_PATTERN, re.ASCII)


def _fail(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _field(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _text_value(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str):
        raise _fail("not_text", f"{_field(info)} must be text, got {type(value).__name__}")
    return value


def _present(value: str, info: ValidationInfo) -> str:
    if not value:
        raise _fail(Reason.MISSING_VALUE, f"{_field(info)} is empty")
    return value


def _bounded(value: str, info: ValidationInfo, max_chars: int) -> str:
    _present(value, info)
    if len(value) > max_chars:
        raise _fail(
            Reason.TOO_LONG, f"{_field(info)} has {len(value)} characters (max {max_chars})"
        )
    return value


def _token(value: Any, info: ValidationInfo) -> str:
    return _present(normalise.clean_token(_text_value(value, info)), info)


def _identifier(value: Any, info: ValidationInfo) -> str:
    return _bounded(normalise.clean_token(_text_value(value, info)), info, ID_MAX_CHARS)


def _text(value: Any, info: ValidationInfo) -> str:
    return _bounded(normalise.clean_text(_text_value(value, info)), info, TEXT_MAX_CHARS)


def _name(value: Any, info: ValidationInfo) -> str:
    return _bounded(normalise.clean_name(_text_value(value, info)), info, TEXT_MAX_CHARS)


def _rules(info: ValidationInfo) -> SaleRules:
    if not isinstance(info.context, SaleRules):
        raise TypeError("validate a SaleRow with context=SaleRules(...)")
    return info.context


def _sold_at(value: Any, info: ValidationInfo) -> datetime:
    text = _token(value, info)
    if not _TIMESTAMP_RE.match(text):
        raise _fail(
            Reason.INVALID_SOLD_AT,
            f"sold_at {text!r} is not YYYY-MM-DDTHH:MM:SS with a UTC offset (-03:00 or Z)",
        )
    try:
        at = datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as e:
        raise _fail(Reason.INVALID_SOLD_AT, f"sold_at {text!r} is not a real time ({e})") from e
    rules = _rules(info)
    if not rules.earliest <= at <= rules.latest:
        raise _fail(
            Reason.SOLD_AT_OUT_OF_RANGE,
            f"sold_at {text} is outside {rules.earliest:%Y-%m-%d %H:%M}"
            f" – {rules.latest:%Y-%m-%d %H:%M} UTC",
        )
    return at


def _category(value: Any, info: ValidationInfo) -> str:
    text = _present(normalise.clean_text(_text_value(value, info)), info)
    canonical = _rules(info).categories.get(normalise.category_key(text))
    if canonical is None:
        raise _fail(Reason.UNKNOWN_CATEGORY, f"category {text!r} is not in the catalogue")
    return canonical


def _quantity(value: Any, info: ValidationInfo) -> int:
    text = _token(value, info)
    if not _QUANTITY_RE.match(text) or not 1 <= int(text) <= QUANTITY_MAX:
        raise _fail(
            Reason.INVALID_QUANTITY, f"quantity {text!r} is not a whole number 1..{QUANTITY_MAX}"
        )
    return int(text)


def _amount(value: Any, info: ValidationInfo) -> Decimal:
    text = _token(value, info)
    if not _AMOUNT_RE.match(text):
        raise _fail(
            Reason.INVALID_AMOUNT,
            f"{_field(info)} {text!r} is not an amount like 1234.56 ('.' and up to 2 decimals)",
        )
    amount = Decimal(text).quantize(CENT)
    if not 0 < amount <= MAX_AMOUNT:
        raise _fail(Reason.INVALID_AMOUNT, f"{_field(info)} must be positive, got {text}")
    return amount


def _uf(value: Any, info: ValidationInfo) -> str:
    uf = _present(normalise.clean_uf(_text_value(value, info)), info)
    if not is_valid_uf(uf):
        raise _fail(Reason.INVALID_UF, f"unknown UF {uf!r}")
    return uf


def _before(check: Any) -> BeforeValidator:
    return BeforeValidator(check)


class SaleRow(BaseModel):
    """One row of a daily sales file, cleaned and checked.

    Validate the row's text with ``SaleRow.model_validate(row, context=rules)``; values come
    out normalised (see ``pulso.etl.normalise``), ``sold_at`` in UTC, amounts exact.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sale_id: Annotated[str, _before(_identifier)]
    sold_at: Annotated[datetime, _before(_sold_at)]
    store_id: Annotated[str, _before(_identifier)]
    seller: Annotated[str, _before(_name)]
    product: Annotated[str, _before(_text)]
    category: Annotated[str, _before(_category)]
    quantity: Annotated[int, _before(_quantity)]
    unit_price: Annotated[Decimal, _before(_amount)]
    total: Annotated[Decimal, _before(_amount)]
    payment_method: Annotated[str, _before(_text)]
    city: Annotated[str, _before(_name)]
    uf: Annotated[str, _before(_uf)]

    @model_validator(mode="after")
    def _total_is_quantity_times_unit_price(self) -> SaleRow:
        if self.total != self.unit_price * self.quantity:
            raise _fail(
                Reason.INVALID_TOTAL,
                f"total {self.total} is not quantity {self.quantity} × unit_price "
                f"{self.unit_price} (= {self.unit_price * self.quantity})",
            )
        return self

    @property
    def unit_price_cents(self) -> int:
        return to_cents(self.unit_price)

    @property
    def total_cents(self) -> int:
        return to_cents(self.total)


def check_row(row: Mapping[str, str], rules: SaleRules) -> SaleRow | tuple[str, str]:
    """The row cleaned, or its first broken rule as (reason code, detail)."""
    try:
        return SaleRow.model_validate(row, context=rules)
    except ValidationError as e:
        return _first_error(e)


def check_field(name: str, value: str, rules: SaleRules) -> tuple[str, str] | None:
    """The first rule ``SaleRow`` breaks on one field's value, or None when it keeps them.

    The field's own validators, as the model declares them, run alone: a quarter of a whole
    row's validation, for the refused rows whose broken rule the bulk checks already named.
    The rule across fields (total = quantity × unit price) needs the whole row: check_row.
    """
    try:
        _field_model(name).model_validate({name: value}, context=rules)
    except ValidationError as e:
        return _first_error(e)
    return None


@cache
def _field_model(name: str) -> type[BaseModel]:
    field = SaleRow.model_fields[name]
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"SaleRow_{name}", __config__=SaleRow.model_config, **{name: (field.annotation, field)}
    )


def _first_error(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    return str(first["type"]), str(first["msg"])
