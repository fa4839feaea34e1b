"""The daily sales file: its header, the text forms its values take, and the reasons a row is
refused. Shared by the vectorised checks (Arrow, RE2 patterns) and the record model
(pydantic, Python ``re``), so both read a value the same way."""

from __future__ import annotations

from typing import Final

SOURCE_COLUMNS: Final = (
    "sale_id",
    "sold_at",
    "store_id",
    "seller",
    "product",
    "category",
    "quantity",
    "unit_price",
    "total",
    "payment_method",
    "city",
    "uf",
)
HEADER: Final = ",".join(SOURCE_COLUMNS)

ID_MAX_CHARS: Final = 64  # pulso.domain.rules.Identifier
TEXT_MAX_CHARS: Final = 120  # pulso.domain.rules.ShortText
QUANTITY_MAX: Final = 100_000  # pulso.domain.sales.SaleRecord.quantity

ID_FIELDS: Final = ("sale_id", "store_id")
TEXT_FIELDS: Final = ("seller", "product", "payment_method", "city")
NAME_FIELDS: Final = ("seller", "city")
"""People and places: title-cased when written all in capitals or all in small letters."""

# Both engines understand these patterns (RE2 and Python ``re``): keep them to that subset.
WHITESPACE_RUN: Final = r"[\t\n\v\f\r \x{00A0}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]+"
# Month, day, hour... in range here, so a block's times parse in one vectorised cast; only an
# impossible day (02-30) is left for the parser to refuse.
TIMESTAMP_PATTERN: Final = (
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ]"
    r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
QUANTITY_PATTERN: Final = r"^\d{1,6}$"
AMOUNT_PATTERN: Final = r"^\d{1,12}(\.\d{1,2})?$"
PARTICLES: Final = ("da", "das", "de", "do", "dos", "e")
"""Portuguese particles kept in small letters inside a title-cased name (Maria da Silva)."""


def python_pattern(pattern: str) -> str:
    """An RE2 pattern in Python ``re`` syntax (``\\x{00A0}`` is written ``\\u00a0`` there)."""
    import re

    return re.sub(r"\\x\{([0-9A-Fa-f]{4})\}", lambda m: "\\u" + m.group(1).lower(), pattern)


class Reason:
    """Why a row was refused: the code starts the rejects file's ``reason`` column."""

    WRONG_FIELD_COUNT: Final = "wrong_field_count"
    MISSING_VALUE: Final = "missing_value"
    TOO_LONG: Final = "too_long"
    INVALID_SOLD_AT: Final = "invalid_sold_at"
    SOLD_AT_OUT_OF_RANGE: Final = "sold_at_out_of_range"
    UNKNOWN_CATEGORY: Final = "unknown_category"
    INVALID_QUANTITY: Final = "invalid_quantity"
    INVALID_AMOUNT: Final = "invalid_amount"  # as pulso.domain.rules.check_amount
    INVALID_TOTAL: Final = "invalid_total"  # as pulso.domain.rules.check_line
    INVALID_UF: Final = "invalid_uf"  # as pulso.domain.rules.check_uf
