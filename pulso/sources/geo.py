"""Where synthetic stores live and how each kind of store sells.

Cities are real municipalities (IBGE code, UF, approximate centre, 2022 census population,
rounded) spread over the five regions, so the map and the per-UF reports have something true
to show. Store types carry the shape of their trade: ticket size as a log-normal in BRL,
opening hours in local time, the peaks of their day and the weight of each weekday.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from pulso.domain.validators import REGION_BY_UF


@dataclass(frozen=True, slots=True)
class City:
    """A Brazilian municipality."""

    name: str
    uf: str
    ibge_code: int
    lat: float
    lon: float
    population: int

    @property
    def region(self) -> str:
        return REGION_BY_UF[self.uf]


CITIES: Final[tuple[City, ...]] = (
    # Sudeste
    City("São Paulo", "SP", 3550308, -23.5505, -46.6333, 11_451_000),
    City("Campinas", "SP", 3509502, -22.9056, -47.0608, 1_139_000),
    City("Ribeirão Preto", "SP", 3543402, -21.1775, -47.8103, 698_000),
    City("Santos", "SP", 3548500, -23.9608, -46.3336, 418_000),
    City("Rio de Janeiro", "RJ", 3304557, -22.9068, -43.1729, 6_211_000),
    City("Niterói", "RJ", 3303302, -22.8832, -43.1034, 481_000),
    City("Belo Horizonte", "MG", 3106200, -19.9167, -43.9345, 2_316_000),
    City("Uberlândia", "MG", 3170206, -18.9186, -48.2772, 713_000),
    City("Vitória", "ES", 3205309, -20.3155, -40.3128, 322_000),
    # Sul
    City("Curitiba", "PR", 4106902, -25.4284, -49.2733, 1_773_000),
    City("Londrina", "PR", 4113700, -23.3045, -51.1696, 555_000),
    City("Florianópolis", "SC", 4205407, -27.5954, -48.5480, 537_000),
    City("Joinville", "SC", 4209102, -26.3045, -48.8487, 616_000),
    City("Porto Alegre", "RS", 4314902, -30.0346, -51.2177, 1_332_000),
    City("Caxias do Sul", "RS", 4305108, -29.1678, -51.1794, 463_000),
    # Centro-Oeste
    City("Brasília", "DF", 5300108, -15.7939, -47.8828, 2_817_000),
    City("Goiânia", "GO", 5208707, -16.6869, -49.2648, 1_437_000),
    City("Campo Grande", "MS", 5002704, -20.4697, -54.6201, 898_000),
    City("Cuiabá", "MT", 5103403, -15.6014, -56.0979, 650_000),
    # Nordeste
    City("Salvador", "BA", 2927408, -12.9714, -38.5014, 2_418_000),
    City("Feira de Santana", "BA", 2910800, -12.2664, -38.9663, 616_000),
    City("Recife", "PE", 2611606, -8.0476, -34.8770, 1_488_000),
    City("Fortaleza", "CE", 2304400, -3.7319, -38.5267, 2_428_000),
    City("São Luís", "MA", 2111300, -2.5307, -44.3068, 1_037_000),
    City("Teresina", "PI", 2211001, -5.0919, -42.8034, 867_000),
    City("Natal", "RN", 2408102, -5.7945, -35.2110, 752_000),
    City("João Pessoa", "PB", 2507507, -7.1195, -34.8450, 833_000),
    City("Maceió", "AL", 2704302, -9.6498, -35.7089, 958_000),
    City("Aracaju", "SE", 2800308, -10.9472, -37.0731, 602_000),
    # Norte
    City("Manaus", "AM", 1302603, -3.1190, -60.0217, 2_063_000),
    City("Belém", "PA", 1501402, -1.4558, -48.4902, 1_303_000),
    City("Porto Velho", "RO", 1100205, -8.7612, -63.9004, 460_000),
    City("Palmas", "TO", 1721000, -10.1840, -48.3336, 302_000),
)

CITY_BY_IBGE: Final[dict[int, City]] = {c.ibge_code: c for c in CITIES}


@dataclass(frozen=True, slots=True)
class Peak:
    """A bump in the day's traffic around ``center_h`` (local hour, fractional)."""

    center_h: float
    width_h: float
    height: float


Hours = tuple[int, int]
"""Opening hours as local [open, close) hours; ``(0, 24)`` is open all day."""


@dataclass(frozen=True, slots=True)
class StoreType:
    """How one kind of store sells: volume, ticket, hours, daily and weekly shape."""

    slug: str
    label: str
    share: float  # how common this type is among generated stores
    charges_per_day: float  # PIX charges on a plain weekday, for a store of size 1
    amount_median_brl: float  # log-normal ticket: median (= exp(mu)) ...
    amount_sigma: float  # ... and sigma of the underlying normal
    amount_max_brl: float
    hours: Hours
    sunday_hours: Hours | None  # None: closed on Sunday
    # Traffic per open hour relative to a plain weekday, Monday..Sunday: short Sunday hours
    # already lower the day's total, so a busy Sunday morning has a factor above 1.
    weekday_factor: tuple[float, float, float, float, float, float, float]
    peaks: tuple[Peak, ...]
    base_weight: float = 0.35  # traffic between peaks, relative to a peak's height of 1
    # str.format templates for store names: {last} a surname, {first} a man's first name
    name_templates: tuple[str, ...] = ("{last}",)

    @property
    def amount_mu(self) -> float:
        return math.log(self.amount_median_brl)

    def hours_on(self, weekday: int) -> Hours | None:
        """Opening hours on ``weekday`` (0 = Monday), or None when closed."""
        return self.sunday_hours if weekday == 6 else self.hours

    def hour_weights(self, weekday: int) -> tuple[float, ...]:
        """Relative traffic for each local hour of ``weekday``; 0 when closed."""
        hours = self.hours_on(weekday)
        if hours is None:
            return (0.0,) * 24
        open_h, close_h = hours
        return tuple(self._weight_at(h + 0.5) if open_h <= h < close_h else 0.0 for h in range(24))

    def _weight_at(self, hour: float) -> float:
        bumps = (
            p.height * math.exp(-((hour - p.center_h) ** 2) / (2 * p.width_h**2))
            for p in self.peaks
        )
        return self.base_weight + sum(bumps)


_LUNCH = Peak(12.5, 1.0, 1.0)
_EVENING = Peak(19.0, 1.2, 1.0)

STORE_TYPES: Final[tuple[StoreType, ...]] = (
    StoreType(
        slug="supermercado",
        label="Supermercado",
        share=0.20,
        charges_per_day=1400,
        amount_median_brl=85.0,
        amount_sigma=0.85,
        amount_max_brl=3_000.0,
        hours=(7, 22),
        sunday_hours=(8, 14),
        # Saturday is the big shopping day; Sunday opens only the morning, and it is busy.
        weekday_factor=(0.9, 0.85, 0.9, 0.95, 1.15, 1.45, 1.2),
        peaks=(Peak(10.5, 1.5, 0.6), Peak(12.5, 1.0, 0.6), Peak(18.7, 1.3, 1.0)),
        name_templates=("Supermercado {last}", "Mercado {last}", "Atacarejo {last}"),
    ),
    StoreType(
        slug="farmacia",
        label="Farmácia",
        share=0.15,
        charges_per_day=600,
        amount_median_brl=45.0,
        amount_sigma=0.75,
        amount_max_brl=1_500.0,
        hours=(7, 23),
        sunday_hours=(8, 20),
        weekday_factor=(1.05, 1.0, 1.0, 1.0, 1.05, 0.95, 0.7),
        peaks=(Peak(9.5, 1.5, 0.5), _LUNCH, Peak(18.5, 1.5, 0.9)),
        name_templates=("Drogaria {last}", "Farmácia {last}"),
    ),
    StoreType(
        slug="padaria",
        label="Padaria",
        share=0.15,
        charges_per_day=900,
        amount_median_brl=18.0,
        amount_sigma=0.6,
        amount_max_brl=400.0,
        hours=(6, 21),
        sunday_hours=(6, 13),
        weekday_factor=(0.95, 0.95, 0.95, 0.95, 1.0, 1.2, 1.3),
        peaks=(Peak(7.3, 1.0, 1.2), Peak(12.3, 0.8, 0.5), Peak(17.8, 1.2, 0.9)),
        name_templates=("Padaria {last}", "Panificadora {first}"),
    ),
    StoreType(
        slug="restaurante",
        label="Restaurante",
        share=0.17,
        charges_per_day=500,
        amount_median_brl=62.0,
        amount_sigma=0.6,
        amount_max_brl=1_200.0,
        hours=(11, 23),
        sunday_hours=(11, 17),
        weekday_factor=(0.75, 0.85, 0.9, 0.95, 1.3, 1.45, 1.25),
        peaks=(Peak(12.7, 0.8, 1.4), Peak(20.0, 1.1, 1.1)),
        base_weight=0.15,
        name_templates=("Restaurante {last}", "Cantina do {first}", "Churrascaria {last}"),
    ),
    StoreType(
        slug="posto",
        label="Posto de combustível",
        share=0.10,
        charges_per_day=800,
        amount_median_brl=120.0,
        amount_sigma=0.55,
        amount_max_brl=1_500.0,
        hours=(0, 24),
        sunday_hours=(0, 24),
        weekday_factor=(1.0, 0.95, 0.95, 1.0, 1.15, 1.05, 0.8),
        peaks=(Peak(7.5, 1.2, 0.9), _LUNCH, Peak(18.3, 1.3, 1.1)),
        base_weight=0.12,
        name_templates=("Auto Posto {last}", "Posto {first}"),
    ),
    StoreType(
        slug="loja_roupas",
        label="Loja de roupas",
        share=0.10,
        charges_per_day=250,
        amount_median_brl=150.0,
        amount_sigma=0.7,
        amount_max_brl=3_000.0,
        hours=(10, 22),
        sunday_hours=(14, 20),
        weekday_factor=(0.8, 0.8, 0.85, 0.9, 1.15, 1.6, 0.9),
        peaks=(Peak(13.0, 1.2, 0.7), Peak(19.0, 1.5, 1.0)),
        name_templates=("Boutique {last}", "{last} Modas", "Confecções {last}"),
    ),
    StoreType(
        slug="eletronicos",
        label="Eletrônicos",
        share=0.05,
        charges_per_day=120,
        amount_median_brl=350.0,
        amount_sigma=1.0,
        amount_max_brl=15_000.0,
        hours=(9, 19),
        sunday_hours=None,
        weekday_factor=(0.9, 0.9, 0.95, 1.0, 1.15, 1.3, 0.0),
        peaks=(_LUNCH, Peak(17.5, 1.2, 0.8)),
        name_templates=("Eletro {last}", "{last} Eletrônicos", "Info {last}"),
    ),
    StoreType(
        slug="bar",
        label="Bar e lanchonete",
        share=0.08,
        charges_per_day=400,
        amount_median_brl=38.0,
        amount_sigma=0.7,
        amount_max_brl=800.0,
        hours=(11, 24),
        sunday_hours=(11, 22),
        weekday_factor=(0.6, 0.7, 0.8, 0.95, 1.5, 1.6, 1.0),
        peaks=(Peak(12.5, 0.8, 0.7), Peak(20.5, 1.6, 1.3)),
        base_weight=0.2,
        name_templates=("Bar do {first}", "Lanchonete {last}", "Boteco do {first}"),
    ),
)

STORE_TYPE_BY_SLUG: Final[dict[str, StoreType]] = {t.slug: t for t in STORE_TYPES}
