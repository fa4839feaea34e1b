"""Validate: the record rules (``record.SaleRow``) as vectorised checks over a cleaned block.

Each row gets the first rule it breaks, in the model's order (fields in column order, each
field's rules in turn, then total = quantity × unit price), or null when it breaks none.
Only the refused rows ever become Python objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pulso.domain.validators import UFS
from pulso.etl.layout import (
    ID_FIELDS,
    ID_MAX_CHARS,
    QUANTITY_MAX,
    SOURCE_COLUMNS,
    TEXT_FIELDS,
    TEXT_MAX_CHARS,
    Reason,
)
from pulso.etl.rules import SaleRules
from pulso.etl.transform import TIMESTAMP, Cleaned

_CODE: Final = pa.int16()


@dataclass(frozen=True, slots=True)
class Check:
    field: str
    reason: str


def _checks() -> tuple[Check, ...]:
    checks: list[Check] = []
    for name in SOURCE_COLUMNS:
        checks.append(Check(name, Reason.MISSING_VALUE))
        checks.extend(Check(name, reason) for reason in _FIELD_REASONS.get(name, ()))
    checks.append(Check("total", Reason.INVALID_TOTAL))
    return tuple(checks)


_FIELD_REASONS: Final[dict[str, tuple[str, ...]]] = {
    **{name: (Reason.TOO_LONG,) for name in (*ID_FIELDS, *TEXT_FIELDS)},
    "sold_at": (Reason.INVALID_SOLD_AT, Reason.SOLD_AT_OUT_OF_RANGE),
    "category": (Reason.UNKNOWN_CATEGORY,),
    "quantity": (Reason.INVALID_QUANTITY,),
    "unit_price": (Reason.INVALID_AMOUNT,),
    "total": (Reason.INVALID_AMOUNT,),
    "uf": (Reason.INVALID_UF,),
}
CHECKS: Final = _checks()
"""Every rule, in the order a row's reason is picked."""
_INDEX: Final = {check: i for i, check in enumerate(CHECKS)}
_UFS: Final = pa.array(sorted(UFS), pa.string())


def find_reasons(cleaned: Cleaned, rules: SaleRules) -> pa.Array:
    """Per row, the index in ``CHECKS`` of the first rule broken; null where none is."""
    per_field = [_field_codes(name, cleaned, rules) for name in SOURCE_COLUMNS]
    return pc.coalesce(*per_field, _total_codes(cleaned))


def _field_codes(name: str, cleaned: Cleaned, rules: SaleRules) -> pa.Array:
    text = cleaned.text[name]
    if name in ID_FIELDS:
        return _per_value(text, lambda v: _bounded(name, v, ID_MAX_CHARS))
    if name in TEXT_FIELDS:
        return _per_value(text, lambda v: _bounded(name, v, TEXT_MAX_CHARS))
    if name == "uf":
        return _per_value(text, _uf_codes)
    typed = _TYPED[name](cleaned)
    invalid = (_INVALID[name](typed, rules), _code(name, _FIELD_REASONS[name][0]))
    return _first(_missing(name, text), invalid, *_more(name, typed, rules))


def _per_value(values: pa.Array, codes: Callable[[pa.Array], pa.Array]) -> pa.Array:
    if isinstance(values, pa.DictionaryArray):
        return codes(values.dictionary).take(values.indices)
    return codes(values)


def _code(name: str, reason: str) -> int:
    return _INDEX[Check(name, reason)]


def _first(*rules: tuple[pa.Array, int]) -> pa.Array:
    """The code of the first rule whose mask is true, per row (null when none is)."""
    result: pa.Array = None
    for mask, code in reversed(rules):
        fallback = result if result is not None else pa.nulls(len(mask), _CODE)
        result = pc.if_else(mask, pa.scalar(code, _CODE), fallback)
    return result


def _missing(name: str, text: pa.Array) -> tuple[pa.Array, int]:
    empty = _per_value(text, lambda v: pc.equal(pc.binary_length(v), 0))
    return empty, _code(name, Reason.MISSING_VALUE)


def _bounded(name: str, values: pa.Array, max_chars: int) -> pa.Array:
    return _first(
        (pc.equal(pc.binary_length(values), 0), _code(name, Reason.MISSING_VALUE)),
        (pc.greater(pc.utf8_length(values), max_chars), _code(name, Reason.TOO_LONG)),
    )


def _uf_codes(values: pa.Array) -> pa.Array:
    return _first(
        (pc.equal(pc.binary_length(values), 0), _code("uf", Reason.MISSING_VALUE)),
        (pc.invert(pc.is_in(values, value_set=_UFS)), _code("uf", Reason.INVALID_UF)),
    )


def _is_null(typed: pa.Array, _: SaleRules) -> pa.Array:
    return pc.is_null(typed)


def _bad_quantity(typed: pa.Array, _: SaleRules) -> pa.Array:
    in_range = pc.and_(pc.greater_equal(typed, 1), pc.less_equal(typed, QUANTITY_MAX))
    return pc.invert(pc.fill_null(in_range, False))


def _bad_amount(typed: pa.Array, _: SaleRules) -> pa.Array:
    return pc.invert(pc.fill_null(pc.greater(typed, 0), False))


_TYPED: Final[dict[str, Callable[[Cleaned], pa.Array]]] = {
    "sold_at": lambda c: c.sold_at,
    "category": lambda c: c.category,
    "quantity": lambda c: c.quantity,
    "unit_price": lambda c: c.unit_price_cents,
    "total": lambda c: c.total_cents,
}
_INVALID: Final[dict[str, Callable[[pa.Array, SaleRules], pa.Array]]] = {
    "sold_at": _is_null,
    "category": _is_null,
    "quantity": _bad_quantity,
    "unit_price": _bad_amount,
    "total": _bad_amount,
}


def _more(name: str, typed: pa.Array, rules: SaleRules) -> list[tuple[pa.Array, int]]:
    if name != "sold_at":
        return []
    earliest = pa.scalar(rules.earliest, TIMESTAMP)
    latest = pa.scalar(rules.latest, TIMESTAMP)
    outside = pc.or_(pc.less(typed, earliest), pc.greater(typed, latest))
    return [(pc.fill_null(outside, False), _code(name, Reason.SOLD_AT_OUT_OF_RANGE))]


def _total_codes(cleaned: Cleaned) -> pa.Array:
    """total = quantity × unit price, in centavos; by division, so no product can overflow."""
    quantity = pc.if_else(pc.greater(cleaned.quantity, 0), cleaned.quantity, None)
    per_unit = pc.divide(cleaned.total_cents, quantity)  # integer division
    exact = pc.and_(
        pc.equal(pc.multiply(per_unit, quantity), cleaned.total_cents),
        pc.equal(per_unit, cleaned.unit_price_cents),
    )
    wrong = pc.invert(pc.fill_null(exact, True))
    return _first((wrong, _code("total", Reason.INVALID_TOTAL)))
