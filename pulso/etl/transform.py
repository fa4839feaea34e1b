"""Transform: one block's text cleaned (``normalise``) and typed, vectorised in Arrow.

A typed value is null where its text is not of its type (a time without offset, ``1,50`` for
an amount, a category outside the catalogue): ``validate`` turns those nulls into reasons.
Money goes from text to integer centavos through Arrow's decimal type: exact, no float.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pulso.etl import normalise
from pulso.etl.layout import (
    AMOUNT_PATTERN,
    NAME_FIELDS,
    QUANTITY_PATTERN,
    SOURCE_COLUMNS,
    TEXT_FIELDS,
    TIMESTAMP_PATTERN,
)

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_MONEY: Final = pa.decimal128(14, 2)
_HUNDRED: Final = pa.scalar(Decimal(100), pa.decimal128(3, 0))


@dataclass(frozen=True, slots=True)
class Cleaned:
    """A block's values: cleaned text per source column, and the typed ones."""

    text: dict[str, pa.Array]
    sold_at: pa.Array  # timestamp[us, UTC]
    quantity: pa.Array  # int64
    unit_price_cents: pa.Array  # int64
    total_cents: pa.Array  # int64
    category: pa.Array  # the catalogue's spelling


def clean_block(rows: pa.RecordBatch, categories: Mapping[str, str]) -> Cleaned:
    text = {name: _clean_column(name, rows.column(name)) for name in SOURCE_COLUMNS}
    return Cleaned(
        text=text,
        sold_at=_per_value(text["sold_at"], parse_timestamps),
        quantity=_per_value(text["quantity"], parse_quantities),
        unit_price_cents=_per_value(text["unit_price"], parse_cents),
        total_cents=_per_value(text["total"], parse_cents),
        category=_per_value(rows.column("category"), lambda v: _canonical(v, categories)),
    )


def _clean_column(name: str, values: pa.Array) -> pa.Array:
    if name in NAME_FIELDS:
        return normalise.arrow_name(values)
    if name in TEXT_FIELDS:
        return normalise.arrow_text(values)
    if name == "uf":
        return normalise.arrow_uf(values)
    if name == "category":
        return normalise.arrow_text(values)
    return normalise.arrow_token(values)  # identifiers, the time, numbers


def _per_value(values: pa.Array, parse: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``parse`` once per distinct value of a dictionary-encoded array, then spread to rows."""
    if isinstance(values, pa.DictionaryArray):
        return parse(values.dictionary).take(values.indices)
    return parse(values)


def _matching(values: pa.Array, pattern: str) -> pa.Array:
    """``values`` where they match ``pattern``, null elsewhere."""
    return pc.if_else(pc.match_substring_regex(values, pattern), values, None)


def parse_quantities(values: pa.Array) -> pa.Array:
    return pc.cast(_matching(values, QUANTITY_PATTERN), pa.int64())


def parse_cents(values: pa.Array) -> pa.Array:
    """``1234.5`` → 123450: the decimal's unscaled value, read exactly."""
    amounts = pc.cast(_matching(values, AMOUNT_PATTERN), _MONEY)
    return pc.cast(pc.multiply(amounts, _HUNDRED), pa.int64())


def parse_timestamps(values: pa.Array) -> pa.Array:
    """ISO-8601 times with an offset, as UTC; null for any other text."""
    candidates = _matching(values, TIMESTAMP_PATTERN)
    try:
        return pc.cast(candidates, TIMESTAMP)
    except pa.ArrowInvalid:  # a well-formed but impossible time (02-30, 25:00) in the block
        return pa.array([_timestamp_or_none(v) for v in candidates.to_pylist()], TIMESTAMP)


def _timestamp_or_none(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _canonical(values: pa.Array, categories: Mapping[str, str]) -> pa.Array:
    keys = pa.array(list(categories), pa.string())
    names = pa.array(list(categories.values()), pa.string())
    positions = pc.index_in(normalise.arrow_category_key(values), value_set=keys)
    return names.take(positions)
