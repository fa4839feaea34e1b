"""Eight hand-made orders for the query tests (local time −03:00), written through the real
orders processor."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pulso.domain.events import Event, new_event
from pulso.domain.orders import Order
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.pipeline.processors.orders import OrdersProcessor
from pulso.store.protocol import Store

# (id, local day, hour, minute, city, uf, region, product, category, qty, unit R$, channel, status)
ORDERS = (
    ("o1", 10, 10, 0, "Recife", "PE", "Nordeste", "Camiseta", "Vestuário", 2, "50", "Site", "Pago"),
    ("o2", 10, 23, 30, "São Paulo", "SP", "Sudeste", "Camiseta", "Vestuário", 1, "50", "App",
     "Pago"),
    ("o3", 11, 9, 0, "São Paulo", "SP", "Sudeste", "Fone", "Eletrônicos", 1, "150", "Site", "Pago"),
    ("o4", 11, 12, 0, "São Paulo", "SP", "Sudeste", "Fone", "Eletrônicos", 2, "150", "Marketplace",
     "Pendente"),
    ("o5", 12, 8, 0, "Curitiba", "PR", "Sul", "Ração", "Pet Shop", 4, "20", "App", "Pago"),
    ("o6", 12, 20, 0, "Recife", "PE", "Nordeste", "Fone", "Eletrônicos", 1, "150", "App",
     "Cancelado"),
    ("o7", 13, 0, 30, "Curitiba", "PR", "Sul", "Camiseta", "Vestuário", 3, "50", "Marketplace",
     "Reembolsado"),
    ("o8", 13, 15, 0, "Recife", "PE", "Nordeste", "Ração", "Pet Shop", 1, "20", "Site", "Pago"),
)  # fmt: skip


def order(values: tuple[object, ...], *, status: str | None = None, later_h: int = 0) -> Order:
    oid, day, hour, minute, city, uf, region, product, category, qty, price, channel, st = values
    at = datetime(2026, 11, int(day), int(hour), int(minute), tzinfo=DISPLAY_ZONE)  # type: ignore[call-overload]
    unit = Decimal(str(price))
    return Order(
        order_id=str(oid),
        ordered_at=at,
        updated_at=at + timedelta(hours=later_h),
        customer_id=f"CLI-{oid}",
        city=str(city),
        uf=str(uf),
        region=str(region),
        product=str(product),
        category=str(category),
        quantity=int(qty),  # type: ignore[call-overload]
        unit_price=unit,
        total=unit * int(qty),  # type: ignore[call-overload]
        channel=channel,  # type: ignore[arg-type]
        status=status or st,  # type: ignore[arg-type]
    )


def events(orders: list[Order]) -> list[Event]:
    return [new_event(o, source="test", key=o.order_id, occurred_at=o.updated_at) for o in orders]


def process(store: Store, orders: list[Order]) -> None:
    with store.transaction() as tx:
        OrdersProcessor().process(events(orders), tx)
