"""Daily sales records (one row of a store's sales file)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from pulso.domain.rules import (
    AwareDatetime,
    Identifier,
    ShortText,
    check_line,
    check_uf,
)


class SaleRecord(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: Identifier
    sold_at: AwareDatetime
    store_id: Identifier
    seller: ShortText
    product: ShortText
    category: ShortText
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    unit_price: Decimal
    total: Decimal
    payment_method: ShortText
    city: ShortText
    uf: str

    def __post_init__(self) -> None:
        check_uf(self.uf)
        check_line(self.quantity, self.unit_price, self.total)
