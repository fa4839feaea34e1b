"""The detector: rules with reasons plus the learned store profile, one risk score per charge.

Everything is a function of event times, never of the wall clock, so replaying the same
events gives the same scores. ``Detector.observe`` takes the payment events in order and
returns an :class:`Assessment` for each ``pix.charge.created``. A failure counts against
its payer; confirmations and expiries change nothing.

A rule that sees a pattern spread over several charges (a card-testing burst, a payer's
tour of stores, failures before a success) also names the earlier charges of the pattern
in ``RuleHit.covered``: they are flagged at the moment the pattern becomes visible.

State (checkpointed with ``snapshot``/``restore``) is per store (profile, recent small
charges) and per payer (recent charges, recent failures), keyed by the payer's keyed hash.
Payers are bounded (``max_payers``): the least recently seen are forgotten first, and a payer
quiet for longer than every window is dropped. Which payer a failed charge belongs to comes from
the payers' recent charges (an index derived from them, rebuilt on restore, never saved).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from pulso.domain.events import Event
from pulso.domain.fraud import (
    AMOUNT_SPIKE,
    CARD_TESTING,
    DUPLICATE_CHARGE,
    FAIL_THEN_SUCCESS,
    IMPOSSIBLE_TRAVEL,
    NIGHT_HIGH_VALUE,
    VELOCITY,
)
from pulso.domain.money import format_brl
from pulso.domain.payments import ChargeCreated, ChargeFailed
from pulso.domain.ptbr import format_count, format_decimal, format_duration_s
from pulso.fraud.model import StoreProfile, learned_score
from pulso.fraud.thresholds import FraudThresholds
from pulso.sources.geo import CITIES

LOCAL_TZ: Final = ZoneInfo("America/Sao_Paulo")
SNAPSHOT_VERSION: Final = 2
_HOUR_MS: Final = 3_600_000
_MAX_RECENT: Final = 32  # charges kept per payer

RULE_WEIGHTS: Final[dict[str, float]] = {
    CARD_TESTING: 0.9,
    VELOCITY: 0.85,
    AMOUNT_SPIKE: 0.8,
    IMPOSSIBLE_TRAVEL: 0.9,
    NIGHT_HIGH_VALUE: 0.5,  # alone it does not alert; with an unusual hour or amount it does
    FAIL_THEN_SUCCESS: 0.85,
    DUPLICATE_CHARGE: 0.8,
}
"""How strongly each rule's hit alone raises the risk (0..1)."""

RULE_PRIORITY: Final[tuple[str, ...]] = (
    DUPLICATE_CHARGE,
    FAIL_THEN_SUCCESS,
    CARD_TESTING,
    IMPOSSIBLE_TRAVEL,
    VELOCITY,
    NIGHT_HIGH_VALUE,
    AMOUNT_SPIKE,
)
"""When several rules hit one charge, the most specific names it (a night charge is also big)."""

_COORDS: Final[dict[str, tuple[float, float]]] = {
    f"{c.name}/{c.uf}": (c.lat, c.lon) for c in CITIES
}


class RuleHit(msgspec.Struct, frozen=True):
    """One rule that fired on a charge, why (pt-BR), and earlier charges of the same pattern."""

    rule: str
    reason: str
    covered: tuple[str, ...] = ()

    @property
    def weight(self) -> float:
        return RULE_WEIGHTS[self.rule]


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one charge."""

    charge_id: str
    store_id: str
    payer_hash: str | None
    created_at: datetime
    amount: Decimal
    risk: float
    learned: float
    hits: tuple[RuleHit, ...]
    alert: bool

    @property
    def kind(self) -> str | None:
        """The most specific rule that hit, or None."""
        fired = {h.rule for h in self.hits}
        return next((r for r in RULE_PRIORITY if r in fired), None)

    @property
    def reasons(self) -> list[str]:
        return [h.reason for h in self.hits]

    @property
    def covered(self) -> tuple[str, ...]:
        return tuple(c for h in self.hits for c in h.covered)


def combine(learned: float, hits: tuple[RuleHit, ...], model_weight: float) -> float:
    """Risk in 0..1: each rule and the learned score remove a share of what is left of 'safe'."""
    safe = 1.0 - model_weight * learned
    for hit in hits:
        safe *= 1.0 - hit.weight
    return 1.0 - safe


class _Store:
    __slots__ = ("profile", "small")

    def __init__(self, profile: StoreProfile, small: list[list[Any]]) -> None:
        self.profile = profile
        self.small = small  # [created_ms, charge_id, flagged] of recent small charges


class _Payer:
    __slots__ = ("fails", "recent")

    def __init__(self, recent: list[list[Any]], fails: list[list[Any]]) -> None:
        # recent: [created_ms, store_id, "city/UF", amount_cents (-1: refused), charge_id, flagged]
        self.recent = recent
        self.fails = fails  # [failed_ms, charge_id, flagged]


class Detector:
    """Scores PIX charges as their events arrive; ``payer_hash`` turns a document into a key."""

    def __init__(
        self, thresholds: FraudThresholds, payer_hash: Callable[[str | None], str | None]
    ) -> None:
        self.thresholds = thresholds
        self._payer_hash = payer_hash
        self._stores: dict[str, _Store] = {}
        self._payers: dict[str, _Payer] = {}
        self._owner: dict[str, str] = {}  # charge_id -> payer_hash, for every recent charge
        self._local_hours: dict[int, int] = {}
        t = thresholds
        self._payer_window_ms = 1000 * max(t.velocity_window_s, t.duplicate_window_s)
        self._payer_window_ms = max(self._payer_window_ms, 1000 * t.travel_window_s)
        self._payer_horizon_ms = max(self._payer_window_ms, 1000 * t.fail_window_s)
        # Snapshots re-encode only the payers touched since the last one (most are not).
        self._blobs: dict[str, msgspec.Raw] = {}
        self._touched: dict[str, None] = {}  # seen since the last snapshot, in order
        self._changed: set[str] = set()  # changed in place (a failure) since then
        self._small_cents = int(t.card_testing_max_amount * 100)
        self._night_cents = int(t.night_min_amount * 100)
        self.forgotten_payers = 0

    # ------------------------------------------------------------------ events

    def observe(self, event: Event) -> Assessment | None:
        data = event.data
        if isinstance(data, ChargeCreated):
            return self.assess(data)
        if isinstance(data, ChargeFailed):
            self._failed(data.charge_id, _ms(data.failed_at))
        return None

    def assess(self, charge: ChargeCreated) -> Assessment:
        now_ms = _ms(charge.created_at)
        cents = int(charge.amount * 100)
        store = self._store(charge.store_id)
        hour = self._local_hour(now_ms)
        log_amount = math.log(max(cents, 1) / 100)
        hits: list[RuleHit] = []
        if cents < self._small_cents:
            self._card_testing(charge, store, now_ms, hits)
        learned = self._profile_rules(charge, store.profile, log_amount, hour, hits)
        if hour_in_night(hour, self.thresholds) and cents >= self._night_cents:
            hits.append(RuleHit(NIGHT_HIGH_VALUE, _night_reason(charge, now_ms)))
        payer_hash = self._payer_hash(charge.payer_document)
        if payer_hash is not None:
            self._payer_rules(charge, payer_hash, now_ms, cents, hits)
        if not hits:
            store.profile.learn(log_amount, hour)  # suspicious charges do not teach the profile
        found = tuple(hits)
        risk = combine(learned, found, self.thresholds.model_weight)
        return Assessment(
            charge_id=charge.charge_id,
            store_id=charge.store_id,
            payer_hash=payer_hash,
            created_at=charge.created_at,
            amount=charge.amount,
            risk=risk,
            learned=learned,
            hits=found,
            alert=risk >= self.thresholds.alert_score,
        )

    # ------------------------------------------------------------------ store rules

    def _store(self, store_id: str) -> _Store:
        store = self._stores.get(store_id)
        if store is None:
            store = self._stores[store_id] = _Store(StoreProfile(), [])
        return store

    def _card_testing(
        self, charge: ChargeCreated, store: _Store, now_ms: int, hits: list[RuleHit]
    ) -> None:
        t = self.thresholds
        since = now_ms - 1000 * t.card_testing_window_s
        small = [s for s in store.small if s[0] > since]
        small.append([now_ms, charge.charge_id, False])
        store.small = small
        if len(small) < t.card_testing_count:
            return
        covered = tuple(s[1] for s in small[:-1] if not s[2])
        for s in small:
            s[2] = True
        reason = (
            f"{format_count(len(small))} cobranças abaixo de "
            f"{format_brl(t.card_testing_max_amount)} em {t.card_testing_window_s} s "
            f"na loja {charge.store_id}"
        )
        hits.append(RuleHit(CARD_TESTING, reason, covered))

    def _profile_rules(
        self,
        charge: ChargeCreated,
        profile: StoreProfile,
        log_amount: float,
        hour: int,
        hits: list[RuleHit],
    ) -> float:
        if profile.n < self.thresholds.min_history:
            return 0.0
        z = profile.amount_z(log_amount)
        if z >= self.thresholds.spike_z:
            typical = profile.typical_amount()
            reason = (
                f"{format_brl(charge.amount)} é {format_decimal(math.exp(log_amount) / typical)}× "
                f"o valor típico da loja {charge.store_id} "
                f"({format_brl(Decimal(round(typical, 2)))})"
            )
            hits.append(RuleHit(AMOUNT_SPIKE, reason))
        return learned_score(z, profile.hour_rarity(hour))

    def _local_hour(self, ms: int) -> int:
        hour_index = ms // _HOUR_MS
        hour = self._local_hours.get(hour_index)
        if hour is None:
            local = datetime.fromtimestamp(hour_index * 3600, LOCAL_TZ)
            hour = self._local_hours[hour_index] = local.hour
            if len(self._local_hours) > 10_000:
                self._local_hours.clear()
        return hour

    # ------------------------------------------------------------------ payer rules

    def _payer_rules(
        self, charge: ChargeCreated, payer_hash: str, now_ms: int, cents: int, hits: list[RuleHit]
    ) -> None:
        payer = self._payer(payer_hash, now_ms)
        since = now_ms - self._payer_window_ms
        recent = [r for r in payer.recent if r[0] > since]
        if len(recent) < len(payer.recent):
            self._disown(r for r in payer.recent if r[0] <= since)
        city = f"{charge.city}/{charge.uf}"
        if recent:
            self._duplicate(charge, recent, now_ms, cents, hits)
            self._travel(charge, recent[-1], city, now_ms, hits)
            self._velocity(charge, recent, now_ms, hits)
        if payer.fails:
            self._fail_then_success(payer, now_ms, hits)
        recent.append([now_ms, charge.store_id, city, cents, charge.charge_id, False])
        self._owner[charge.charge_id] = payer_hash
        if len(recent) > _MAX_RECENT:
            self._disown(recent[:-_MAX_RECENT])
            recent = recent[-_MAX_RECENT:]
        payer.recent = recent

    def _payer(self, payer_hash: str, now_ms: int) -> _Payer:
        payers = self._payers
        payer = payers.pop(payer_hash, None)  # re-inserted: the dict keeps recency order
        if payer is None:
            payer = _Payer([], [])
        payers[payer_hash] = payer
        self._touched.pop(payer_hash, None)
        self._touched[payer_hash] = None
        if len(payers) > self.thresholds.max_payers:
            self._forget(next(iter(payers)))
            self.forgotten_payers += 1
        horizon_ms = now_ms - self._payer_horizon_ms
        while True:  # payers quiet for longer than any window are of no use: drop them
            oldest = next(iter(payers))
            entry = payers[oldest]
            if oldest == payer_hash or (entry.recent and entry.recent[-1][0] > horizon_ms):
                break
            if entry.fails and entry.fails[-1][0] > horizon_ms:
                break
            self._forget(oldest)
        return payer

    def _forget(self, payer_hash: str) -> None:
        self._disown(self._payers.pop(payer_hash).recent)
        self._blobs.pop(payer_hash, None)
        self._touched.pop(payer_hash, None)
        self._changed.discard(payer_hash)

    def _duplicate(
        self,
        charge: ChargeCreated,
        recent: list[list[Any]],
        now_ms: int,
        cents: int,
        hits: list[RuleHit],
    ) -> None:
        window_ms = 1000 * self.thresholds.duplicate_window_s
        for r in reversed(recent):  # either side of this charge: it may have arrived late
            if abs(now_ms - r[0]) < window_ms and r[1] == charge.store_id and r[3] == cents:
                ago = format_duration_s(abs(now_ms - r[0]) / 1000)
                reason = (
                    f"mesmo pagador, mesma loja ({charge.store_id}) e mesmo valor "
                    f"({format_brl(charge.amount)}) de uma cobrança de {ago} atrás"
                )
                hits.append(RuleHit(DUPLICATE_CHARGE, reason))
                return

    def _travel(
        self,
        charge: ChargeCreated,
        last: list[Any],
        city: str,
        now_ms: int,
        hits: list[RuleHit],
    ) -> None:
        t = self.thresholds
        # A charge may arrive after a later one (another partition): the gap is what counts.
        gap_ms = abs(now_ms - last[0])
        if last[2] == city or gap_ms > 1000 * t.travel_window_s:
            return
        here, there = _COORDS.get(city), _COORDS.get(last[2])
        if here is None or there is None:
            return
        km = distance_km(there[0], there[1], here[0], here[1])
        hours = max(gap_ms, 1000) / _HOUR_MS
        if km < t.travel_min_km or km / hours < t.travel_kmh:
            return
        first, then = (last[2], city) if now_ms >= last[0] else (city, last[2])
        reason = (
            f"pagador em {first} e {format_duration_s(gap_ms / 1000)} depois em "
            f"{then}: {format_count(round(km))} km, "
            f"{format_count(round(km / hours))} km/h"
        )
        hits.append(RuleHit(IMPOSSIBLE_TRAVEL, reason))

    def _velocity(
        self, charge: ChargeCreated, recent: list[list[Any]], now_ms: int, hits: list[RuleHit]
    ) -> None:
        t = self.thresholds
        window_ms = 1000 * t.velocity_window_s
        window = [r for r in recent if abs(now_ms - r[0]) < window_ms]
        if not window:
            return
        stores = {r[1] for r in window} | {charge.store_id}
        if len(stores) < t.velocity_stores:
            return
        covered = tuple(r[4] for r in window if not r[5])
        for r in window:
            r[5] = True
        times = [r[0] for r in window]  # not sorted if a charge arrived late
        span = format_duration_s((max(max(times), now_ms) - min(min(times), now_ms)) / 1000)
        reason = f"mesmo pagador em {len(stores)} lojas diferentes em {span}"
        hits.append(RuleHit(VELOCITY, reason, covered))

    def _fail_then_success(self, payer: _Payer, now_ms: int, hits: list[RuleHit]) -> None:
        t = self.thresholds
        since = now_ms - 1000 * t.fail_window_s
        payer.fails = fails = [f for f in payer.fails if f[0] > since]
        if len(fails) < t.fail_count:
            return
        covered = tuple(f[1] for f in fails if not f[2])
        for f in fails:
            f[2] = True
        span = format_duration_s((now_ms - fails[0][0]) / 1000)
        reason = (
            f"{format_count(len(fails))} cobranças recusadas do mesmo pagador em {span} "
            "antes desta nova tentativa"
        )
        hits.append(RuleHit(FAIL_THEN_SUCCESS, reason, covered))

    # ------------------------------------------------------------------ failures

    def _disown(self, entries: Iterable[list[Any]]) -> None:
        owner = self._owner
        for r in entries:
            owner.pop(r[4], None)

    def _failed(self, charge_id: str, failed_ms: int) -> None:
        """Count a refusal against the payer, if the charge is among the payer's recent ones
        and was created within the failure window."""
        payer_hash = self._owner.get(charge_id)
        if payer_hash is None:
            return
        payer = self._payers[payer_hash]
        since = failed_ms - 1000 * self.thresholds.fail_window_s
        for r in payer.recent:
            if r[4] == charge_id and r[0] > since:
                r[3] = -1  # a refused charge retried is not a duplicate: forget its amount
                payer.fails.append([failed_ms, charge_id, False])
                self._changed.add(payer_hash)
                return

    # ------------------------------------------------------------------ checkpoints

    def snapshot(self) -> bytes:
        """The whole state as msgpack bytes (deterministic for the same events)."""
        # ``_blobs`` mirrors ``_payers``, order included (it decides who is forgotten first):
        # a payer seen since the last snapshot moved to the end of both, in the same order.
        blobs, encode, payers = self._blobs, _ENCODER.encode, self._payers
        for payer_hash in self._changed.difference(self._touched):
            payer = payers[payer_hash]
            blobs[payer_hash] = msgspec.Raw(encode([payer.recent, payer.fails]))
        for payer_hash in self._touched:
            payer = payers[payer_hash]
            blobs.pop(payer_hash, None)
            blobs[payer_hash] = msgspec.Raw(encode([payer.recent, payer.fails]))
        self._touched.clear()
        self._changed.clear()
        state = _State(
            version=SNAPSHOT_VERSION,
            stores={k: [s.profile.dump(), s.small] for k, s in self._stores.items()},
            payers=blobs,
            forgotten_payers=self.forgotten_payers,
        )
        return encode(state)

    def restore(self, blob: bytes | None) -> None:
        """Back to the state ``snapshot`` returned; None is a fresh start."""
        self._stores, self._payers, self._owner = {}, {}, {}
        self._blobs, self._touched, self._changed = {}, {}, set()
        self.forgotten_payers = 0
        if blob is None:
            return
        state = _DECODER.decode(blob)
        if state.version != SNAPSHOT_VERSION:
            raise ValueError(f"fraud state version {state.version}, expected {SNAPSHOT_VERSION}")
        self._stores = {k: _Store(StoreProfile.load(v[0]), v[1]) for k, v in state.stores.items()}
        self._payers = {}
        for payer_hash, blob in state.payers.items():
            recent, fails = _PAYER_DECODER.decode(blob)
            self._payers[payer_hash] = _Payer(recent, fails)
            self._blobs[payer_hash] = msgspec.Raw(bytes(blob))
            for r in recent:
                self._owner[r[4]] = payer_hash
        self.forgotten_payers = state.forgotten_payers

    @property
    def sizes(self) -> dict[str, int]:
        return {
            "stores": len(self._stores),
            "payers": len(self._payers),
            "recent_charges": len(self._owner),
        }


class _State(msgspec.Struct, array_like=True):
    version: int
    stores: dict[str, list[Any]]
    payers: dict[str, msgspec.Raw]
    forgotten_payers: int


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_State)
_PAYER_DECODER: Final = msgspec.msgpack.Decoder(list[list[list[Any]]])


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def hour_in_night(hour: int, thresholds: FraudThresholds) -> bool:
    start, end = thresholds.night_start_h, thresholds.night_end_h
    return start <= hour < end if start <= end else hour >= start or hour < end


def _night_reason(charge: ChargeCreated, now_ms: int) -> str:
    local = datetime.fromtimestamp(now_ms / 1000, LOCAL_TZ)
    return f"{format_brl(charge.amount)} às {local:%H:%M} (madrugada) na loja {charge.store_id}"


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
