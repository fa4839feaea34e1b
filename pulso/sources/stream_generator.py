"""Live PIX traffic at a steady rate, with labelled anomalies mixed in.

The same stores, cities, tickets and outcomes as :mod:`pulso.sources.payments_generator`,
but driven by a clock instead of a calendar: charge ``i`` is due at ``t0 + i / rate`` and
its event time is that instant. With the wall clock (:class:`WallClock`) the generator
sleeps until charges fall due, so event times are "now"; with a :class:`SimulatedClock`
nothing sleeps and one seed gives the same events on every run (tests, ``pulso fraud
evaluate``). ``rate=None`` sends as fast as it can, stamping events with the wall clock.

A share ``anomaly_rate`` of the charges belongs to anomalies (:data:`ANOMALY_KINDS`), each
kind taking about the same number of charges. An anomaly is an incident of one or more
charges scheduled from the moment it starts; its charges take the place of normal ones when
they fall due, so the total rate stays the one asked. Every anomalous ``ChargeCreated``
carries its kind in ``label`` (a charge that only sets the scene, such as the first of a
duplicated pair, carries none). ``night_high_value`` happens only at local night
(00:00–05:00 America/Sao_Paulo) and ``amount_spike`` only outside it, so a live run shows
the kinds its hours allow.

Terminal events (confirmed, failed, expired) follow each charge at its drawn delay; those
still pending when the run ends are sent at the end with their (future) event times.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from pulso.domain.events import Event, new_event
from pulso.domain.fraud import (
    AMOUNT_SPIKE,
    ANOMALY_KINDS,
    CARD_TESTING,
    DUPLICATE_CHARGE,
    FAIL_THEN_SUCCESS,
    IMPOSSIBLE_TRAVEL,
    NIGHT_HIGH_VALUE,
    VELOCITY,
)
from pulso.domain.ids import uuid7
from pulso.domain.payments import ChargeCreated
from pulso.domain.validators import complete_cnpj
from pulso.sources import GeneratorConfigError
from pulso.sources.geo import CITIES
from pulso.sources.payments_generator import (
    CONFIRMED,
    FAILED,
    LOCAL_TZ,
    MAX_STORES,
    Amounts,
    ChargeCounts,
    Pending,
    Store,
    StoreTables,
    draw_outcome,
    draw_quantile,
    terminal_maker,
)

SOURCE: Final = "generator.stream"
MAX_RATE: Final = 1_000_000.0
NIGHT_HOURS: Final = range(0, 5)
_CNPJ_PAYER_SHARE: Final = 0.05
_REGULAR_SHARE: Final = 0.03  # a normal charge by one of the store's recent payers
_REGULARS_PER_STORE: Final = 16
_PAYER_STRIDE: Final = 1_000_003  # a prime dividing neither 999,999,999 nor 99,999,999
_PACE_S: Final = 0.05  # the paced loop wakes up this often at most
_CHUNK_MAX: Final = 2_000

# Charges per incident, on average: kinds are drawn in inverse proportion, so each kind
# gets about the same share of the anomalous charges.
_MEAN_SIZE: Final[dict[str, float]] = {
    CARD_TESTING: 18.0,
    VELOCITY: 5.5,
    AMOUNT_SPIKE: 1.0,
    IMPOSSIBLE_TRAVEL: 1.0,
    NIGHT_HIGH_VALUE: 1.0,
    FAIL_THEN_SUCCESS: 5.0,
    DUPLICATE_CHARGE: 1.0,
}


# ---------------------------------------------------------------------------- clocks


class Clock(Protocol):
    """Seconds since the epoch, and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class SimulatedClock:
    """A clock that only moves when slept: no waiting, the same times on every run."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise GeneratorConfigError("start", "the simulated clock needs a time zone")
        self._now = start.timestamp()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += max(seconds, 0.0)


class Pacer:
    """Hands out the due times of successive charges at ``rate`` per second of ``clock``.

    Each call returns the charges due now (at most a chunk), sleeping first until at least
    one is due; so a slow consumer gets bigger chunks and catches up. ``rate=None``: no
    pacing, every charge stamped with the clock's current time.
    """

    def __init__(self, rate: float | None, clock: Clock, *, chunk_max: int = _CHUNK_MAX) -> None:
        self._rate = rate
        self._clock = clock
        self._t0 = clock.now()
        self._issued = 0
        self._chunk_max = chunk_max

    @property
    def start(self) -> float:
        return self._t0

    @property
    def issued(self) -> int:
        return self._issued

    def lag_s(self) -> float:
        """How far behind schedule the clock is now (0 when on time or unpaced)."""
        if self._rate is None:
            return 0.0
        return max(0.0, self._clock.now() - self.due(self._issued))

    def due(self, i: int) -> float:
        assert self._rate is not None
        return self._t0 + i / self._rate

    def next_times(self, limit: int) -> list[float]:
        """Due times (epoch seconds) of the next charges, at most ``limit`` of them."""
        n = min(limit, self._chunk_max)
        if n <= 0:
            return []
        if self._rate is None:
            now = self._clock.now()
            self._issued += n
            return [now] * n
        now = self._clock.now()
        due_now = int((now - self._t0) * self._rate + 1e-6) + 1 - self._issued
        if due_now <= 0:
            wake = self.due(self._issued + max(1, int(self._rate * _PACE_S)) - 1)
            self._clock.sleep(wake - now)
            now = self._clock.now()
            due_now = max(1, int((now - self._t0) * self._rate + 1e-6) + 1 - self._issued)
        n = min(n, due_now)
        first = self._issued
        self._issued += n
        return [self.due(first + k) for k in range(n)]


# ---------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What to send: ``rate`` charges per second (None: as fast as possible) until
    ``duration_s`` seconds of the clock have passed or ``payments`` charges were made."""

    rate: float | None = 1000.0
    duration_s: float | None = 60.0
    payments: int | None = None
    anomaly_rate: float = 0.005
    n_stores: int = 200
    n_cities: int = 33
    seed: int = 42
    expiry_s: int = 600

    def __post_init__(self) -> None:
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise GeneratorConfigError("rate", f"must be 0 < rate <= {MAX_RATE:,.0f}/s")
        if self.duration_s is None and self.payments is None:
            raise GeneratorConfigError("duration", "give a duration or a number of payments")
        if self.duration_s is not None and not self.duration_s > 0:
            raise GeneratorConfigError("duration", f"must be positive, got {self.duration_s}")
        if self.payments is not None and self.payments < 1:
            raise GeneratorConfigError("payments", f"must be at least 1, got {self.payments}")
        if not 0.0 <= self.anomaly_rate <= 0.5:
            raise GeneratorConfigError(
                "anomaly-rate", f"must be 0..50% of the payments, got {self.anomaly_rate:.2%}"
            )
        if not 1 <= self.n_stores <= MAX_STORES:
            raise GeneratorConfigError("stores", f"must be 1..{MAX_STORES}, got {self.n_stores}")
        if not 1 <= self.n_cities <= len(CITIES):
            raise GeneratorConfigError("cities", f"must be 1..{len(CITIES)}, got {self.n_cities}")


@dataclass(slots=True)
class StreamStats(ChargeCounts):
    """Exact counts of what the stream generator yielded so far."""

    anomalous_by_kind: dict[str, int] = field(default_factory=dict)
    incidents_by_kind: dict[str, int] = field(default_factory=dict)
    stores: int = 0
    cities: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    sending_s: float = 0.0  # clock time from the start to the last charge sent

    @property
    def achieved_rate(self) -> float:
        """Charges per second of the clock while sending."""
        return self.charges / self.sending_s if self.sending_s > 0 else 0.0

    @property
    def anomalous(self) -> int:
        return sum(self.anomalous_by_kind.values())


# ---------------------------------------------------------------------------- simulation


@dataclass(slots=True)
class _Planned:
    """A charge an incident scheduled: where, how much, who, and how it ends."""

    store: int
    cents: int
    payer: str
    label: str | None
    outcome: tuple[int, int] | None = None  # (outcome, delay ms); None: the usual draw


class StreamSimulation:
    """Turns due times into charge events; one instance per run (it holds the random stream)."""

    def __init__(self, config: StreamConfig, stats: StreamStats) -> None:
        self._config = config
        self._stats = stats
        tables = StoreTables.build(config.n_stores, config.n_cities, config.seed)
        self._stores = tables.stores
        self._rng = random.Random(f"{config.seed}/stream")
        self._amounts = tables.amounts_cents
        self._tables = tables.hourly
        self._cum_weights: dict[tuple[int, int], list[float]] = {}
        self._local_hours: dict[int, tuple[int, int]] = {}  # UTC hour -> local (weekday, hour)
        self._amounts_brl = Amounts()
        self._regulars: list[list[str]] = [[] for _ in self._stores]
        self._terminals: list[Pending] = []
        self._planned: list[tuple[int, int, _Planned]] = []
        self._sequence = 0
        self._skip = 0  # normal charges still to leave out for anomalous ones sent early
        self._expiry = timedelta(seconds=config.expiry_s)
        self._by_city = _stores_by_city(self._stores)
        self._incident_share = _incident_probability(config.anomaly_rate)
        # Payers walk their number space with a stride coprime to its size: all distinct.
        self._payers_made = 0
        self._cpf_offset = self._rng.randrange(999_999_999)
        self._cnpj_offset = self._rng.randrange(99_999_999)
        self._terminal = terminal_maker(self._rng, stats, SOURCE, self._end_to_end_id)
        stats.stores = len(self._stores)
        stats.cities = tables.cities

    @property
    def stores(self) -> list[Store]:
        return self._stores

    @property
    def stats(self) -> StreamStats:
        return self._stats

    def charges(self, times_s: list[float], limit: int) -> Iterator[Event]:
        """A charge per due time (in order), each preceded by the terminals due before it,
        until ``limit`` charges were made in all.

        An anomaly's charges keep their own times (a burst stays a burst at a low rate):
        each is sent when it falls due and takes the place of the next normal charge."""
        rnd, stats = self._rng.random, self._stats
        for t in times_s:
            ms = int(t * 1000)
            while self._planned and self._planned[0][0] <= ms and stats.charges < limit:
                at_ms, _, planned = heapq.heappop(self._planned)
                yield from self._terminals_due(at_ms)
                yield self._created(at_ms, planned)
                self._skip += 1
            yield from self._terminals_due(ms)
            if self._skip:
                self._skip -= 1
                continue
            if stats.charges >= limit:
                return
            normal = self._normal(ms)
            if rnd() < self._incident_share:
                self._start_incident(ms)
            yield self._created(ms, normal)

    def _terminals_due(self, ms: int) -> Iterator[Event]:
        while self._terminals and self._terminals[0][0] <= ms:
            yield self._terminal(heapq.heappop(self._terminals))

    def drain(self) -> Iterator[Event]:
        """The terminals still pending, in time order (their event times may be in the future)."""
        while self._terminals:
            yield self._terminal(heapq.heappop(self._terminals))

    # ------------------------------------------------------------------ normal traffic

    def _normal(self, ms: int) -> _Planned:
        rng = self._rng
        i = self._pick_store(ms)
        cents = max(100, int(draw_quantile(self._amounts[i], rng.random())))
        regulars = self._regulars[i]
        if regulars and rng.random() < _REGULAR_SHARE:
            payer = regulars[int(rng.random() * len(regulars))]
        else:
            payer = self._new_payer()
            regulars.append(payer)
            if len(regulars) > _REGULARS_PER_STORE:
                regulars.pop(0)
        return _Planned(i, cents, payer, None)

    def _pick_store(self, ms: int) -> int:
        key = self._local_hours.get(ms // 3_600_000)
        if key is None:
            local = datetime.fromtimestamp(ms // 3_600_000 * 3600, LOCAL_TZ)
            key = self._local_hours[ms // 3_600_000] = (local.weekday(), local.hour)
        cum = self._cum_weights.get(key)
        if cum is None:
            weights = [t[key[0]][key[1]] for t in self._tables]
            if sum(weights) <= 0:
                weights = [1.0] * len(weights)  # everyone closed: spread evenly
            cum = self._cum_weights[key] = _cumulative(weights)
        return bisect.bisect_right(cum, self._rng.random() * cum[-1])

    def _new_payer(self) -> str:
        """A payer never seen before in this run: a random draw would repeat payers (a
        birthday collision every ~10⁵ payments) and invent impossible trips."""
        self._payers_made += 1
        n = self._payers_made * _PAYER_STRIDE
        if self._rng.random() < _CNPJ_PAYER_SHARE:
            return complete_cnpj(f"{(self._cnpj_offset + n) % 99_999_999 + 1:08d}0001")
        first_nine = (self._cpf_offset + n) % 999_999_999 + 1
        if first_nine % 111_111_111 == 0:  # 111.111.111-11 and the like are never issued
            first_nine = 123_456_789 if first_nine != 123_456_789 else 987_654_321
        return fast_cpf(first_nine)

    # ------------------------------------------------------------------ anomalies

    def _start_incident(self, ms: int) -> None:
        night = _local_hour(ms) in NIGHT_HOURS
        kinds = [k for k in ANOMALY_KINDS if k != (AMOUNT_SPIKE if night else NIGHT_HIGH_VALUE)]
        weights = [1.0 / _MEAN_SIZE[k] for k in kinds]
        kind = self._rng.choices(kinds, weights=weights)[0]
        plan = _INCIDENTS[kind](self, ms)
        if not plan:
            return
        self._stats.incidents_by_kind[kind] = self._stats.incidents_by_kind.get(kind, 0) + 1
        for at_ms, planned in plan:
            self._sequence += 1
            heapq.heappush(self._planned, (at_ms, self._sequence, planned))

    def _normal_cents(self, store: int) -> int:
        return max(100, int(draw_quantile(self._amounts[store], self._rng.random())))

    def _card_testing(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        store = rng.randrange(len(self._stores))
        plan, at = [], ms
        for _ in range(rng.randint(12, 24)):
            at += int(rng.uniform(0.8, 4.0) * 1000)
            fails = rng.random() < 0.7  # most stolen card numbers are refused
            outcome = (FAILED, rng.randint(1000, 5000)) if fails else None
            cents = rng.randint(10, 199)
            plan.append((at, _Planned(store, cents, self._new_payer(), CARD_TESTING, outcome)))
        return plan

    def _velocity(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        city_stores = max(self._by_city.values(), key=len)
        crowded = [s for s in self._by_city.values() if len(s) >= 5]
        if crowded:
            city_stores = rng.choice(crowded)
        count = min(len(city_stores), rng.randint(4, 7))
        stores = rng.sample(city_stores, count)
        payer, plan, at = self._new_payer(), [], ms
        for store in stores:
            at += int(rng.uniform(20, 80) * 1000)
            plan.append((at, _Planned(store, self._normal_cents(store), payer, VELOCITY)))
        return plan

    def _amount_spike(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        store = self._pick_store(ms)  # an open store: "far above" needs a baseline to be above
        kind = self._stores[store].store_type
        brl = kind.amount_median_brl * math.exp(kind.amount_sigma * rng.uniform(6.0, 7.5))
        cents = min(int(brl * 100), 99_999_999)
        return [(ms + 1000, _Planned(store, cents, self._new_payer(), AMOUNT_SPIKE))]

    def _impossible_travel(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        first = rng.randrange(len(self._stores))
        far = [i for i, s in enumerate(self._stores) if _store_km(self._stores[first], s) >= 800]
        if not far:
            return []
        second = rng.choice(far)
        km = _store_km(self._stores[first], self._stores[second])
        fastest_s = km / 2000 * 3600  # twice a plane's speed at most, to stay impossible
        gap_s = rng.uniform(60, max(90.0, min(fastest_s, 3600)))
        payer = self._new_payer()
        return [
            (ms + 1000, _Planned(first, self._normal_cents(first), payer, None)),
            (
                ms + int(gap_s * 1000),
                _Planned(second, self._normal_cents(second), payer, IMPOSSIBLE_TRAVEL),
            ),
        ]

    def _night_high_value(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        store = rng.randrange(len(self._stores))
        cents = rng.randint(120_000, 800_000)
        return [(ms + 1000, _Planned(store, cents, self._new_payer(), NIGHT_HIGH_VALUE))]

    def _fail_then_success(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        store = rng.randrange(len(self._stores))
        payer, cents, plan, at = self._new_payer(), self._normal_cents(store), [], ms
        for _ in range(rng.randint(3, 5)):
            at += int(rng.uniform(15, 60) * 1000)
            outcome = (FAILED, rng.randint(2000, 8000))
            plan.append((at, _Planned(store, cents, payer, FAIL_THEN_SUCCESS, outcome)))
        at += int(rng.uniform(20, 60) * 1000)
        success = (CONFIRMED, rng.randint(3000, 20_000))
        plan.append((at, _Planned(store, cents, payer, FAIL_THEN_SUCCESS, success)))
        return plan

    def _duplicate(self, ms: int) -> list[tuple[int, _Planned]]:
        rng = self._rng
        store = rng.randrange(len(self._stores))
        payer, cents = self._new_payer(), self._normal_cents(store)
        paid = (CONFIRMED, rng.randint(3000, 15_000))
        gap_ms = int(rng.uniform(20, 150) * 1000)
        return [
            (ms + 1000, _Planned(store, cents, payer, None, paid)),
            (ms + gap_ms, _Planned(store, cents, payer, DUPLICATE_CHARGE, paid)),
        ]

    # ------------------------------------------------------------------ events

    def _created(self, ms: int, planned: _Planned) -> Event:
        rng, stats = self._rng, self._stats
        store = self._stores[planned.store]
        txid = f"{rng.getrandbits(100):025x}"
        charge_id = "ch_" + txid
        created_at = datetime.fromtimestamp(ms / 1000, UTC)
        amount = self._amounts_brl[planned.cents]
        payload = ChargeCreated(
            charge_id=charge_id,
            txid=txid,
            store_id=store.store_id,
            city=store.city,
            uf=store.uf,
            amount=amount,
            created_at=created_at,
            expires_at=created_at + self._expiry,
            description=f"PDV {1 + int(rng.random() * store.tills):02d}",
            payer_document=planned.payer,
            label=planned.label,
        )
        outcome, delay_ms = planned.outcome or draw_outcome(rng.random(), self._expiry_ms)
        self._sequence += 1
        heapq.heappush(self._terminals, (ms + delay_ms, self._sequence, outcome, charge_id, amount))
        stats.charges += 1
        if planned.label is not None:
            counts = stats.anomalous_by_kind
            counts[planned.label] = counts.get(planned.label, 0) + 1
        if stats.first_at is None:
            stats.first_at = created_at
        stats.last_at = created_at
        event_id = uuid7(ms, rng.getrandbits(80))
        return new_event(
            payload, source=SOURCE, key=charge_id, occurred_at=created_at, event_id=event_id
        )

    @property
    def _expiry_ms(self) -> int:
        return self._config.expiry_s * 1000

    def _end_to_end_id(self, _ms: int, at: datetime) -> str:
        return f"E00000000{at:%Y%m%d%H%M}{self._rng.getrandbits(44):011x}"


_INCIDENTS: Final[dict[str, Callable[[StreamSimulation, int], list[tuple[int, _Planned]]]]] = {
    CARD_TESTING: StreamSimulation._card_testing,
    VELOCITY: StreamSimulation._velocity,
    AMOUNT_SPIKE: StreamSimulation._amount_spike,
    IMPOSSIBLE_TRAVEL: StreamSimulation._impossible_travel,
    NIGHT_HIGH_VALUE: StreamSimulation._night_high_value,
    FAIL_THEN_SUCCESS: StreamSimulation._fail_then_success,
    DUPLICATE_CHARGE: StreamSimulation._duplicate,
}


def _chunk_table(weights: tuple[int, int, int]) -> list[int]:
    """Weighted digit sums of every 3-digit group, for :func:`fast_cpf`."""
    return [
        (n // 100) * weights[0] + (n // 10 % 10) * weights[1] + (n % 10) * weights[2]
        for n in range(1000)
    ]


_CPF_FIRST: Final = [_chunk_table((10, 9, 8)), _chunk_table((7, 6, 5)), _chunk_table((4, 3, 2))]
_CPF_SECOND: Final = [_chunk_table((11, 10, 9)), _chunk_table((8, 7, 6)), _chunk_table((5, 4, 3))]


def fast_cpf(first_nine: int) -> str:
    """The valid CPF whose first nine digits are ``first_nine`` (what ``complete_cpf`` gives,
    from three table look-ups instead of a loop over the digits: one per charge here)."""
    a, b, c = first_nine // 1_000_000, first_nine // 1000 % 1000, first_nine % 1000
    rest = (_CPF_FIRST[0][a] + _CPF_FIRST[1][b] + _CPF_FIRST[2][c]) % 11
    first = 0 if rest < 2 else 11 - rest
    rest = (_CPF_SECOND[0][a] + _CPF_SECOND[1][b] + _CPF_SECOND[2][c] + 2 * first) % 11
    second = 0 if rest < 2 else 11 - rest
    return f"{first_nine:09d}{first}{second}"


def _incident_probability(anomaly_rate: float) -> float:
    """Per normal charge, the chance to start an incident so that ``anomaly_rate`` of all
    charges are anomalous (kinds weighted 1/size: the mean size is the harmonic mean)."""
    if anomaly_rate <= 0:
        return 0.0
    mean_size = len(_MEAN_SIZE) / sum(1.0 / s for s in _MEAN_SIZE.values())
    return anomaly_rate / ((1.0 - anomaly_rate) * mean_size)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _local_hour(ms: int) -> int:
    return datetime.fromtimestamp(ms / 1000, LOCAL_TZ).hour


_CITY_COORDS: Final = {c.ibge_code: (c.lat, c.lon) for c in CITIES}


def _store_km(a: Store, b: Store) -> float:
    from pulso.fraud.detector import distance_km

    (lat1, lon1), (lat2, lon2) = _CITY_COORDS[a.ibge_code], _CITY_COORDS[b.ibge_code]
    return distance_km(lat1, lon1, lat2, lon2)


def _stores_by_city(stores: list[Store]) -> dict[int, list[int]]:
    by_city: dict[int, list[int]] = {}
    for i, s in enumerate(stores):
        by_city.setdefault(s.ibge_code, []).append(i)
    return by_city


# ---------------------------------------------------------------------------- driver


class StreamGeneration(Iterator[Event]):
    """The stream's events, as an iterator (or in paced chunks: ``chunks``), with exact
    running counts in ``stats``."""

    def __init__(self, chunks: Iterator[list[Event]], stats: StreamStats, pacer: Pacer) -> None:
        self.chunks = chunks
        self._events = itertools.chain.from_iterable(chunks)
        self.stats = stats
        self.pacer = pacer

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __next__(self) -> Event:
        return next(self._events)


def generate_stream(config: StreamConfig, clock: Clock | None = None) -> StreamGeneration:
    """The run's events in time order, paced by ``clock`` (the wall clock by default)."""
    clock = clock or WallClock()
    stats = StreamStats()
    simulation = StreamSimulation(config, stats)
    pacer = Pacer(config.rate, clock)
    return StreamGeneration(_run(config, simulation, pacer, clock), stats, pacer)


def _run(
    config: StreamConfig, simulation: StreamSimulation, pacer: Pacer, clock: Clock
) -> Iterator[list[Event]]:
    end_s = pacer.start + config.duration_s if config.duration_s is not None else math.inf
    total = config.payments if config.payments is not None else 1 << 62
    if config.rate is not None and config.duration_s is not None:
        total = min(total, math.ceil(config.duration_s * config.rate))  # slots before the end
    stats = simulation.stats
    while stats.charges < total and pacer.issued < total:
        if config.rate is None and clock.now() >= end_s:
            break
        times = pacer.next_times(total - pacer.issued)
        yield list(simulation.charges(times, total))
    simulation.stats.sending_s = clock.now() - pacer.start
    yield list(simulation.drain())


# ---------------------------------------------------------------------------- parsing

_UNITS_S: Final[dict[str, float]] = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}


def parse_rate(text: str) -> float | None:
    """``5000/s``, ``5000``, ``5k/s``, ``300/min`` or ``max`` (None: as fast as possible)."""
    cleaned = text.strip().lower().replace("_", "")
    if cleaned == "max":
        return None
    number, _, unit = cleaned.partition("/")
    per_s = _UNITS_S.get(unit.strip())
    value = _number(number, "rate", text, "5000/s, 300/min or max")
    if per_s is None or value <= 0:
        raise GeneratorConfigError("rate", f"expected e.g. 5000/s, 300/min or max, got {text!r}")
    rate = value / per_s
    if rate > MAX_RATE:
        raise GeneratorConfigError("rate", f"at most {MAX_RATE:,.0f}/s, got {text!r}")
    return rate


def parse_duration_s(text: str) -> float:
    """``60s``, ``90``, ``5m``/``5min``, ``1h`` -> seconds."""
    cleaned = text.strip().lower()
    digits = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    per = _UNITS_S.get(cleaned[len(digits) :].strip())
    value = _number(digits, "duration", text, "60s, 5m or 1h")
    if per is None or value <= 0:
        raise GeneratorConfigError("duration", f"expected e.g. 60s, 5m or 1h, got {text!r}")
    return value * per


def parse_share(text: str, option: str = "anomaly-rate") -> float:
    """``0.5%`` or ``0.005`` -> 0.005."""
    cleaned = text.strip()
    percent = cleaned.endswith("%")
    value = _number(cleaned.removesuffix("%"), option, text, "0.5% or 0.005")
    share = value / 100 if percent else value
    if not 0.0 <= share <= 1.0:
        raise GeneratorConfigError(option, f"must be between 0 and 100%, got {text!r}")
    return share


def _number(text: str, option: str, original: str, example: str) -> float:
    cleaned = text.strip().replace(",", ".")
    multiplier = 1.0
    if cleaned.endswith("k"):
        cleaned, multiplier = cleaned[:-1], 1000.0
    try:
        value = float(cleaned) * multiplier
    except ValueError:
        raise GeneratorConfigError(option, f"expected e.g. {example}, got {original!r}") from None
    if not math.isfinite(value):
        raise GeneratorConfigError(option, f"expected e.g. {example}, got {original!r}")
    return value
