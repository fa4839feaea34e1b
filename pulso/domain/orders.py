"""E-commerce order payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from pulso.domain.rules import (
    AwareDatetime,
    Identifier,
    ShortText,
    check_line,
    check_uf,
)

Channel = Literal["Site", "App", "Marketplace"]
OrderStatus = Literal["Pago", "Pendente", "Cancelado", "Reembolsado"]


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """One order line as the shop reports it; a later version of the same order replaces it."""

    order_id: Identifier
    ordered_at: AwareDatetime
    updated_at: AwareDatetime
    customer_id: Identifier
    city: ShortText
    uf: str
    region: ShortText
    product: ShortText
    category: ShortText
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    unit_price: Decimal
    total: Decimal
    channel: Channel
    status: OrderStatus

    def __post_init__(self) -> None:
        check_uf(self.uf)
        check_line(self.quantity, self.unit_price, self.total)
