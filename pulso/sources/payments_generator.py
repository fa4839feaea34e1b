"""Synthetic PIX charge traffic: deterministic, believable and fast.

One seed gives the same bytes on every run. Each store sells along its type's daily and
weekly curves (local time, America/Sao_Paulo); arrivals within an hour are a Poisson process.
Every charge is ``pix.charge.created`` and then exactly one terminal event: confirmed after a
log-normal delay (mostly 3–60 s, a tail of minutes), failed (~2%) or expired at ``expires_at``
(~3%). Events come out in event-time order; terminals of the last charges may fall a little
after the period's end, as they would in life.

``generate_payment_records`` adds malformed records (raw bytes) of known kinds, each of which
``decode_event`` rejects with the reason in :data:`MALFORMED_KINDS`.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import NormalDist
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from pulso.domain.events import Event, encode_event, new_event
from pulso.domain.ids import uuid7
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.domain.validators import complete_cnpj, complete_cpf
from pulso.sources import GeneratorConfigError
from pulso.sources.geo import CITIES, STORE_TYPES, City, StoreType

ItemT = TypeVar("ItemT")

SOURCE: Final = "generator.payments"
LOCAL_TZ: Final = ZoneInfo("America/Sao_Paulo")
FAILED_SHARE: Final = 0.02
EXPIRED_SHARE: Final = 0.03
MAX_DAYS: Final = 366
MAX_STORES: Final = 5_000
# UUIDv7 times start at 1970; past 2100 nothing about today's PIX is believable.
FIRST_DAY: Final = date(1970, 1, 2)
LAST_DAY: Final = date(2100, 12, 31)

# Confirmation delay in seconds: most payers scan and pay within a minute; a few take
# minutes (they walk away, the bank app asks for a token...).
_CONFIRM_MEDIAN_S: Final = 14.0
_CONFIRM_SIGMA: Final = 0.75
_SLOW_PAYER_SHARE: Final = 0.06
_SLOW_MEDIAN_S: Final = 150.0
_SLOW_SIGMA: Final = 0.6
_FAIL_MEDIAN_S: Final = 6.0
_FAIL_SIGMA: Final = 0.8

_MIN_AMOUNT_CENTS: Final = 100
_CPFS_PER_STORE: Final = 250
_CNPJS_PER_STORE: Final = 12
_CNPJ_PAYER_SHARE: Final = 0.05
_HOUR_MS: Final = 3_600_000

FAILURE_REASONS: Final[tuple[str, ...]] = (
    "saldo insuficiente",
    "saldo insuficiente",  # twice: the commonest reason
    "transação recusada pelo banco do pagador",
    "limite de valor Pix do pagador excedido",
    "tempo de resposta do PSP excedido",
)
# ISPBs of large payer institutions (Banco do Brasil, Caixa, Itaú, Bradesco, Santander,
# Nubank, Inter, Mercado Pago); an end-to-end id starts with the payer's ISPB.
_PAYER_ISPBS: Final[tuple[str, ...]] = (
    "00000000",
    "00360305",
    "60701190",
    "60746948",
    "90400888",
    "18236120",
    "00416968",
    "10573521",
)


@dataclass(frozen=True, slots=True)
class PaymentsConfig:
    """What to generate: ``days`` local days from ``start``, for ``n_stores`` stores."""

    start: date
    days: int = 7
    n_stores: int = 20
    n_cities: int = 8
    seed: int = 42
    malformed_rate: float = 0.0  # malformed records per good event, 0..1
    expiry_s: int = 600

    def __post_init__(self) -> None:
        _check_days(self.days)
        _require(
            FIRST_DAY <= self.start <= LAST_DAY - timedelta(days=self.days),
            "start",
            f"the period must fall between {FIRST_DAY} and {LAST_DAY}, got {self.start}",
        )
        _require(
            1 <= self.n_stores <= MAX_STORES,
            "stores",
            f"must be 1..{MAX_STORES}, got {self.n_stores}",
        )
        _require(
            1 <= self.n_cities <= len(CITIES),
            "cities",
            f"must be 1..{len(CITIES)} (the cities pulso knows), got {self.n_cities}",
        )
        _require(
            0.0 <= self.malformed_rate <= 1.0,
            "malformed-rate",
            f"must be 0..1 (malformed records per good event), got {self.malformed_rate}",
        )
        _require(
            60 <= self.expiry_s <= 86_400,
            "expiry-s",
            f"must be 60..86400 seconds, got {self.expiry_s}",
        )

    @property
    def period_start(self) -> datetime:
        """Local midnight of ``start``, in UTC."""
        return _local_midnight_utc(self.start)

    @property
    def period_end(self) -> datetime:
        """Local midnight after the last day, in UTC (exclusive)."""
        return _local_midnight_utc(self.start + timedelta(days=self.days))


def _check_days(days: int) -> None:
    _require(1 <= days <= MAX_DAYS, "days", f"must be 1..{MAX_DAYS}, got {days}")


def _require(ok: bool, option: str, problem: str) -> None:
    if not ok:
        raise GeneratorConfigError(option, problem)


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(UTC)


def period_start_date(
    days: int, *, today: date, start: date | None = None, end: date | None = None
) -> date:
    """The first day of a ``days``-long period from ``start`` or up to ``end`` (inclusive).

    With neither, the period ends on the last complete day before ``today``.
    """
    _check_days(days)
    if start is not None and end is not None:
        raise GeneratorConfigError("start", "give --start or --end, not both")
    if start is not None:
        return start
    last_day = end if end is not None else today - timedelta(days=1)
    return last_day - timedelta(days=days - 1)


def local_today(now: datetime | None = None) -> date:
    """Today's date in America/Sao_Paulo."""
    return (now or datetime.now(UTC)).astimezone(LOCAL_TZ).date()


# ---------------------------------------------------------------------------- stores


@dataclass(frozen=True, slots=True)
class Store:
    """A generated merchant: where it is, what it sells, how big it is."""

    store_id: str
    name: str
    city: str
    uf: str
    ibge_code: int
    store_type: StoreType
    size_factor: float  # volume multiplier; 1.0 is a typical store of its type
    tills: int

    def hourly_charges(self) -> tuple[tuple[float, ...], ...]:
        """Expected charges per local hour, indexed ``[weekday][hour]`` (0 = Monday)."""
        kind = self.store_type
        plain_day_weight = sum(kind.hour_weights(0)) or 1.0
        per_weight = kind.charges_per_day * self.size_factor / plain_day_weight
        return tuple(
            tuple(w * per_weight * kind.weekday_factor[wd] for w in kind.hour_weights(wd))
            for wd in range(7)
        )


def make_stores(n_stores: int, n_cities: int, rng: random.Random) -> list[Store]:
    """``n_stores`` stores over about ``n_cities`` cities (fewer if there are fewer stores)."""
    cities = pick_cities(min(n_cities, n_stores), rng)
    weights = [math.sqrt(c.population) for c in cities]
    homes = cities + rng.choices(cities, weights=weights, k=n_stores - len(cities))
    rng.shuffle(homes)
    kinds = _pick_store_types(n_stores, rng)
    names = _store_names(kinds, rng)
    return [
        Store(
            store_id=f"LJ-{i + 1:04d}",
            name=name,
            city=city.name,
            uf=city.uf,
            ibge_code=city.ibge_code,
            store_type=kind,
            size_factor=_size_factor(rng),
            tills=rng.randint(1, 8),
        )
        for i, (city, kind, name) in enumerate(zip(homes, kinds, names, strict=True))
    ]


def pick_cities(n_cities: int, rng: random.Random) -> list[City]:
    """``n_cities`` distinct cities, taken region by region so that few still spread out."""
    by_region: dict[str, list[City]] = {}
    for city in CITIES:
        by_region.setdefault(city.region, []).append(city)
    regions = sorted(by_region)
    rng.shuffle(regions)
    chosen: list[City] = []
    while len(chosen) < n_cities:
        for region in regions:
            pool = by_region[region]
            if pool and len(chosen) < n_cities:
                city = rng.choices(pool, weights=[c.population for c in pool])[0]
                pool.remove(city)
                chosen.append(city)
    return chosen


def _pick_store_types(n_stores: int, rng: random.Random) -> list[StoreType]:
    """One of each type first (a small demo still shows every shape), then by share."""
    first = list(STORE_TYPES[:n_stores])
    rest = rng.choices(STORE_TYPES, weights=[t.share for t in STORE_TYPES], k=n_stores - len(first))
    kinds = first + rest
    rng.shuffle(kinds)
    return kinds


def _store_names(kinds: Sequence[StoreType], rng: random.Random) -> list[str]:
    from faker import Faker  # slow to import; only needed to name stores once

    faker = Faker("pt_BR")
    faker.seed_instance(rng.getrandbits(32))
    names = [
        rng.choice(kind.name_templates).format(
            last=faker.last_name(), first=faker.first_name_male()
        )
        for kind in kinds
    ]
    return [name[0].upper() + name[1:] for name in names]  # "da Costa Modas" opens a sentence


def _size_factor(rng: random.Random) -> float:
    return round(min(3.0, max(0.3, math.exp(rng.gauss(0.0, 0.45)))), 3)


def make_payer_pool(n_stores: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Valid CPFs and CNPJs for payers, a few hundred per store, so payers repeat."""
    cpfs = [_random_cpf(rng) for _ in range(_CPFS_PER_STORE * n_stores)]
    cnpjs = [_random_cnpj(rng) for _ in range(_CNPJS_PER_STORE * n_stores)]
    return cpfs, cnpjs


def _random_cpf(rng: random.Random) -> str:
    while True:
        cpf = complete_cpf(f"{rng.randrange(10**9):09d}")
        if cpf != cpf[0] * 11:  # 000.000.000-00 and the like pass the sum but are never issued
            return cpf


def _random_cnpj(rng: random.Random) -> str:
    while True:
        cnpj = complete_cnpj(f"{rng.randrange(10**8):08d}0001")  # 0001: the head office
        if cnpj != cnpj[0] * 14:
            return cnpj


def stores_for(config: PaymentsConfig) -> list[Store]:
    """The stores ``config`` generates traffic for (the same ones on every call)."""
    return make_stores(config.n_stores, config.n_cities, random.Random(config.seed))


def expected_charges(config: PaymentsConfig, stores: Sequence[Store] | None = None) -> float:
    """The mean number of charges ``config`` makes; a progress bar's total, not a count."""
    tables = [s.hourly_charges() for s in stores or stores_for(config)]
    return sum(table[wd][h] for _, wd, h in _local_hours(config) for table in tables)


def _local_hours(config: PaymentsConfig) -> Iterator[tuple[int, int, int]]:
    """(UTC hour start in ms, local weekday, local hour) for every hour of the period."""
    start_ms = int(config.period_start.timestamp()) * 1000
    end_ms = int(config.period_end.timestamp()) * 1000
    for hour_ms in range(start_ms, end_ms, _HOUR_MS):
        local = datetime.fromtimestamp(hour_ms / 1000, LOCAL_TZ)
        yield hour_ms, local.weekday(), local.hour


# ---------------------------------------------------------------------------- events


@dataclass(slots=True)
class ChargeCounts:
    """Charges made so far, and how many ended each way (what :func:`terminal_maker` counts)."""

    charges: int = 0
    confirmed: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def events(self) -> int:
        """Every charge event: the created ones and their terminals."""
        return self.charges + self.confirmed + self.failed + self.expired


@dataclass(slots=True)
class GenerationStats(ChargeCounts):
    """Exact counts of what a generator yielded so far."""

    malformed_by_kind: dict[str, int] = field(default_factory=dict)
    stores: int = 0
    cities: int = 0
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def good_events(self) -> int:
        return self.events

    @property
    def malformed(self) -> int:
        return sum(self.malformed_by_kind.values())

    @property
    def records(self) -> int:
        return self.good_events + self.malformed


_QUANTILE_STEPS: Final = 1024


def lognormal_quantiles(median: float, sigma: float) -> tuple[float, ...]:
    """The log-normal's inverse CDF at ``_QUANTILE_STEPS + 1`` even steps (tails clipped)."""
    normal = NormalDist(math.log(median), sigma)
    edge = 0.5 / _QUANTILE_STEPS
    return tuple(
        math.exp(normal.inv_cdf(min(max(i / _QUANTILE_STEPS, edge), 1.0 - edge)))
        for i in range(_QUANTILE_STEPS + 1)
    )


def draw_quantile(table: Sequence[float], uniform: float) -> float:
    """Inverse-transform sampling, linear between steps: twice as fast as gauss() + exp()."""
    position = uniform * _QUANTILE_STEPS
    step = int(position)
    low = table[step]
    return low + (table[step + 1] - low) * (position - step)


_CONFIRM_DELAYS_S: Final = lognormal_quantiles(_CONFIRM_MEDIAN_S, _CONFIRM_SIGMA)
_SLOW_CONFIRM_DELAYS_S: Final = lognormal_quantiles(_SLOW_MEDIAN_S, _SLOW_SIGMA)
_FAIL_DELAYS_S: Final = lognormal_quantiles(_FAIL_MEDIAN_S, _FAIL_SIGMA)
_NOT_CONFIRMED_SHARE: Final = FAILED_SHARE + EXPIRED_SHARE
CONFIRMED, FAILED, EXPIRED = 0, 1, 2


def draw_outcome(uniform: float, expiry_ms: int) -> tuple[int, int]:
    """How a charge ends, and how many ms after creation, from one uniform draw.

    The draw picks the outcome by its share, and what is left of it (uniform again within
    the outcome's slice) picks the delay: one random number instead of three.
    """
    last_report_ms = expiry_ms - 1000  # a payment or refusal lands a second before expiry
    if uniform < FAILED_SHARE:
        delay_s = draw_quantile(_FAIL_DELAYS_S, uniform / FAILED_SHARE)
        return FAILED, min(int(delay_s * 1000), last_report_ms)
    if uniform < _NOT_CONFIRMED_SHARE:
        return EXPIRED, expiry_ms
    rest = (uniform - _NOT_CONFIRMED_SHARE) / (1.0 - _NOT_CONFIRMED_SHARE)
    if rest < _SLOW_PAYER_SHARE:
        delay_s = draw_quantile(_SLOW_CONFIRM_DELAYS_S, rest / _SLOW_PAYER_SHARE)
    else:
        slice_s = (rest - _SLOW_PAYER_SHARE) / (1.0 - _SLOW_PAYER_SHARE)
        delay_s = draw_quantile(_CONFIRM_DELAYS_S, slice_s)
    return CONFIRMED, min(int(delay_s * 1000), last_report_ms)


# A pending terminal event: (due_ms, sequence, outcome, charge_id, amount); the sequence
# number keeps the heap from ever comparing the rest and makes ties deterministic.
Pending = tuple[int, int, int, str, Decimal]


class Amounts(dict[int, Decimal]):
    """Two-place Decimals by centavos, each built once on first use (tickets repeat)."""

    def __missing__(self, cents: int) -> Decimal:
        amount = self[cents] = Decimal(cents).scaleb(-2)
        return amount


@dataclass(frozen=True, slots=True)
class StoreTables:
    """A seed's stores and what traffic is drawn from for each, in store order: the
    expected charges per local hour and the ticket quantiles in centavos."""

    stores: list[Store]
    hourly: list[tuple[tuple[float, ...], ...]]
    amounts_cents: list[tuple[float, ...]]

    @classmethod
    def build(cls, n_stores: int, n_cities: int, seed: int) -> StoreTables:
        stores = make_stores(n_stores, n_cities, random.Random(seed))
        return cls(
            stores,
            [s.hourly_charges() for s in stores],
            [_amount_quantiles_cents(s.store_type) for s in stores],
        )

    @property
    def cities(self) -> int:
        return len({s.ibge_code for s in self.stores})


def terminal_maker(
    rng: random.Random,
    counts: ChargeCounts,
    source: str,
    end_to_end_id: Callable[[int, datetime], str],
) -> Callable[[Pending], Event]:
    """A function giving the terminal event of a pending charge (confirmed, failed or expired
    at its due time), counted in ``counts``. It draws from ``rng`` in a fixed order:
    ``end_to_end_id(ms, at)`` for a confirmation, the reason of a failure, then the event
    id's bits. (A closure rather than a plain function: it runs once per charge.)"""

    def terminal(entry: Pending) -> Event:
        ms, _, outcome, charge_id, amount = entry
        at = datetime.fromtimestamp(ms / 1000, UTC)
        payload: ChargeConfirmed | ChargeFailed | ChargeExpired
        if outcome == CONFIRMED:
            e2e_id = end_to_end_id(ms, at)
            payload = ChargeConfirmed(
                charge_id=charge_id, confirmed_at=at, amount_paid=amount, end_to_end_id=e2e_id
            )
            counts.confirmed += 1
        elif outcome == FAILED:
            reason = rng.choice(FAILURE_REASONS)
            payload = ChargeFailed(charge_id=charge_id, failed_at=at, reason=reason)
            counts.failed += 1
        else:
            payload = ChargeExpired(charge_id=charge_id, expired_at=at)
            counts.expired += 1
        event_id = uuid7(ms, rng.getrandbits(80))
        return new_event(payload, source=source, key=charge_id, occurred_at=at, event_id=event_id)

    return terminal


class _Simulation:
    """One pass over the period; holds the random stream, the stores and pending terminals."""

    def __init__(self, config: PaymentsConfig, stats: GenerationStats) -> None:
        self._config = config
        self._stats = stats
        tables = StoreTables.build(config.n_stores, config.n_cities, config.seed)
        self._stores = tables.stores
        self._rng = random.Random(f"{config.seed}/events")
        self._cpfs, self._cnpjs = make_payer_pool(len(self._stores), self._rng)
        self._tables = tables.hourly
        self._amounts_cents = tables.amounts_cents
        self._till_labels = [[f"PDV {t:02d}" for t in range(1, s.tills + 1)] for s in self._stores]
        self._pending: list[Pending] = []
        self._expiry_ms = config.expiry_s * 1000
        self._expiry = timedelta(seconds=config.expiry_s)
        self._decimals = Amounts()
        self._e2e_minute = -1
        self._e2e_prefixes: list[str] = []
        self._terminal = terminal_maker(self._rng, stats, SOURCE, self._end_to_end_id)
        stats.stores = len(self._stores)
        stats.cities = tables.cities
        stats.period_start, stats.period_end = config.period_start, config.period_end

    def events(self) -> Iterator[Event]:
        """Created events hour by hour, each preceded by the terminals that fall due first."""
        # The hot loop: it runs for every charge, so what it touches is bound to locals and
        # the created event is built inline rather than in a method.
        rng, stats, stores = self._rng, self._stats, self._stores
        rnd, bits = rng.random, rng.getrandbits
        pending, pop, push = self._pending, heapq.heappop, heapq.heappush
        terminal, expiry_ms = self._terminal, self._expiry_ms
        amount_tables, till_labels, decimals = (
            self._amounts_cents,
            self._till_labels,
            self._decimals,
        )
        cpfs, cnpjs, expiry = self._cpfs, self._cnpjs, self._expiry
        fromtimestamp = datetime.fromtimestamp
        sequence = 0
        for hour_ms, weekday, hour in _local_hours(self._config):
            for ms, i in self._arrivals(hour_ms, weekday, hour):
                while pending and pending[0][0] <= ms:
                    yield terminal(pop(pending))
                store, tills = stores[i], till_labels[i]
                cents = int(draw_quantile(amount_tables[i], rnd()))
                amount = decimals[cents]
                txid = f"{bits(100):025x}"
                charge_id = "ch_" + txid  # the PSP's txid is unique: the charge id follows it
                created_at = fromtimestamp(ms / 1000, UTC)
                payers = cnpjs if rnd() < _CNPJ_PAYER_SHARE else cpfs
                payload = ChargeCreated(
                    charge_id=charge_id,
                    txid=txid,
                    store_id=store.store_id,
                    city=store.city,
                    uf=store.uf,
                    amount=amount,
                    created_at=created_at,
                    expires_at=created_at + expiry,
                    description=tills[int(rnd() * len(tills))],
                    payer_document=payers[int(rnd() * len(payers))],
                )
                outcome, delay_ms = draw_outcome(rnd(), expiry_ms)
                sequence += 1
                push(pending, (ms + delay_ms, sequence, outcome, charge_id, amount))
                stats.charges += 1
                event_id = uuid7(ms, bits(80))
                yield new_event(
                    payload, source=SOURCE, key=charge_id, occurred_at=created_at, event_id=event_id
                )
        while pending:
            yield terminal(pop(pending))

    def _arrivals(self, hour_ms: int, weekday: int, hour: int) -> list[tuple[int, int]]:
        """Charge times in this hour for every store (a Poisson process each), in order."""
        rnd, log = self._rng.random, math.log
        arrivals: list[tuple[int, int]] = []
        for store_index, table in enumerate(self._tables):
            rate = table[weekday][hour]
            if rate <= 0.0:
                continue
            mean_gap_ms = _HOUR_MS / rate
            offset_ms = -log(1.0 - rnd()) * mean_gap_ms
            while offset_ms < _HOUR_MS:
                arrivals.append((hour_ms + int(offset_ms), store_index))
                offset_ms -= log(1.0 - rnd()) * mean_gap_ms
        arrivals.sort()
        return arrivals

    def _end_to_end_id(self, ms: int, _at: datetime) -> str:
        """``E`` + payer ISPB + UTC yyyyMMddHHmm + 11 characters: the BCB's 32-char format."""
        minute = ms // 60_000
        if minute != self._e2e_minute:  # terminals come in time order: new prefixes a minute
            self._e2e_minute = minute
            stamp = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y%m%d%H%M")
            self._e2e_prefixes = [f"E{ispb}{stamp}" for ispb in _PAYER_ISPBS]
        bits = self._rng.getrandbits(47)  # 3 bits pick the payer's ISPB, 44 make the suffix
        return f"{self._e2e_prefixes[bits & 7]}{bits >> 3:011x}"


def _amount_quantiles_cents(kind: StoreType) -> tuple[float, ...]:
    """The type's ticket distribution in centavos, clipped to its floor and ceiling."""
    ceiling = kind.amount_max_brl * 100
    return tuple(
        min(max(q * 100, _MIN_AMOUNT_CENTS), ceiling)
        for q in lognormal_quantiles(kind.amount_median_brl, kind.amount_sigma)
    )


class Generation(Iterator[ItemT]):
    """What a generator makes, as an iterator, with its exact running counts in ``stats``."""

    def __init__(self, items: Iterator[ItemT], stats: GenerationStats) -> None:
        self._items = items
        self.stats = stats

    def __iter__(self) -> Iterator[ItemT]:
        return self._items  # a for loop drives the generator itself: no Python call per item

    def __next__(self) -> ItemT:
        return next(self._items)


def generate_payments(config: PaymentsConfig) -> Generation[Event]:
    """Every charge event of the period, in event-time order, counted in ``.stats``."""
    stats = GenerationStats()
    return Generation(_Simulation(config, stats).events(), stats)


# ---------------------------------------------------------------------------- malformed

KeyedRecord = tuple[bytes, bytes]

MALFORMED_KINDS: Final[dict[str, str]] = {
    "bad_json": "bad_json",
    "amount_as_object": "bad_payload",
    "missing_field": "bad_payload",
    "invalid_cpf": "invalid_cpf",
    "negative_amount": "invalid_amount",
    "unknown_type": "unknown_type",
    "naive_timestamp": "bad_envelope",
}
"""Each malformed kind the generator makes, and the reason ``decode_event`` must give."""

_JSON_DECODE: Final = msgspec.json.Decoder()
_JSON_ENCODE: Final = msgspec.json.Encoder()


class MalformedFactory:
    """Spoils a good ``pix.charge.created`` event in one known way per call."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._spoilers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "bad_json": self._bad_json,
            "amount_as_object": self._amount_as_object,
            "missing_field": self._missing_field,
            "invalid_cpf": self._invalid_cpf,
            "negative_amount": self._negative_amount,
            "unknown_type": self._unknown_type,
            "naive_timestamp": self._naive_timestamp,
        }
        self._kinds = sorted(self._spoilers)

    def make(self, template: bytes, kind: str | None = None) -> tuple[str, KeyedRecord]:
        """(kind, (key, value)) spoiled from ``template``; a random kind unless one is named."""
        kind = kind or self._rng.choice(self._kinds)
        event: dict[str, Any] = _JSON_DECODE.decode(template)
        charge_id = f"ch_{self._rng.getrandbits(80):020x}"  # its own charge, not a copy
        event["key"] = event["data"]["charge_id"] = charge_id
        event["event_id"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        return kind, (charge_id.encode(), self._spoilers[kind](event))

    def _bad_json(self, event: dict[str, Any]) -> bytes:
        whole = _JSON_ENCODE.encode(event)
        cut = self._rng.randrange(1, len(whole) - 1)  # a cut-off write...
        while whole[cut] & 0xC0 == 0x80:  # ...at a character boundary: the file stays UTF-8
            cut -= 1
        return whole[:cut]

    def _amount_as_object(self, event: dict[str, Any]) -> bytes:
        event["data"]["amount"] = {"value": event["data"]["amount"], "currency": "BRL"}
        return _JSON_ENCODE.encode(event)

    def _missing_field(self, event: dict[str, Any]) -> bytes:
        del event["data"]["store_id"]
        return _JSON_ENCODE.encode(event)

    def _invalid_cpf(self, event: dict[str, Any]) -> bytes:
        cpf = _random_cpf(self._rng)
        event["data"]["payer_document"] = cpf[:10] + str((int(cpf[10]) + 1) % 10)
        return _JSON_ENCODE.encode(event)

    def _negative_amount(self, event: dict[str, Any]) -> bytes:
        event["data"]["amount"] = "-" + event["data"]["amount"]
        return _JSON_ENCODE.encode(event)

    def _unknown_type(self, event: dict[str, Any]) -> bytes:
        event["type"] = "pix.charge.refunded"
        return _JSON_ENCODE.encode(event)

    def _naive_timestamp(self, event: dict[str, Any]) -> bytes:
        event["occurred_at"] = event["occurred_at"].removesuffix("Z")
        return _JSON_ENCODE.encode(event)


def generate_payment_records(config: PaymentsConfig) -> Generation[KeyedRecord]:
    """(key, value) records: the encoded events, with malformed ones mixed in at the rate.

    Malformed records draw from their own random stream, so the good events are the same
    bytes whatever the rate. ``.stats`` counts both exactly.
    """
    events = generate_payments(config)
    stats = events.stats
    if config.malformed_rate == 0.0:
        return Generation(((e.key.encode(), encode_event(e)) for e in events), stats)
    return Generation(_with_malformed(events, config, stats), stats)


def _with_malformed(
    events: Iterator[Event], config: PaymentsConfig, stats: GenerationStats
) -> Iterator[KeyedRecord]:
    rng = random.Random(f"{config.seed}/malformed")
    factory = MalformedFactory(rng)
    rate, counts = config.malformed_rate, stats.malformed_by_kind
    template = b""
    for event in events:
        value = encode_event(event)
        yield event.key.encode(), value
        if event.type == "pix.charge.created":
            template = value
        if rng.random() < rate:  # the first event is always a created one: template is set
            kind, record = factory.make(template)
            counts[kind] = counts.get(kind, 0) + 1
            yield record
