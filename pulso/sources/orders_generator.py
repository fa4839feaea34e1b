"""Synthetic e-commerce orders (the input of ``pulso orders produce``), vectorised and seeded.

The same configuration gives the same bytes on every run. Rows are drawn in one go with
numpy from pools built once: customers with Brazilian names (Faker pt_BR) living in real
cities (:mod:`pulso.sources.geo`, weighted by population), the product catalogue and price
ideas of :mod:`pulso.sources.sales_generator` with e-commerce category shares, three sales
channels and the four order statuses.

Some orders change status later, and each change is one more line of the same order: a
``Pendente`` order (boleto, PIX not yet paid) becomes ``Pago`` or ``Cancelado`` hours to days
later; a ``Pago`` order is sometimes ``Reembolsado`` days later. So a file holds updates, and
loading it must update orders, not duplicate them.

CSV layout
----------
UTF-8, ``\\n`` line ends, ``,`` separator, a header line, then one order version per line
(line 2 is the first), in ``updated_at`` order. No field needs quoting. Columns::

    order_id       text      "PED-1a2b3c-00000001": a tag of the configuration + sequence
    ordered_at     ISO-8601  "2026-11-20T14:05:33-03:00" (America/Sao_Paulo, with offset)
    updated_at     ISO-8601  when this version was made (= ordered_at for the first)
    customer_id    text      "CLI-000123"
    customer_name  text      "Maria Eduarda Souza"
    city           text      "São Paulo"
    uf             text      "SP"
    region         text      "Sudeste"
    product        text      "Air Fryer 4 L"
    category       text      "Eletrodomésticos"
    quantity       integer   1..MAX_QUANTITY
    unit_price     decimal   "399.90": point, two places
    total          decimal   quantity × unit_price, exactly
    channel        text      Site | App | Marketplace
    status         text      Pago | Pendente | Cancelado | Reembolsado

``--rows`` counts lines: about one line in four is a later status change.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, BinaryIO, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.domain.validators import REGION_BY_UF
from pulso.sources import GeneratorConfigError
from pulso.sources.geo import CITIES
from pulso.sources.sales_generator import (
    category_range_cents,
    name_pool,
    product_table,
    shelf_price_cents,
    weighted_pick,
)

if TYPE_CHECKING:
    from collections.abc import Callable

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "order_id",
    "ordered_at",
    "updated_at",
    "customer_id",
    "customer_name",
    "city",
    "uf",
    "region",
    "product",
    "category",
    "quantity",
    "unit_price",
    "total",
    "channel",
    "status",
)
HEADER: Final = ",".join(CSV_COLUMNS) + "\n"
CHANNELS: Final[tuple[str, ...]] = ("Site", "App", "Marketplace")
STATUSES: Final[tuple[str, ...]] = ("Pago", "Pendente", "Cancelado", "Reembolsado")
PAGO, PENDENTE, CANCELADO, REEMBOLSADO = range(4)
MAX_QUANTITY: Final = 10
MAX_ROWS: Final = 50_000_000
MAX_DAYS: Final = 3_660
DEFAULT_DAYS: Final = 90
FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2099, 12, 31)

_CHANNEL_WEIGHTS: Final = np.array([0.46, 0.34, 0.20])
_PENDING_SHARE: Final = 0.35  # boleto and unpaid PIX: the order waits for the money
# How likely an order is to get a later status change: most pending ones do, few paid ones.
_CHANGE_WEIGHT: Final = {PENDENTE: 0.80, PAGO: 0.08}
_CHANGE_RATE: Final = _PENDING_SHARE * 0.80 + (1 - _PENDING_SHARE) * 0.08
_PAID_AFTER_PENDING: Final = 0.82  # the rest are cancelled
_CUSTOMERS_PER_ORDER: Final = 0.35
_MAX_CUSTOMERS: Final = 200_000
_NAME_POOL: Final = 4_000

# Share of orders per category online: more electronics and home, less groceries than a store.
_CATEGORY_SHARE: Final[dict[str, float]] = {
    "Alimentos": 0.05,
    "Bebidas": 0.04,
    "Higiene e Beleza": 0.10,
    "Limpeza": 0.03,
    "Farmácia": 0.05,
    "Vestuário": 0.13,
    "Calçados": 0.08,
    "Casa e Decoração": 0.11,
    "Papelaria": 0.04,
    "Brinquedos": 0.06,
    "Eletrônicos": 0.13,
    "Eletrodomésticos": 0.08,
    "Esporte e Lazer": 0.06,
    "Pet Shop": 0.04,
}
# Price of a product per channel against its reference: the app has coupons, the
# marketplace passes its commission on.
_CHANNEL_PRICE: Final = np.array([1.0, 0.97, 1.06])


@dataclass(frozen=True, slots=True)
class OrdersConfig:
    """What to generate: ``rows`` lines of orders placed over ``days`` days from ``start``."""

    start: date
    days: int = DEFAULT_DAYS
    rows: int = 50_000
    seed: int = 42

    def __post_init__(self) -> None:
        if not 1 <= self.rows <= MAX_ROWS:
            raise GeneratorConfigError("rows", f"expected 1 to {MAX_ROWS:,}, got {self.rows}")
        if not 1 <= self.days <= MAX_DAYS:
            raise GeneratorConfigError("days", f"expected 1 to {MAX_DAYS}, got {self.days}")
        if not FIRST_DAY <= self.start <= LAST_DAY - timedelta(days=self.days):
            raise GeneratorConfigError("start", f"choose a day from {FIRST_DAY} to {LAST_DAY}")
        if not 0 <= self.seed < 2**63:
            raise GeneratorConfigError("seed", "expected a non-negative integer below 2**63")

    @property
    def orders(self) -> int:
        """How many distinct orders the ``rows`` lines hold."""
        return max(1, min(self.rows, round(self.rows / (1 + _CHANGE_RATE))))


def default_start(days: int, today: date | None = None) -> date:
    """The first day of ``days`` days ending yesterday (local time)."""
    today = today or datetime.now(UTC).astimezone(DISPLAY_ZONE).date()
    return today - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class OrdersStats:
    """What a generation made."""

    rows: int
    orders: int
    updates: int
    by_status: dict[str, int]
    """Final status of each order."""
    by_channel: dict[str, int]
    paid_total_cents: int
    bytes_written: int = 0


def orders_table(config: OrdersConfig) -> pa.Table:
    """Every line as an Arrow table, in ``updated_at`` order: times as UTC timestamps, money
    as integer centavos (``unit_price_cents``, ``total_cents``), the rest as text, and
    ``latest``, true on the last line of each order."""
    rng = np.random.default_rng(config.seed)
    catalogue = _Catalogue.build(config, rng)
    draws = _draw_orders(config, catalogue, rng)
    return _lines(config, catalogue, draws, rng)


def write_orders_csv(
    config: OrdersConfig, out: BinaryIO, on_rows: Callable[[int], None] | None = None
) -> OrdersStats:
    """Write the CSV to ``out``; ``on_rows(n)`` as lines are written."""
    table = orders_table(config)
    written = out.write(HEADER.encode())
    for batch in table.to_batches(max_chunksize=1 << 17):
        data = _csv_text(batch)
        written += out.write(data)
        if on_rows is not None:
            on_rows(batch.num_rows)
    return _stats(table, written)


def orders_csv_bytes(config: OrdersConfig) -> tuple[bytes, OrdersStats]:
    """The whole file in memory (tests and small files)."""
    import io

    buffer = io.BytesIO()
    stats = write_orders_csv(config, buffer)
    return buffer.getvalue(), stats


# --------------------------------------------------------------------------- the draws


@dataclass(frozen=True, slots=True)
class _Catalogue:
    customer_names: pa.StringArray
    customer_city: npt.NDArray[np.int64]
    customer_weights: npt.NDArray[np.float64]
    products: list[tuple[str, str]]
    product_weights: npt.NDArray[np.float64]
    price_cents: npt.NDArray[np.int64]  # [product, channel]
    quantity_p: npt.NDArray[np.float64]
    tag: str

    @classmethod
    def build(cls, config: OrdersConfig, rng: np.random.Generator) -> _Catalogue:
        n_customers = max(1, min(_MAX_CUSTOMERS, round(config.orders * _CUSTOMERS_PER_ORDER)))
        population = np.array([c.population for c in CITIES], dtype=np.float64)
        customer_city = weighted_pick(population / population.sum(), n_customers, rng)
        names = name_pool(config.seed, min(n_customers, _NAME_POOL))
        name_index = rng.integers(0, len(names), size=n_customers)
        # A few loyal customers buy often, most buy once or twice (a Zipf-like tail).
        loyalty = 1.0 / (rng.permutation(n_customers) + 1.0) ** 0.6
        products, weights, reference = product_table(rng, _CATEGORY_SHARE)
        return cls(
            customer_names=pa.array(names, pa.string()).take(pa.array(name_index)),
            customer_city=customer_city,
            customer_weights=loyalty / loyalty.sum(),
            products=products,
            product_weights=weights,
            price_cents=_channel_prices(products, reference),
            quantity_p=np.select(
                [reference < 2_000, reference < 10_000, reference < 50_000], [0.55, 0.75, 0.9], 0.97
            ).astype(np.float64),
            tag=_config_tag(config),
        )


@dataclass(frozen=True, slots=True)
class _Orders:
    """One entry per order (the first version), as index arrays and numbers."""

    ordered_s: npt.NDArray[np.int64]  # seconds since the epoch
    customer: npt.NDArray[np.int64]
    product: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.int64]
    first_status: npt.NDArray[np.int64]


def _draw_orders(config: OrdersConfig, cat: _Catalogue, rng: np.random.Generator) -> _Orders:
    n = config.orders
    customer = weighted_pick(cat.customer_weights, n, rng)
    product = weighted_pick(cat.product_weights, n, rng)
    channel = weighted_pick(_CHANNEL_WEIGHTS, n, rng)
    quantity = np.minimum(rng.geometric(cat.quantity_p[product]), MAX_QUANTITY)
    first_status = np.where(rng.random(n) < _PENDING_SHARE, PENDENTE, PAGO).astype(np.int64)
    return _Orders(
        _order_seconds(config, n, rng), customer, product, channel, quantity, first_status
    )


def _order_seconds(config: OrdersConfig, n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """When each order was placed: days weighted by weekday, local hours by an online curve
    (a lunch bump and an evening peak, a quiet night)."""
    first = datetime.combine(config.start, time(0), DISPLAY_ZONE)
    day_weights = np.array(
        [_WEEKDAY_WEIGHTS[(config.start + timedelta(days=d)).weekday()] for d in range(config.days)]
    )
    day = weighted_pick(day_weights / day_weights.sum(), n, rng)
    hour = weighted_pick(_HOUR_WEIGHTS, n, rng)
    seconds_of_day = hour * 3600 + rng.integers(0, 3600, size=n)
    # The zone's offset is whole hours and constant within a day since 2019; across DST days
    # of older years an order may shift by an hour, which a synthetic file can live with.
    seconds: npt.NDArray[np.int64] = int(first.timestamp()) + day * 86_400 + seconds_of_day
    return np.sort(seconds)


def _later_versions(
    orders: _Orders, n_updates: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Which orders change status (exactly ``n_updates``), to what, and how many seconds
    after the order."""
    weights = np.where(
        orders.first_status == PENDENTE, _CHANGE_WEIGHT[PENDENTE], _CHANGE_WEIGHT[PAGO]
    )
    # Weighted sampling without replacement in one pass (Efraimidis-Spirakis keys).
    keys = np.log(rng.random(len(weights))) / weights
    changed = np.sort(np.argpartition(-keys, n_updates - 1)[:n_updates]) if n_updates else keys[:0]
    changed = changed.astype(np.int64)
    was_pending = orders.first_status[changed] == PENDENTE
    paid = rng.random(len(changed)) < _PAID_AFTER_PENDING
    new_status = np.where(was_pending, np.where(paid, PAGO, CANCELADO), REEMBOLSADO)
    hours = np.where(
        was_pending,
        np.where(paid, rng.lognormal(math.log(6), 1.0, len(changed)), 72 + rng.uniform(0, 24)),
        rng.uniform(48, 20 * 24, len(changed)),
    )
    delay_s = np.maximum(60, (hours * 3600).astype(np.int64))
    return changed, new_status.astype(np.int64), delay_s


def _lines(
    config: OrdersConfig, cat: _Catalogue, orders: _Orders, rng: np.random.Generator
) -> pa.Table:
    n = len(orders.ordered_s)
    changed, new_status, delay_s = _later_versions(orders, config.rows - n, rng)
    order = np.concatenate([np.arange(n), changed])
    status = np.concatenate([orders.first_status, new_status])
    updated_s = np.concatenate([orders.ordered_s, orders.ordered_s[changed] + delay_s])
    latest = np.ones(len(order), dtype=bool)
    latest[changed] = False  # an order's first line is not its last when it changed later
    by_time = np.argsort(updated_s, kind="stable")
    order, status, updated_s = order[by_time], status[by_time], updated_s[by_time]
    latest = latest[by_time]
    customer = orders.customer[order]
    city = cat.customer_city[customer]
    product = orders.product[order]
    channel = orders.channel[order]
    quantity = orders.quantity[order]
    unit_cents = cat.price_cents[product, channel]
    names = [p for p, _ in cat.products]
    categories = [c for _, c in cat.products]
    return pa.table(
        {
            "order_id": _ids(f"PED-{cat.tag}-", order + 1, 8),
            "ordered_at": _utc(orders.ordered_s[order]),
            "updated_at": _utc(updated_s),
            "customer_id": _ids("CLI-", customer + 1, 6),
            "customer_name": cat.customer_names.take(pa.array(customer)),
            "city": _take([c.name for c in CITIES], city),
            "uf": _take([c.uf for c in CITIES], city),
            "region": _take([REGION_BY_UF[c.uf] for c in CITIES], city),
            "product": _take(names, product),
            "category": _take(categories, product),
            "quantity": pa.array(quantity, pa.int32()),
            "unit_price_cents": pa.array(unit_cents, pa.int64()),
            "total_cents": pa.array(unit_cents * quantity, pa.int64()),
            "channel": _take(list(CHANNELS), channel),
            "status": _take(list(STATUSES), status),
            "latest": pa.array(latest, pa.bool_()),
        }
    )


# --------------------------------------------------------------------------- pools


_WEEKDAY_WEIGHTS: Final = (1.12, 1.08, 1.04, 1.0, 0.96, 0.86, 0.94)  # Monday first


def _hour_weights() -> npt.NDArray[np.float64]:
    def bump(hour: float, center: float, width: float, height: float) -> float:
        return height * math.exp(-((hour - center) ** 2) / (2 * width**2))

    weights = [
        0.08 + (0.25 if 7 <= h <= 23 else 0.0) + bump(h + 0.5, 12.5, 1.2, 0.6)
        + bump(h + 0.5, 21.0, 1.8, 1.0)
        for h in range(24)
    ]  # fmt: skip
    array = np.array(weights, dtype=np.float64)
    normalised: npt.NDArray[np.float64] = array / array.sum()
    return normalised


_HOUR_WEIGHTS: Final = _hour_weights()


def _channel_prices(
    products: list[tuple[str, str]], reference: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Price of each product per channel with a shelf-price ending (x,x9 under R$ 10, x,90
    under R$ 1.000, x,00 above), within its category's range."""
    raw = reference[:, np.newaxis] * _CHANNEL_PRICE[np.newaxis, :]
    low, high = category_range_cents(products)
    clipped: npt.NDArray[np.int64] = np.clip(
        shelf_price_cents(raw), low[:, np.newaxis], high[:, np.newaxis]
    )
    return clipped


def _config_tag(config: OrdersConfig) -> str:
    """Six hex digits that keep the order ids of different configurations apart."""
    text = f"{config.start}|{config.days}|{config.rows}|{config.seed}"
    return hashlib.blake2b(text.encode(), digest_size=3).hexdigest()


# --------------------------------------------------------------------------- text


def _take(pool: list[str], index: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(index))


def _ids(prefix: str, numbers: npt.NDArray[np.int64], digits: int) -> pa.Array:
    text = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _utc(seconds: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC"))


def _local_iso(times: pa.Array) -> pa.Array:
    """``2026-11-20T14:05:33-03:00``: local time with its UTC offset."""
    local = times.cast(pa.timestamp("s", tz=DISPLAY_ZONE.key))
    text = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S%z")
    return pc.replace_substring_regex(text, pattern=r"([+-]\d\d)(\d\d)$", replacement=r"\1:\2")


def _money_text(cents: pa.Array) -> pa.Array:
    """Centavos as ``1234.56``."""
    # The same integers read as decimal128 with scale 2: two 64-bit words each, sign-extended.
    values = cents.to_numpy(zero_copy_only=False).astype(np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    decimals = pa.Array.from_buffers(pa.decimal128(18, 2), len(values), [None, pa.py_buffer(words)])
    return decimals.cast(pa.string())


def _csv_text(batch: pa.RecordBatch) -> bytes:
    column = batch.column
    fields = [
        column("order_id"),
        _local_iso(column("ordered_at")),
        _local_iso(column("updated_at")),
        *(column(name) for name in ("customer_id", "customer_name", "city", "uf", "region")),
        column("product"),
        column("category"),
        column("quantity").cast(pa.string()),
        _money_text(column("unit_price_cents")),
        _money_text(column("total_cents")),
        column("channel"),
        column("status"),
    ]
    lines = pc.binary_join_element_wise(*fields, ",")
    ended = pc.binary_join_element_wise(lines, "\n", "")
    return _concatenated(ended)


def _concatenated(lines: pa.Array) -> bytes:
    """The text of every value of a string array, back to back, straight from its buffer."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    first, last = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    data = lines.buffers()[2]
    return b"" if data is None else data.to_pybytes()[first:last]


def _stats(table: pa.Table, bytes_written: int) -> OrdersStats:
    final = final_versions(table)
    statuses = final.column("status").to_pylist()
    channels = final.column("channel").to_pylist()
    paid = pc.sum(
        pc.if_else(pc.equal(final.column("status"), "Pago"), final.column("total_cents"), 0)
    ).as_py()
    return OrdersStats(
        rows=table.num_rows,
        orders=final.num_rows,
        updates=table.num_rows - final.num_rows,
        by_status={s: statuses.count(s) for s in STATUSES},
        by_channel={c: channels.count(c) for c in CHANNELS},
        paid_total_cents=int(paid or 0),
        bytes_written=bytes_written,
    )


def final_versions(table: pa.Table) -> pa.Table:
    """The last line of each order, in file order."""
    return table.filter(table.column("latest"))


def store_rows(table: pa.Table) -> pa.Table:
    """The orders as the store keeps them (the ``orders`` table's columns): the last version
    of each order, without the customer's name. For loading a store directly (benchmarks)."""
    from pulso.store.tables import ORDERS

    return final_versions(table).select(list(ORDERS.column_names))
