"""Marketplace best-seller snapshots."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from pulso.domain.rules import AwareDatetime, Identifier, ShortText, check_amount


class ProductSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One product's place in a category's best-seller ranking at one moment."""

    site: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    category_id: Identifier
    product_id: Identifier
    kind: Literal["ITEM", "PRODUCT"]
    position: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    taken_at: AwareDatetime
    price: Decimal | None = None
    rating: Annotated[float, msgspec.Meta(ge=0, le=5)] | None = None
    available_quantity: Annotated[int, msgspec.Meta(ge=0)] | None = None
    seller: ShortText | None = None

    def __post_init__(self) -> None:
        if self.price is not None:
            check_amount("price", self.price)
