"""One block through transform and validate: the rows to load, typed like the ``sales`` table,
and the refused ones with their line and reason (the record model words the reason)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pulso.etl.extract import Block, BrokenRow
from pulso.etl.layout import SOURCE_COLUMNS, Reason
from pulso.etl.record import SaleRow, check_field, check_row
from pulso.etl.rules import SaleRules
from pulso.etl.transform import Cleaned, clean_block
from pulso.etl.validate import CHECKS, Check, find_reasons

log = logging.getLogger(__name__)

_EMPTY_VALUES: Final = ("",) * len(SOURCE_COLUMNS)
_POSITION: Final = {name: i for i, name in enumerate(SOURCE_COLUMNS)}


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused row: its line, ``code: detail``, its values as read (or its raw text when
    it did not split into the layout's fields)."""

    line: int
    reason: str
    values: tuple[str, ...] = _EMPTY_VALUES
    raw: str = ""


@dataclass(frozen=True, slots=True)
class CheckedBlock:
    good: pa.Table  # the sales table's columns but source_file
    rejects: list[Reject]
    rows_read: int


def check_block(block: Block, rules: SaleRules) -> CheckedBlock:
    rows, lines = _without_blank_lines(block.rows, block.lines)
    cleaned = clean_block(rows, rules.categories)
    reasons = find_reasons(cleaned, rules)
    good = _typed_table(cleaned)
    rejects = [_broken(row) for row in block.broken]
    if reasons.null_count < len(reasons):
        bad = pc.is_valid(reasons)
        rejects.extend(_refused(rows, lines, reasons, bad, rules))
        good = good.filter(pc.invert(bad))
    rejects.sort(key=lambda r: r.line)
    return CheckedBlock(good, rejects, rows.num_rows + len(block.broken))


def _without_blank_lines(rows: pa.RecordBatch, lines: pa.Array) -> tuple[pa.RecordBatch, pa.Array]:
    """Empty lines hold no sale: they are skipped, not refused."""
    first = rows.column(0)
    if rows.num_rows == 0 or pc.min(pc.binary_length(first)).as_py() > 0:
        return rows, lines
    blank = pc.equal(pc.binary_length(first), 0)
    for name in SOURCE_COLUMNS[1:]:
        blank = pc.and_(blank, pc.equal(pc.binary_length(_decoded(rows.column(name))), 0))
    if not pc.any(blank).as_py():
        return rows, lines
    keep = pc.invert(blank)
    return rows.filter(keep), lines.filter(keep)


def _decoded(values: pa.Array) -> pa.Array:
    if isinstance(values, pa.DictionaryArray):
        return values.dictionary_decode()
    return values


def _typed_table(cleaned: Cleaned) -> pa.Table:
    text = cleaned.text
    return pa.table(
        {
            "sale_id": text["sale_id"],
            "sold_at": cleaned.sold_at,
            "store_id": text["store_id"],
            "seller": text["seller"],
            "product": text["product"],
            "category": cleaned.category,
            "quantity": pc.cast(cleaned.quantity, pa.int32(), safe=False),
            "unit_price_cents": cleaned.unit_price_cents,
            "total_cents": cleaned.total_cents,
            "payment_method": text["payment_method"],
            "city": text["city"],
            "uf": text["uf"],
        }
    )


def _broken(row: BrokenRow) -> Reject:
    detail = f"expected {len(SOURCE_COLUMNS)} fields, found {row.fields}"
    return Reject(row.line, f"{Reason.WRONG_FIELD_COUNT}: {detail}", raw=row.text)


def _refused(
    rows: pa.RecordBatch, lines: pa.Array, reasons: pa.Array, bad: pa.Array, rules: SaleRules
) -> list[Reject]:
    refused = rows.filter(bad)
    codes = reasons.filter(bad).to_pylist()
    numbers = lines.filter(bad).to_pylist()
    # Column by column, decoded first: a dictionary array's to_pylist goes value by value.
    columns = [_decoded(refused.column(name)).to_pylist() for name in SOURCE_COLUMNS]
    return [
        _explained(line, CHECKS[code], values, rules)
        for line, code, values in zip(numbers, codes, zip(*columns, strict=True), strict=True)
    ]


def _explained(line: int, check: Check, values: tuple[str, ...], rules: SaleRules) -> Reject:
    """The reason as the record model words it (the model is the rules' definition).

    The field the bulk checks named is validated alone by the model's own validators for it
    (``check_field``); only when that does not confirm the reason, or the rule spans fields,
    does the whole row go through the model."""
    code = check.reason
    if code != Reason.INVALID_TOTAL:
        confirmed = check_field(check.field, values[_POSITION[check.field]], rules)
        if confirmed is not None and confirmed[0] == code:
            return Reject(line, f"{code}: {confirmed[1]}", values)
    verdict = check_row(dict(zip(SOURCE_COLUMNS, values, strict=True)), rules)
    if isinstance(verdict, SaleRow):
        log.error("line %d: the vectorised checks refused (%s) what the model accepts", line, code)
        return Reject(line, f"{code}: refused by the bulk checks", values)
    model_code, detail = verdict
    if model_code != code:
        log.error("line %d: bulk checks say %s, the model %s", line, code, model_code)
    return Reject(line, f"{model_code}: {detail}", values)
