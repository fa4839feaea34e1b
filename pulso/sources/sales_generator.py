"""Synthetic daily sales files: one CSV per day, the input of the sales ETL.

The same configuration (and seed) gives the same bytes on every run. Rows are built in
vectorised chunks (numpy draws, pyarrow string kernels) from pools built once: seller names
(Faker pt_BR), stores in real cities, a product catalogue with store-specific prices.

CSV layout
----------
UTF-8 without BOM, ``\\n`` line ends, ``,`` separator, a header line, then one sale per line
(line 2 is the first sale). Fields are quoted only when they contain ``,``, ``"`` or a line
break (none of the generated values do). Columns, in this order::

    sale_id         text      "20261120-1a2b3c-00000001": day, a tag of the configuration,
                              then a sequence number; unique within the file and across
                              files generated for other days, seeds or sizes
    sold_at         ISO-8601  "2026-11-20T14:05:33-03:00": local time in America/Sao_Paulo
                              with its UTC offset, whole seconds; lines are in time order
    store_id        text      "LJ-0001"
    seller          text      "Maria Eduarda Souza" (Faker pt_BR first and last name)
    product         text      "Arroz Tipo 1 5 kg"
    category        text      a key of :data:`SALES_CATEGORIES`
    quantity        integer   1..MAX_QUANTITY
    unit_price      decimal   "27.90": point, exactly two places, within the category's range
    total           decimal   "55.80" = quantity × unit_price, exactly
    payment_method  text      one of :data:`PAYMENT_METHODS` ("pix", "credito", ...)
    city            text      "São Paulo"
    uf              text      "SP" (a valid UF, upper case)

Every good row passes :class:`pulso.domain.sales.SaleRecord`. With ``bad_rate`` > 0 that share
of the lines is replaced by a bad one of a kind in :data:`BAD_ROW_KINDS` (chosen uniformly):

- ``wrong_total``: total ≠ quantity × unit_price (off by a few centavos to reais, or ×10);
- ``negative_quantity``: quantity < 0 (and the total negative with it);
- ``bad_uf``: a UF that does not exist ("XX", "ZZ", "BR", "EX");
- ``bad_date``: sold_at is not a valid ISO-8601 instant (day 32, month 13, hour 25,
  dd/mm/yyyy, or empty);
- ``unknown_category``: a category missing from :data:`SALES_CATEGORIES`;
- ``garbage``: a line with the wrong number of fields (cut short or with extra fields; no
  quote characters, so the next line parses normally).

:attr:`SalesStats.bad_lines` says which line numbers are bad, and of which kind.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import BinaryIO, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pulso.sources import GeneratorConfigError
from pulso.sources.geo import CITIES

LOCAL_TZ: Final = ZoneInfo("America/Sao_Paulo")
SALES_COLUMNS: Final[tuple[str, ...]] = (
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
HEADER: Final = ",".join(SALES_COLUMNS) + "\n"
PAYMENT_METHODS: Final[tuple[str, ...]] = ("pix", "credito", "debito", "dinheiro")
BAD_ROW_KINDS: Final[tuple[str, ...]] = (
    "wrong_total",
    "negative_quantity",
    "bad_uf",
    "bad_date",
    "unknown_category",
    "garbage",
)
MAX_QUANTITY: Final = 12
MAX_ROWS: Final = 99_999_999  # the sale id's sequence has eight digits
MAX_STORES: Final = 5_000
FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2099, 12, 31)
CHUNK_ROWS: Final = 1 << 18


def _brl(low: str, high: str) -> tuple[Decimal, Decimal]:
    return Decimal(low), Decimal(high)


SALES_CATEGORIES: Final[dict[str, tuple[Decimal, Decimal]]] = {
    "Alimentos": _brl("1.99", "149.90"),
    "Bebidas": _brl("1.99", "299.90"),
    "Higiene e Beleza": _brl("1.99", "299.90"),
    "Limpeza": _brl("1.99", "99.90"),
    "Farmácia": _brl("2.99", "499.90"),
    "Vestuário": _brl("9.90", "899.90"),
    "Calçados": _brl("19.90", "1299.00"),
    "Casa e Decoração": _brl("4.99", "2999.00"),
    "Papelaria": _brl("0.99", "299.90"),
    "Brinquedos": _brl("9.90", "1499.00"),
    "Eletrônicos": _brl("19.90", "9999.00"),
    "Eletrodomésticos": _brl("49.90", "7999.00"),
    "Esporte e Lazer": _brl("9.90", "4999.00"),
    "Pet Shop": _brl("4.99", "399.90"),
}
"""Known categories and the range (inclusive) of a plausible unit price in each, in BRL."""

# Share of the day's sales lines per category (sums to 1).
_CATEGORY_SHARE: Final[dict[str, float]] = {
    "Alimentos": 0.24,
    "Bebidas": 0.16,
    "Higiene e Beleza": 0.10,
    "Limpeza": 0.09,
    "Farmácia": 0.07,
    "Vestuário": 0.06,
    "Calçados": 0.03,
    "Casa e Decoração": 0.05,
    "Papelaria": 0.05,
    "Brinquedos": 0.03,
    "Eletrônicos": 0.04,
    "Eletrodomésticos": 0.02,
    "Esporte e Lazer": 0.02,
    "Pet Shop": 0.03,
}

# (product, reference price in BRL); each store prices within ±10% of the reference.
PRODUCTS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Alimentos": (
        ("Arroz Tipo 1 5 kg", "27.90"),
        ("Feijão Carioca 1 kg", "8.49"),
        ("Café Torrado e Moído 500 g", "18.90"),
        ("Açúcar Refinado 1 kg", "4.99"),
        ("Óleo de Soja 900 ml", "7.49"),
        ("Macarrão Espaguete 500 g", "4.79"),
        ("Leite Integral 1 L", "5.29"),
        ("Farinha de Mandioca 1 kg", "7.90"),
        ("Biscoito Recheado 140 g", "2.99"),
        ("Queijo Muçarela 500 g", "24.90"),
        ("Picanha Bovina 1 kg", "79.90"),
        ("Pão de Forma 500 g", "9.49"),
    ),
    "Bebidas": (
        ("Refrigerante Cola 2 L", "9.99"),
        ("Água Mineral 1500 ml", "2.99"),
        ("Cerveja Lata 350 ml", "3.99"),
        ("Suco de Laranja 1 L", "8.99"),
        ("Vinho Tinto Seco 750 ml", "49.90"),
        ("Energético 250 ml", "8.49"),
        ("Cachaça 700 ml", "24.90"),
        ("Chá Mate 1 L", "6.49"),
        ("Whisky 12 Anos 1 L", "189.90"),
    ),
    "Higiene e Beleza": (
        ("Sabonete 90 g", "2.79"),
        ("Shampoo 350 ml", "17.90"),
        ("Creme Dental 90 g", "4.49"),
        ("Desodorante Aerossol 150 ml", "14.90"),
        ("Papel Higiênico 12 Rolos", "21.90"),
        ("Perfume Feminino 100 ml", "189.90"),
        ("Protetor Solar FPS 50", "49.90"),
        ("Escova de Dentes", "9.90"),
    ),
    "Limpeza": (
        ("Detergente 500 ml", "2.49"),
        ("Sabão em Pó 1600 g", "19.90"),
        ("Água Sanitária 2 L", "7.90"),
        ("Amaciante 2 L", "18.90"),
        ("Desinfetante 2 L", "11.90"),
        ("Esponja Multiuso 3 Unidades", "5.49"),
        ("Saco de Lixo 50 L 30 Unidades", "12.90"),
    ),
    "Farmácia": (
        ("Dipirona 500 mg 10 Comprimidos", "6.99"),
        ("Paracetamol 750 mg 20 Comprimidos", "12.90"),
        ("Vitamina C 1 g 10 Comprimidos", "19.90"),
        ("Termômetro Digital", "29.90"),
        ("Curativo Adesivo 40 Unidades", "11.90"),
        ("Álcool em Gel 500 ml", "12.90"),
        ("Soro Fisiológico 500 ml", "7.49"),
        ("Medidor de Pressão Digital", "189.90"),
    ),
    "Vestuário": (
        ("Camiseta Algodão", "49.90"),
        ("Calça Jeans", "139.90"),
        ("Bermuda Sarja", "79.90"),
        ("Vestido Estampado", "159.90"),
        ("Meia 3 Pares", "24.90"),
        ("Jaqueta Corta-Vento", "229.90"),
        ("Camisa Polo", "89.90"),
    ),
    "Calçados": (
        ("Tênis de Corrida", "399.90"),
        ("Chinelo de Borracha", "39.90"),
        ("Sandália Feminina", "119.90"),
        ("Sapato Social", "259.90"),
        ("Bota de Couro", "349.90"),
    ),
    "Casa e Decoração": (
        ("Jogo de Toalhas 4 Peças", "119.90"),
        ("Jogo de Cama Casal", "189.90"),
        ("Panela de Pressão 5 L", "159.90"),
        ("Jogo de Copos 6 Unidades", "39.90"),
        ("Luminária de Mesa", "89.90"),
        ("Tapete para Sala", "249.90"),
        ("Almofada Decorativa", "39.90"),
        ("Sofá 3 Lugares", "2499.00"),
    ),
    "Papelaria": (
        ("Caderno 10 Matérias", "34.90"),
        ("Caneta Esferográfica", "1.99"),
        ("Lápis Preto", "1.49"),
        ("Mochila Escolar", "149.90"),
        ("Papel A4 500 Folhas", "32.90"),
        ("Marca-Texto", "4.99"),
        ("Agenda Anual", "39.90"),
    ),
    "Brinquedos": (
        ("Boneca", "89.90"),
        ("Carrinho de Controle Remoto", "199.90"),
        ("Quebra-Cabeça 1000 Peças", "69.90"),
        ("Blocos de Montar", "149.90"),
        ("Bola de Futebol", "79.90"),
        ("Jogo de Tabuleiro", "119.90"),
    ),
    "Eletrônicos": (
        ("Smartphone 128 GB", "1499.00"),
        ("Fone de Ouvido Bluetooth", "149.90"),
        ("Carregador USB-C 20 W", "79.90"),
        ("Smart TV 50 Polegadas", "2599.00"),
        ("Notebook 15 Polegadas", "3799.00"),
        ("Caixa de Som Bluetooth", "299.90"),
        ("Cabo HDMI 2 m", "29.90"),
        ("Mouse sem Fio", "69.90"),
    ),
    "Eletrodomésticos": (
        ("Liquidificador 900 W", "149.90"),
        ("Air Fryer 4 L", "399.90"),
        ("Micro-ondas 30 L", "699.00"),
        ("Geladeira Frost Free 400 L", "3899.00"),
        ("Ventilador de Coluna", "199.90"),
        ("Cafeteira Elétrica", "129.90"),
        ("Ferro de Passar", "119.90"),
        ("Máquina de Lavar 12 kg", "2499.00"),
    ),
    "Esporte e Lazer": (
        ("Bicicleta Aro 29", "1899.00"),
        ("Halteres 5 kg Par", "129.90"),
        ("Tapete de Yoga", "79.90"),
        ("Garrafa Térmica 1 L", "89.90"),
        ("Barraca de Camping 4 Pessoas", "449.90"),
        ("Camisa de Time", "299.90"),
    ),
    "Pet Shop": (
        ("Ração para Cães 15 kg", "189.90"),
        ("Ração para Gatos 3 kg", "69.90"),
        ("Areia Higiênica 4 kg", "19.90"),
        ("Petisco para Cães", "12.90"),
        ("Coleira Ajustável", "34.90"),
        ("Brinquedo para Gato", "19.90"),
    ),
}

_PAYMENT_WEIGHTS: Final = np.array([0.42, 0.30, 0.18, 0.10])
_OPEN_HOUR: Final = 8
_CLOSE_HOUR: Final = 22
_SELLERS_PER_STORE: Final = (4, 12)
_SELLER_POOL: Final = 3_000
_ID_DIGITS: Final = 8
# "0000".."9999" as a (10000, 4) byte table: two look-ups write a sale id's eight digits.
_DIGIT_QUADS: Final = np.frombuffer(
    "".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint8
).reshape(10_000, 4)
_MINUTE_SECOND: Final = tuple(f"{s // 60:02d}:{s % 60:02d}" for s in range(3600))
_BAD_UFS: Final = ("XX", "ZZ", "BR", "EX")
_UNKNOWN_CATEGORIES: Final = ("Diversos", "Importados", "Sem Categoria", "Outros")


@dataclass(frozen=True, slots=True)
class SalesConfig:
    """What to generate: one day's sales file."""

    day: date
    rows: int = 50_000
    n_stores: int = 20
    seed: int = 42
    bad_rate: float = 0.0

    def __post_init__(self) -> None:
        if not FIRST_DAY <= self.day <= LAST_DAY:
            raise GeneratorConfigError("date", f"choose a day from {FIRST_DAY} to {LAST_DAY}")
        if not 1 <= self.rows <= MAX_ROWS:
            raise GeneratorConfigError("rows", f"expected 1 to {MAX_ROWS:,}, got {self.rows}")
        if not 1 <= self.n_stores <= MAX_STORES:
            raise GeneratorConfigError("stores", f"expected 1 to {MAX_STORES}, got {self.n_stores}")
        if not 0 <= self.seed < 2**63:
            raise GeneratorConfigError("seed", "expected a non-negative integer below 2**63")
        if not (math.isfinite(self.bad_rate) and 0.0 <= self.bad_rate <= 0.5):
            raise GeneratorConfigError("bad-rate", f"expected 0 to 0.5, got {self.bad_rate}")


@dataclass(slots=True)
class SalesStats:
    """What a generation wrote (complete once the chunks are exhausted)."""

    rows: int = 0
    good_rows: int = 0
    good_total_cents: int = 0
    bytes_written: int = 0
    bad_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_ROW_KINDS, 0))
    _bad_line_chunks: list[npt.NDArray[np.int64]] = field(default_factory=list)
    _bad_kind_chunks: list[npt.NDArray[np.int64]] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return self.rows - self.good_rows

    def add_bad(self, lines: npt.NDArray[np.int64], kinds: npt.NDArray[np.int64]) -> None:
        """Count bad ``lines`` (line numbers) of ``kinds`` (indexes into BAD_ROW_KINDS)."""
        self._bad_line_chunks.append(lines)
        self._bad_kind_chunks.append(kinds)
        for kind, count in zip(*np.unique(kinds, return_counts=True), strict=True):
            self.bad_by_kind[BAD_ROW_KINDS[int(kind)]] += int(count)

    @property
    def bad_lines(self) -> dict[int, str]:
        """Line number (the header is line 1) → kind, for every bad line."""
        if not self._bad_line_chunks:
            return {}
        lines = np.concatenate(self._bad_line_chunks).tolist()
        kinds = np.concatenate(self._bad_kind_chunks).tolist()
        return {line: BAD_ROW_KINDS[kind] for line, kind in zip(lines, kinds, strict=True)}


def sales_object_key(day: date) -> str:
    """The object key of a day's file in a bucket: ``sales-2026-11-20.csv``."""
    return f"sales-{day.isoformat()}.csv"


def write_sales_csv(
    config: SalesConfig, out: BinaryIO, on_rows: Callable[[int], None] | None = None
) -> SalesStats:
    """Write the day's CSV to ``out`` chunk by chunk; ``on_rows(n)`` after each chunk."""
    csv = SalesCsv(config)
    for rows, data in csv.chunks():
        out.write(data)
        if on_rows is not None and rows:
            on_rows(rows)
    return csv.stats


def sales_csv_bytes(config: SalesConfig) -> tuple[bytes, SalesStats]:
    """The whole file in memory (for tests and small files)."""
    csv = SalesCsv(config)
    data = b"".join(bytes(chunk) for _, chunk in csv.chunks())
    return data, csv.stats


@dataclass(frozen=True, slots=True)
class _Catalogue:
    """Everything rows are drawn from; pools are CSV-ready text."""

    store_ids: list[str]
    store_weights: npt.NDArray[np.float64]
    store_city_uf: list[tuple[str, str]]
    seller_names: list[str]
    seller_start: npt.NDArray[np.int64]
    seller_count: npt.NDArray[np.int64]
    products: list[tuple[str, str]]  # (name, category)
    product_weights: npt.NDArray[np.float64]
    quantity_p: npt.NDArray[np.float64]
    price_cents: npt.NDArray[np.int64]  # [store * n_products + product]
    sold_at_texts: list[str]  # by second of the local day
    hour_weights: npt.NDArray[np.float64]


class SalesCsv:
    """One day's file as byte chunks, generated lazily; ``stats`` fills in as they go."""

    def __init__(self, config: SalesConfig) -> None:
        self.config = config
        self.stats = SalesStats()
        self._rng = np.random.default_rng(config.seed)
        self._cat = _build_catalogue(config, self._rng)
        self._tag = _config_tag(config)
        self._pools = _Pools.of(self._cat, self._tag)

    def chunks(self) -> Iterator[tuple[int, memoryview]]:
        """(rows in the chunk, its bytes); the first chunk is the header (0 rows)."""
        header = HEADER.encode()
        self.stats.bytes_written += len(header)
        yield 0, memoryview(header)
        seconds = _sorted_seconds(self.config.rows, self._cat.hour_weights, self._rng)
        for start in range(0, self.config.rows, CHUNK_ROWS):
            chunk_seconds = seconds[start : start + CHUNK_ROWS]
            data = self._chunk(start, chunk_seconds)
            self.stats.rows += len(chunk_seconds)
            self.stats.bytes_written += len(data)
            yield len(chunk_seconds), data

    def _chunk(self, start: int, seconds: npt.NDArray[np.int64]) -> memoryview:
        rows = self._draw(len(seconds))
        rows.seconds = seconds
        data, line_starts = _string_data(self._pools.lines(rows, start, self._cat.price_cents))
        good = np.ones(len(seconds), dtype=bool)
        if self.config.bad_rate > 0:
            good = self._rng.random(len(seconds)) >= self.config.bad_rate
            data = self._spoil(data, line_starts, rows, start, good)
        self.stats.good_rows += int(good.sum())
        self.stats.good_total_cents += int(rows.total_cents[good].sum())
        return data

    def _draw(self, n: int) -> _Rows:
        cat, rng = self._cat, self._rng
        store = weighted_pick(cat.store_weights, n, rng)
        seller = cat.seller_start[store] + (rng.random(n) * cat.seller_count[store]).astype(
            np.int64
        )
        product = weighted_pick(cat.product_weights, n, rng)
        quantity = np.minimum(rng.geometric(cat.quantity_p[product]), MAX_QUANTITY)
        payment = weighted_pick(_PAYMENT_WEIGHTS, n, rng)
        price_index = store * len(cat.products) + product
        total_cents = quantity * cat.price_cents[price_index]
        return _Rows(store, seller, product, quantity, payment, price_index, total_cents)

    def _spoil(
        self,
        data: memoryview,
        line_starts: npt.NDArray[np.int64],
        rows: _Rows,
        start: int,
        good: npt.NDArray[np.bool_],
    ) -> memoryview:
        """The chunk's text with the lines not ``good`` replaced by bad ones of random kinds."""
        bad_index = np.flatnonzero(~good)
        if not len(bad_index):
            return data
        kinds = self._rng.integers(0, len(BAD_ROW_KINDS), size=len(bad_index))
        variants = self._rng.integers(0, 1 << 30, size=len(bad_index))
        texts = [
            _bad_line(BAD_ROW_KINDS[kind], self._fields(rows, start, i), int(variant))
            for i, kind, variant in zip(
                bad_index.tolist(), kinds.tolist(), variants.tolist(), strict=True
            )
        ]
        self.stats.add_bad(bad_index.astype(np.int64) + start + 2, kinds.astype(np.int64))
        pieces: list[bytes | memoryview] = []
        kept_from = 0
        for i, text in zip(bad_index.tolist(), texts, strict=True):
            pieces += (data[line_starts[kept_from] : line_starts[i]], text.encode())
            kept_from = i + 1
        pieces.append(data[line_starts[kept_from] :])
        return memoryview(b"".join(pieces))

    def _fields(self, rows: _Rows, start: int, i: int) -> list[str]:
        """The twelve fields of good row ``i`` of a chunk, as text."""
        cat = self._cat
        store = int(rows.store[i])
        product, category = cat.products[int(rows.product[i])]
        city, uf = cat.store_city_uf[store]
        return [
            f"{self._tag}{start + i + 1:0{_ID_DIGITS}d}",
            cat.sold_at_texts[int(rows.seconds[i])],
            _csv(cat.store_ids[store]),
            _csv(cat.seller_names[int(rows.seller[i])]),
            _csv(product),
            _csv(category),
            str(int(rows.quantity[i])),
            _cents_str(int(cat.price_cents[int(rows.price_index[i])])),
            _cents_str(int(rows.total_cents[i])),
            PAYMENT_METHODS[int(rows.payment[i])],
            _csv(city),
            uf,
        ]


@dataclass(slots=True)
class _Rows:
    """The random draws of one chunk, as index arrays into the catalogue."""

    store: npt.NDArray[np.int64]
    seller: npt.NDArray[np.int64]
    product: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.int64]
    payment: npt.NDArray[np.int64]
    price_index: npt.NDArray[np.int64]
    total_cents: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass(frozen=True, slots=True)
class _Pools:
    """The catalogue as ready-made CSV text, so that a chunk's line is five pieces: two
    built as fixed-width bytes with numpy, three ``take``s from pyarrow string pools. Columns
    that one draw decides travel together (a seller belongs to a store, a store to a city)."""

    id_prefix: npt.NDArray[np.uint8]  # "20261120-1a2b3c-"
    sold_at: npt.NDArray[np.uint8]  # [second of the day, 25 bytes]
    store_seller: pa.StringArray  # "LJ-0001,Maria Silva"
    product_category: pa.StringArray  # "Arroz Tipo 1 5 kg,Alimentos"
    quantity: pa.StringArray
    unit_price: pa.StringArray  # [store * n_products + product]
    payment_place_eol: pa.StringArray  # [store * 4 + payment]: "pix,São Paulo,SP\n"

    @classmethod
    def of(cls, cat: _Catalogue, tag: str) -> _Pools:
        def pool(texts: list[str]) -> pa.StringArray:
            return pa.array(texts, pa.string())

        store_of_seller = np.repeat(np.arange(len(cat.store_ids)), cat.seller_count).tolist()
        sold_at = "".join(cat.sold_at_texts).encode("ascii")
        if len({len(text) for text in cat.sold_at_texts}) != 1:  # an offset with seconds
            raise GeneratorConfigError("date", "the day's UTC offsets are not whole minutes")
        return cls(
            id_prefix=np.frombuffer(tag.encode("ascii"), dtype=np.uint8),
            sold_at=np.frombuffer(sold_at, dtype=np.uint8).reshape(len(cat.sold_at_texts), -1),
            store_seller=pool(
                [
                    f"{_csv(cat.store_ids[store])},{_csv(name)}"
                    for store, name in zip(store_of_seller, cat.seller_names, strict=True)
                ]
            ),
            product_category=pool([f"{_csv(p)},{_csv(c)}" for p, c in cat.products]),
            quantity=pool([str(q) for q in range(MAX_QUANTITY + 1)]),
            unit_price=pool([_cents_str(int(c)) for c in cat.price_cents]),
            payment_place_eol=pool(
                [
                    f"{method},{_csv(city)},{uf}\n"
                    for city, uf in cat.store_city_uf
                    for method in PAYMENT_METHODS
                ]
            ),
        )

    def lines(self, rows: _Rows, start: int, price_cents: npt.NDArray[np.int64]) -> pa.StringArray:
        joined: pa.StringArray = pc.binary_join_element_wise(
            self._id_and_time(start, rows.seconds),
            self.store_seller.take(rows.seller),
            self.product_category.take(rows.product),
            self._amounts(rows, price_cents),
            self.payment_place_eol.take(rows.store * len(PAYMENT_METHODS) + rows.payment),
            ",",
        )
        return joined

    def _id_and_time(self, start: int, seconds: npt.NDArray[np.int64]) -> pa.StringArray:
        """``<sale_id>,<sold_at>`` for rows ``start + 1...``: fixed width, built as bytes."""
        n, prefix = len(seconds), len(self.id_prefix)
        width = prefix + _ID_DIGITS + 1 + self.sold_at.shape[1]
        text = np.empty((n, width), dtype=np.uint8)
        text[:, :prefix] = self.id_prefix
        sequence = np.arange(start + 1, start + n + 1, dtype=np.int64)
        half = _ID_DIGITS // 2
        text[:, prefix : prefix + half] = _DIGIT_QUADS[sequence // 10_000]
        text[:, prefix + half : prefix + _ID_DIGITS] = _DIGIT_QUADS[sequence % 10_000]
        text[:, prefix + _ID_DIGITS] = ord(",")
        text[:, prefix + _ID_DIGITS + 1 :] = self.sold_at[seconds]
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        return pa.Array.from_buffers(
            pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)]
        )

    def _amounts(self, rows: _Rows, price_cents: npt.NDArray[np.int64]) -> pa.StringArray:
        """``<quantity>,<unit_price>,<total>``: text made once per distinct (price, quantity)
        of the chunk, then taken for every row."""
        keys = rows.price_index * (MAX_QUANTITY + 1) + rows.quantity
        distinct, row_key = np.unique(keys, return_inverse=True)
        quantity = distinct % (MAX_QUANTITY + 1)
        price_index = distinct // (MAX_QUANTITY + 1)
        texts = pc.binary_join_element_wise(
            self.quantity.take(quantity),
            self.unit_price.take(price_index),
            _cents_array(quantity * price_cents[price_index]),
            ",",
        )
        taken: pa.StringArray = texts.take(row_key)
        return taken


def _build_catalogue(config: SalesConfig, rng: np.random.Generator) -> _Catalogue:
    n_stores = config.n_stores
    store_ids = [f"LJ-{i + 1:04d}" for i in range(n_stores)]
    population = np.array([c.population for c in CITIES], dtype=np.float64)
    city_index = rng.choice(len(CITIES), size=n_stores, p=population / population.sum())
    store_weights = rng.lognormal(0.0, 0.5, size=n_stores)
    seller_count = rng.integers(_SELLERS_PER_STORE[0], _SELLERS_PER_STORE[1] + 1, size=n_stores)
    seller_start = np.concatenate(([0], np.cumsum(seller_count)[:-1])).astype(np.int64)
    names = name_pool(config.seed, min(int(seller_count.sum()), _SELLER_POOL))
    seller_names = [names[i] for i in rng.integers(0, len(names), int(seller_count.sum()))]
    products, weights, reference_cents = product_table(rng, _CATEGORY_SHARE)
    return _Catalogue(
        store_ids=store_ids,
        store_weights=store_weights / store_weights.sum(),
        store_city_uf=[(CITIES[i].name, CITIES[i].uf) for i in city_index.tolist()],
        seller_names=seller_names,
        seller_start=seller_start,
        seller_count=seller_count.astype(np.int64),
        products=products,
        product_weights=weights,
        quantity_p=_quantity_p(reference_cents),
        price_cents=_store_prices(products, reference_cents, n_stores, rng),
        sold_at_texts=_sold_at_texts(config.day),
        hour_weights=_hour_weights(),
    )


def weighted_pick(
    weights: npt.NDArray[np.float64], n: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``n`` indexes drawn with ``weights`` (which sum to 1): one uniform draw and a binary
    search each, without ``Generator.choice``'s per-call checks."""
    cumulative = np.cumsum(weights)
    picked = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    clipped: npt.NDArray[np.int64] = np.minimum(picked, len(weights) - 1).astype(np.int64)
    return clipped


def name_pool(seed: int, size: int) -> list[str]:
    """``size`` Brazilian first-and-last names (Faker pt_BR), the same for a seed."""
    from faker import Faker  # slow to import; only needed to build the pool

    fake = Faker("pt_BR")
    fake.seed_instance(seed)
    return [f"{fake.first_name()} {fake.last_name()}" for _ in range(size)]


def product_table(
    rng: np.random.Generator, category_share: Mapping[str, float]
) -> tuple[list[tuple[str, str]], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Every product of :data:`PRODUCTS` as (name, category), its share of the lines
    (``category_share`` of its category × a Zipf-like rank in the category, ranks shuffled by
    the seed) and its reference price in centavos."""
    products: list[tuple[str, str]] = []
    weights: list[float] = []
    cents: list[int] = []
    for category, items in PRODUCTS.items():
        ranks = rng.permutation(len(items)) + 1
        shares = 1.0 / ranks
        shares = shares / shares.sum() * category_share[category]
        for (name, price), share in zip(items, shares.tolist(), strict=True):
            products.append((name, category))
            weights.append(share)
            cents.append(int(Decimal(price) * 100))
    weight_array = np.array(weights, dtype=np.float64)
    return products, weight_array / weight_array.sum(), np.array(cents, dtype=np.int64)


def _quantity_p(reference_cents: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The geometric parameter of each product's quantity: cheap things come by the dozen."""
    return np.select(
        [reference_cents < 1_000, reference_cents < 5_000, reference_cents < 30_000],
        [0.5, 0.7, 0.85],
        default=0.95,
    ).astype(np.float64)


def _store_prices(
    products: list[tuple[str, str]],
    reference_cents: npt.NDArray[np.int64],
    n_stores: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Each store's price of each product: ±10% of the reference with a shelf-price ending
    (x,x9 under R$ 10; x,90 under R$ 1.000; x,00 above), within the category's range."""
    raw = reference_cents[np.newaxis, :] * rng.uniform(0.9, 1.1, size=(n_stores, len(products)))
    low, high = category_range_cents(products)
    return np.clip(shelf_price_cents(raw), low, high).reshape(-1)


def shelf_price_cents(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Prices in centavos rounded to a shelf-price ending: x,x9 under R$ 10; x,90 under
    R$ 1.000; x,00 above."""
    cents: npt.NDArray[np.int64] = np.where(
        raw < 1_000,
        np.round(raw / 10) * 10 - 1,
        np.where(raw < 100_000, np.round(raw / 100) * 100 - 10, np.round(raw / 1_000) * 1_000),
    ).astype(np.int64)
    return cents


def category_range_cents(
    products: list[tuple[str, str]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The lowest and highest price in centavos of each (name, category)'s category."""
    low = np.array([int(SALES_CATEGORIES[c][0] * 100) for _, c in products], dtype=np.int64)
    high = np.array([int(SALES_CATEGORIES[c][1] * 100) for _, c in products], dtype=np.int64)
    return low, high


def _hour_weights() -> npt.NDArray[np.float64]:
    """Sales per local hour: open 08-22, a lunch bump and a bigger after-work peak."""

    def bump(hour: float, center: float, width: float, height: float) -> float:
        return height * math.exp(-((hour - center) ** 2) / (2 * width**2))

    weights = [
        0.35 + bump(h + 0.5, 12.5, 1.0, 0.9) + bump(h + 0.5, 18.5, 1.3, 1.2)
        if _OPEN_HOUR <= h < _CLOSE_HOUR
        else 0.0
        for h in range(24)
    ]
    array = np.array(weights, dtype=np.float64)
    normalised: npt.NDArray[np.float64] = array / array.sum()
    return normalised


def _sold_at_texts(day: date) -> list[str]:
    """ISO-8601 text of every second of the local day, with that hour's UTC offset."""
    texts: list[str] = []
    for hour in range(24):
        offset = datetime.combine(day, time(hour), tzinfo=LOCAL_TZ).isoformat()[-6:]
        prefix = f"{day.isoformat()}T{hour:02d}:"
        texts.extend([prefix + minute_second + offset for minute_second in _MINUTE_SECOND])
    return texts


def _sorted_seconds(
    rows: int, hour_weights: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    per_hour = rng.multinomial(rows, hour_weights)
    seconds = np.repeat(np.arange(24, dtype=np.int64) * 3600, per_hour)
    seconds += rng.integers(0, 3600, size=rows)
    seconds.sort()
    return seconds


def _config_tag(config: SalesConfig) -> str:
    """``20261120-1a2b3c-``: keeps sale ids of different files apart."""
    digest = hashlib.blake2b(
        f"{config.day}|{config.seed}|{config.n_stores}|{config.rows}".encode(), digest_size=3
    ).hexdigest()
    return f"{config.day:%Y%m%d}-{digest}-"


def _cents_array(cents: npt.NDArray[np.int64]) -> pa.StringArray:
    """Centavos as ``"1234.56"`` text: decimal128 with scale 2 over the same integers."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits
    decimals = pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])
    text: pa.StringArray = decimals.cast(pa.string())
    return text


def _cents_str(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _csv(text: str) -> str:
    """``text`` as a CSV field: quoted only when it must be."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _string_data(lines: pa.StringArray) -> tuple[memoryview, npt.NDArray[np.int64]]:
    """The concatenated text of ``lines`` (each ends in a line break), without a copy, and
    where each line starts in it (plus the end)."""
    raw = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    offsets = raw[lines.offset : lines.offset + len(lines) + 1].astype(np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    starts: npt.NDArray[np.int64] = offsets - first
    return memoryview(lines.buffers()[2])[first:last], starts


def _bad_line(kind: str, fields: list[str], variant: int) -> str:
    """A line of ``kind`` made from a good row's fields (see the module docstring)."""
    quantity, price_text, total_text = int(fields[6]), fields[7], fields[8]
    if kind == "wrong_total":
        total = _to_cents(total_text)
        fields[8] = _cents_str(total * 10 if variant % 3 == 0 else total + 1 + variant % 500)
    elif kind == "negative_quantity":
        fields[6] = str(-quantity)
        fields[8] = _cents_str(-quantity * _to_cents(price_text))
    elif kind == "bad_uf":
        fields[11] = _BAD_UFS[variant % len(_BAD_UFS)]
    elif kind == "bad_date":
        fields[1] = _bad_date(fields[1], variant)
    elif kind == "unknown_category":
        fields[5] = _UNKNOWN_CATEGORIES[variant % len(_UNKNOWN_CATEGORIES)]
    else:
        return _garbage(fields, variant)
    return ",".join(fields) + "\n"


def _bad_date(sold_at: str, variant: int) -> str:
    """``2026-11-20T14:05:33-03:00`` spoiled: day 32, month 13, hour 25, dd/mm/yyyy, empty."""
    day, clock = sold_at[:10], sold_at[11:19]
    year, month, dom = day.split("-")
    options = (
        f"{year}-{month}-32T{clock}{sold_at[19:]}",
        f"{year}-13-{dom}T{clock}{sold_at[19:]}",
        f"{day}T25{clock[2:]}{sold_at[19:]}",
        f"{dom}/{month}/{year} {clock}",
        "",
    )
    return options[variant % len(options)]


def _garbage(fields: list[str], variant: int) -> str:
    line = ",".join(fields).replace('"', "")
    if variant % 2:
        return f"{line},{variant % 997},erro de exportação\n"
    return line[: line.index(",", len(line) // 3)] + "\n"


def _to_cents(text: str) -> int:
    return int(Decimal(text) * 100)
