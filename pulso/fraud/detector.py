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
Between two full snapshots the pipeline saves ``snapshot_delta``s (what changed since the last
save, a few percent of the whole), which ``apply_delta`` replays on top of ``restore``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any, Final, Protocol
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
from pulso.fraud.model import MEMORY, MIN_SD, Z_CALM, Z_SPAN, StoreProfile
from pulso.fraud.thresholds import FraudThresholds
from pulso.sources.geo import CITIES

LOCAL_TZ: Final = ZoneInfo("America/Sao_Paulo")
SNAPSHOT_VERSION: Final = 2
_HOUR_MS: Final = 3_600_000
_TIMESTAMP: Final = datetime.timestamp
_log: Final = math.log
_sqrt: Final = math.sqrt
_MAX_RECENT: Final = 32  # charges kept per payer
_MIN_REMOVED_KEPT: Final = 100_000  # dropped payers listed for the next delta, at least

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


class _HasPayload(Protocol):
    """An :class:`Event`, or anything else with its payload in ``data``."""

    @property
    def data(self) -> Any: ...


class _Envelope:
    """What ``Detector.assess`` hands to ``Detector.score``: an event's payload, nothing else."""

    __slots__ = ("data",)

    def __init__(self, data: ChargeCreated) -> None:
        self.data = data


class _Store:
    __slots__ = ("profile", "small")

    def __init__(self, profile: StoreProfile, small: list[list[Any]]) -> None:
        self.profile = profile
        self.small = small  # [created_ms, charge_id, flagged] of recent small charges


# A payer's state is immutable tuples, replaced when it changes: they hold no references the
# garbage collector must follow (it stops tracking them), so the payer table, 100,000 payers
# by default, costs the collector nothing. They encode to the same msgpack as lists.
_Recent = tuple[int, str, str, int, str, bool]
"""A recent charge: created_ms, store_id, "city/UF", amount_cents (-1: refused), charge_id,
flagged."""
_Fail = tuple[int, str, bool]
"""A refusal: failed_ms, charge_id, flagged."""
_PayerState = tuple[tuple[_Recent, ...], tuple[_Fail, ...]]


class Detector:
    """Scores PIX charges as their events arrive; ``payer_hash`` turns a document into a key.

    ``observe`` takes one event and returns the verdict on every charge; ``score`` takes a
    whole batch and returns only the verdicts worth keeping (risk at or above a floor), which
    is what the pipeline needs and saves building an :class:`Assessment` per ordinary charge.
    Both run the same code, so they agree on every verdict and leave the same state.
    """

    def __init__(
        self, thresholds: FraudThresholds, payer_hash: Callable[[str | None], str | None]
    ) -> None:
        self.thresholds = thresholds
        self._payer_hash = payer_hash
        self._stores: dict[str, _Store] = {}
        # Recency order (the least recently seen first). An OrderedDict, not a dict: the cap
        # and the horizon look at the oldest payer on every charge, and a dict whose front
        # has been popped scans its holes to find it (that cost 20 µs a charge at the cap).
        self._payers: OrderedDict[str, _PayerState] = OrderedDict()
        self._owner: dict[str, str] = {}  # charge_id -> payer_hash, for every recent charge
        self._local_hours: dict[int, int] = {}
        t = thresholds
        self._payer_window_ms = 1000 * max(t.velocity_window_s, t.duplicate_window_s)
        self._payer_window_ms = max(self._payer_window_ms, 1000 * t.travel_window_s)
        self._payer_horizon_ms = max(self._payer_window_ms, 1000 * t.fail_window_s)
        # Snapshots re-encode only the payers seen since the last one (most are not). Those
        # are the last ``_dirty`` of ``_payers`` (each moved to the end when seen), and they
        # have no entry in ``_blobs``, which holds the encoded others in the same order.
        self._blobs: dict[str, msgspec.Raw] = {}
        self._dirty = 0
        self._changed: set[str] = set()  # changed in place (a failure) since then
        # For ``snapshot_delta``: stores scored and payers dropped since the last save.
        self._touched: set[str] = set()
        self._removed: list[str] = []
        self._delta_lost = False  # too much dropped to list (no saves): the next is a full
        self._max_removed = max(t.max_payers, _MIN_REMOVED_KEPT)
        self._small_cents = int(t.card_testing_max_amount * 100)
        self._night_cents = int(t.night_min_amount * 100)
        self._night_hours = tuple(hour_in_night(h, t) for h in range(24))
        self.forgotten_payers = 0

    # ------------------------------------------------------------------ events

    def observe(self, event: Event) -> Assessment | None:
        """The verdict on a ``pix.charge.created`` (None for the other events)."""
        found = self.score((event,), -1.0)  # every risk is >= 0: a charge is always kept
        return found[0] if found else None

    def assess(self, charge: ChargeCreated) -> Assessment:
        return self.score((_Envelope(charge),), -1.0)[0]

    def score(self, events: Iterable[_HasPayload], keep: float) -> list[Assessment]:
        """Observe ``events`` in the order given; the verdicts whose risk reaches ``keep``
        (alerts always, as long as ``keep`` is at most ``alert_score``).

        The detector's hot loop, one pass per batch (``observe`` is a batch of one).

        What it reads of ``self`` is taken once; times are epoch milliseconds and amounts
        integer centavos; the store profile's arithmetic is inline (``StoreProfile`` holds the
        reference, with the same operations in the same order, so the floats are the same to
        the bit); a payer seen for the first time (most of them) costs a few dictionary
        operations; the reasons are written only for the rules that hit; and an
        :class:`Assessment` is built only for a kept verdict.
        """
        t = self.thresholds
        stores, local_hours, payers, blobs = (
            self._stores,
            self._local_hours,
            self._payers,
            self._blobs,
        )
        owner, changed, payer_hash_of = self._owner, self._changed, self._payer_hash
        touched, removed = self._touched, self._removed
        min_history, spike_z, model_weight = t.min_history, t.spike_z, t.model_weight
        alert_score, max_payers, horizon = t.alert_score, t.max_payers, self._payer_horizon_ms
        small_cents, night_cents, night_hours = (
            self._small_cents,
            self._night_cents,
            self._night_hours,
        )
        dirty, forgotten = self._dirty, self.forgotten_payers
        kept: list[Assessment] = []
        hits: list[RuleHit] = []  # one list for the batch, emptied per charge
        for event in events:
            charge = event.data
            if not isinstance(charge, ChargeCreated):
                if isinstance(charge, ChargeFailed):
                    self._failed(charge.charge_id, int(_TIMESTAMP(charge.failed_at) * 1000))
                continue
            store_id = charge.store_id
            now_ms = int(_TIMESTAMP(charge.created_at) * 1000)
            cents = int(charge.amount * 100)
            store = stores.get(store_id)
            if store is None:
                store = stores[store_id] = _Store(StoreProfile(), [])
            touched.add(store_id)
            hour = local_hours.get(now_ms // _HOUR_MS)
            if hour is None:
                hour = self._local_hour(now_ms)
            log_amount = _log(cents / 100 if cents > 1 else 0.01)  # log(max(cents, 1) / 100)
            if hits:
                hits.clear()
            if cents < small_cents:
                self._card_testing(charge, store, now_ms, hits)
            profile = store.profile
            n = profile.n
            learned = 0.0
            if n >= min_history:  # amount_z, hour_rarity, learned_score; min/max as compares
                sd = _sqrt(profile.variance)
                z = (log_amount - profile.mean) / (sd if sd >= MIN_SD else MIN_SD)
                if z >= spike_z:
                    hits.append(RuleHit(AMOUNT_SPIKE, _spike_reason(charge, profile, log_amount)))
                rarity = 1.0 - 24.0 * ((profile.hours[hour] + 1) / (n + 24))
                rarity = rarity if rarity > 0.0 else 0.0
                rarity = rarity if rarity < 1.0 else 1.0
                amount_part = (z - Z_CALM) / Z_SPAN
                if amount_part <= 0.0:  # the common case: an ordinary amount adds nothing
                    learned = 1.0 - (1.0 - rarity)
                else:
                    amount_part = amount_part if amount_part < 1.0 else 1.0
                    learned = 1.0 - (1.0 - amount_part) * (1.0 - rarity)
            if cents >= night_cents and night_hours[hour]:
                hits.append(RuleHit(NIGHT_HIGH_VALUE, _night_reason(charge, now_ms)))
            document = charge.payer_document
            payer_hash = None if document is None else payer_hash_of(document)
            if payer_hash is not None:  # ------------------------------------ payer rules
                charge_id = charge.charge_id
                entry: _Recent = (
                    now_ms,
                    store_id,
                    f"{charge.city}/{charge.uf}",
                    cents,
                    charge_id,
                    False,
                )
                fresh: _PayerState = ((entry,), ())
                state = payers.setdefault(payer_hash, fresh)
                if state is fresh:
                    dirty += 1
                else:
                    payers.move_to_end(payer_hash)  # recency order
                    if blobs.pop(payer_hash, None) is not None:  # not seen since the snapshot
                        dirty += 1
                    payers[payer_hash] = self._known_payer(state, entry, hits)
                owner[charge_id] = payer_hash
                if len(payers) > max_payers:  # forget the least recently seen
                    oldest, (recent, _) = payers.popitem(last=False)
                    for r in recent:
                        owner.pop(r[4], None)
                    if blobs.pop(oldest, None) is None:
                        dirty -= 1
                    if changed:
                        changed.discard(oldest)
                    removed.append(oldest)
                    forgotten += 1
                horizon_ms = now_ms - horizon
                while True:  # payers quiet for longer than any window are of no use: drop them
                    oldest, (recent, fails) = next(iter(payers.items()))
                    if oldest == payer_hash or (recent and recent[-1][0] > horizon_ms):
                        break
                    if fails and fails[-1][0] > horizon_ms:
                        break
                    del payers[oldest]
                    for r in recent:
                        owner.pop(r[4], None)
                    if blobs.pop(oldest, None) is None:
                        dirty -= 1
                    changed.discard(oldest)
                    removed.append(oldest)
            safe = 1.0 - model_weight * learned  # combine(), inline
            if hits:
                for hit in hits:
                    safe *= 1.0 - RULE_WEIGHTS[hit.rule]
            else:  # suspicious charges do not teach the profile (StoreProfile.learn, inline)
                weight = n + 1 if n < MEMORY else MEMORY
                delta = log_amount - profile.mean
                profile.mean += delta / weight
                profile.variance += (
                    delta * (log_amount - profile.mean) - profile.variance
                ) / weight
                profile.n = n + 1
                profile.hours[hour] += 1
            risk = 1.0 - safe
            if risk >= keep:
                kept.append(
                    Assessment(
                        charge_id=charge.charge_id,
                        store_id=store_id,
                        payer_hash=payer_hash,
                        created_at=charge.created_at,
                        amount=charge.amount,
                        risk=risk,
                        learned=learned,
                        hits=tuple(hits),
                        alert=risk >= alert_score,
                    )
                )
        self._dirty, self.forgotten_payers = dirty, forgotten
        if len(removed) > self._max_removed:  # no saves (``pulso fraud evaluate``): stay bounded
            removed.clear()
            self._delta_lost = True
        return kept

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

    def _local_hour(self, ms: int) -> int:
        hour_index = ms // _HOUR_MS
        hour = self._local_hours.get(hour_index)
        if hour is None:
            local = datetime.fromtimestamp(hour_index * 3600, LOCAL_TZ)
            hour = local.hour
            if len(self._local_hours) >= 10_000:
                self._local_hours.clear()
            self._local_hours[hour_index] = hour
        return hour

    # ------------------------------------------------------------------ payer rules

    def _known_payer(self, state: _PayerState, entry: _Recent, hits: list[RuleHit]) -> _PayerState:
        """The rules on a payer's history; the payer's new state (this charge included)."""
        now_ms = entry[0]
        since = now_ms - self._payer_window_ms
        recent, fails = state
        kept = tuple(r for r in recent if r[0] > since)
        if len(kept) < len(recent):
            self._disown(r for r in recent if r[0] <= since)
        if kept:
            self._duplicate(entry, kept, hits)
            self._travel(entry, kept[-1], hits)
            kept = self._velocity(entry, kept, hits)
        if fails:
            fails = self._fail_then_success(fails, now_ms, hits)
        kept = (*kept, entry)
        if len(kept) > _MAX_RECENT:
            self._disown(kept[:-_MAX_RECENT])
            kept = kept[-_MAX_RECENT:]
        return kept, fails

    def _duplicate(self, entry: _Recent, recent: tuple[_Recent, ...], hits: list[RuleHit]) -> None:
        now_ms, store_id, _, cents, _, _ = entry
        window_ms = 1000 * self.thresholds.duplicate_window_s
        for r in reversed(recent):  # either side of this charge: it may have arrived late
            if abs(now_ms - r[0]) < window_ms and r[1] == store_id and r[3] == cents:
                ago = format_duration_s(abs(now_ms - r[0]) / 1000)
                reason = (
                    f"mesmo pagador, mesma loja ({store_id}) e mesmo valor "
                    f"({format_brl(cents, cents=True)}) de uma cobrança de {ago} atrás"
                )
                hits.append(RuleHit(DUPLICATE_CHARGE, reason))
                return

    def _travel(self, entry: _Recent, last: _Recent, hits: list[RuleHit]) -> None:
        t = self.thresholds
        now_ms, city = entry[0], entry[2]
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
        self, entry: _Recent, recent: tuple[_Recent, ...], hits: list[RuleHit]
    ) -> tuple[_Recent, ...]:
        """Fires on a tour of stores; returns ``recent`` with the tour's charges flagged."""
        t = self.thresholds
        now_ms = entry[0]
        window_ms = 1000 * t.velocity_window_s
        window = [r for r in recent if abs(now_ms - r[0]) < window_ms]
        if not window:
            return recent
        stores = {r[1] for r in window} | {entry[1]}
        if len(stores) < t.velocity_stores:
            return recent
        covered = tuple(r[4] for r in window if not r[5])
        times = [r[0] for r in window]  # not sorted if a charge arrived late
        span = format_duration_s((max(max(times), now_ms) - min(min(times), now_ms)) / 1000)
        reason = f"mesmo pagador em {len(stores)} lojas diferentes em {span}"
        hits.append(RuleHit(VELOCITY, reason, covered))
        return tuple((*r[:5], True) if abs(now_ms - r[0]) < window_ms else r for r in recent)

    def _fail_then_success(
        self, fails: tuple[_Fail, ...], now_ms: int, hits: list[RuleHit]
    ) -> tuple[_Fail, ...]:
        """Fires after enough refusals; returns the refusals still in the window (flagged)."""
        t = self.thresholds
        since = now_ms - 1000 * t.fail_window_s
        fails = tuple(f for f in fails if f[0] > since)
        if len(fails) < t.fail_count:
            return fails
        covered = tuple(f[1] for f in fails if not f[2])
        span = format_duration_s((now_ms - fails[0][0]) / 1000)
        reason = (
            f"{format_count(len(fails))} cobranças recusadas do mesmo pagador em {span} "
            "antes desta nova tentativa"
        )
        hits.append(RuleHit(FAIL_THEN_SUCCESS, reason, covered))
        return tuple((f[0], f[1], True) for f in fails)

    # ------------------------------------------------------------------ failures

    def _disown(self, entries: Iterable[_Recent]) -> None:
        owner = self._owner
        for r in entries:
            owner.pop(r[4], None)

    def _failed(self, charge_id: str, failed_ms: int) -> None:
        """Count a refusal against the payer, if the charge is among the payer's recent ones
        and was created within the failure window."""
        payer_hash = self._owner.get(charge_id)
        if payer_hash is None:
            return
        recent, fails = self._payers[payer_hash]
        since = failed_ms - 1000 * self.thresholds.fail_window_s
        for i, r in enumerate(recent):
            if r[4] == charge_id and r[0] > since:
                if r[3] == -1:  # refused already: a second notice of one refusal counts once
                    return
                # A refused charge retried is not a duplicate: forget its amount. The payer
                # keeps its place in the recency order (a failure is no new charge).
                refused = (r[0], r[1], r[2], -1, r[4], r[5])
                self._payers[payer_hash] = (
                    (*recent[:i], refused, *recent[i + 1 :]),
                    (*fails, (failed_ms, charge_id, False)),
                )
                self._changed.add(payer_hash)
                return

    # ------------------------------------------------------------------ checkpoints

    def snapshot(self) -> bytes:
        """The whole state as msgpack bytes (deterministic for the same events)."""
        # The saved payers keep the order of ``_payers`` (it decides who is forgotten first):
        # the ones seen since the last snapshot, its last ``_dirty``, are encoded and appended
        # in that order.
        blobs, encode, payers = self._blobs, _ENCODER.encode, self._payers
        for payer_hash in self._changed:  # a refusal changed them in place
            if payer_hash in blobs:
                blobs[payer_hash] = msgspec.Raw(encode(payers[payer_hash]))
        seen = list(islice(reversed(payers), self._dirty))
        for payer_hash in reversed(seen):
            blobs[payer_hash] = msgspec.Raw(encode(payers[payer_hash]))
        self._dirty = 0
        self._changed.clear()
        self._touched.clear()
        self._removed.clear()
        self._delta_lost = False
        state = _State(
            version=SNAPSHOT_VERSION,
            stores={k: [s.profile.dump(), s.small] for k, s in self._stores.items()},
            payers=blobs,
            forgotten_payers=self.forgotten_payers,
        )
        return encode(state)

    def restore(self, blob: bytes | None) -> None:
        """Back to the state ``snapshot`` returned; None is a fresh start."""
        self._stores, self._payers, self._owner = {}, OrderedDict(), {}
        self._blobs, self._dirty, self._changed = {}, 0, set()
        self._touched, self._removed, self._delta_lost = set(), [], False
        self.forgotten_payers = 0
        if blob is None:
            return
        state = _DECODER.decode(blob)
        if state.version != SNAPSHOT_VERSION:
            raise ValueError(f"fraud state version {state.version}, expected {SNAPSHOT_VERSION}")
        self._stores = {k: _Store(StoreProfile.load(v[0]), v[1]) for k, v in state.stores.items()}
        for payer_hash, blob in state.payers.items():
            recent, fails = _PAYER_DECODER.decode(blob)
            self._payers[payer_hash] = (recent, fails)
            self._blobs[payer_hash] = msgspec.Raw(bytes(blob))
            for r in recent:
                self._owner[r[4]] = payer_hash
        self.forgotten_payers = state.forgotten_payers

    def snapshot_delta(self) -> bytes | None:
        """What changed since the last ``snapshot`` or ``snapshot_delta``, as msgpack bytes:
        the stores scored since then, the payers dropped, the payers changed in place (a
        refusal: they keep their place in the recency order) and the payers seen (the last
        ``_dirty`` of ``_payers``, in order). ``restore(full)`` then ``apply_delta`` of each
        delta since, in order, gives the state ``snapshot`` would have returned (a test checks
        the bytes). A batch touches a few thousand payers of the 100,000 a full one holds.
        None when the changes were not all kept (more payers dropped since the last save
        than ``max(max_payers, 100,000)``): take a ``snapshot`` instead."""
        if self._delta_lost:
            return None
        blobs, encode, payers = self._blobs, _ENCODER.encode, self._payers
        changed: dict[str, msgspec.Raw] = {}
        for payer_hash in self._changed:
            if payer_hash in blobs:  # the others are among the payers seen, or gone
                changed[payer_hash] = blobs[payer_hash] = msgspec.Raw(encode(payers[payer_hash]))
        seen: dict[str, msgspec.Raw] = {}
        for payer_hash in reversed(list(islice(reversed(payers), self._dirty))):
            seen[payer_hash] = blobs[payer_hash] = msgspec.Raw(encode(payers[payer_hash]))
        touched = self._touched
        stores = {  # in the order of ``_stores`` (new stores come last, as in a snapshot)
            k: [s.profile.dump(), s.small] for k, s in self._stores.items() if k in touched
        }
        delta = _Delta(
            version=SNAPSHOT_VERSION,
            stores=stores,
            removed=list(self._removed),
            changed=changed,
            seen=seen,
            forgotten_payers=self.forgotten_payers,
        )
        self._dirty = 0
        self._changed.clear()
        touched.clear()
        self._removed.clear()
        return encode(delta)

    def apply_delta(self, blob: bytes) -> None:
        """Apply a ``snapshot_delta`` on top of the state it was taken after."""
        delta = _DELTA_DECODER.decode(blob)
        if delta.version != SNAPSHOT_VERSION:
            raise ValueError(f"fraud delta version {delta.version}, expected {SNAPSHOT_VERSION}")
        stores = self._stores
        for store_id, (profile, small) in delta.stores.items():  # a known store keeps its place
            stores[store_id] = _Store(StoreProfile.load(profile), small)
        for payer_hash in delta.removed:
            self._drop_payer(payer_hash)
        for payer_hash, raw in delta.changed.items():  # in place: the recency order stays
            self._disown_payer(payer_hash)
            self._put_payer(payer_hash, raw)
        for payer_hash, raw in delta.seen.items():  # moved to the end, in order
            self._drop_payer(payer_hash)
            self._put_payer(payer_hash, raw)
        self.forgotten_payers = delta.forgotten_payers
        self._dirty = 0
        self._changed.clear()
        self._touched.clear()
        self._removed.clear()

    def _disown_payer(self, payer_hash: str) -> None:
        state = self._payers.get(payer_hash)
        if state is not None:
            owner = self._owner
            for r in state[0]:
                if owner.get(r[4]) == payer_hash:
                    del owner[r[4]]

    def _drop_payer(self, payer_hash: str) -> None:
        self._disown_payer(payer_hash)
        self._payers.pop(payer_hash, None)
        self._blobs.pop(payer_hash, None)

    def _put_payer(self, payer_hash: str, raw: msgspec.Raw) -> None:
        recent, fails = _PAYER_DECODER.decode(raw)
        self._payers[payer_hash] = (recent, fails)
        self._blobs[payer_hash] = msgspec.Raw(bytes(raw))
        for r in recent:
            self._owner[r[4]] = payer_hash

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


class _Delta(msgspec.Struct, array_like=True):
    version: int
    stores: dict[str, list[Any]]
    removed: list[str]
    changed: dict[str, msgspec.Raw]
    seen: dict[str, msgspec.Raw]
    forgotten_payers: int


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_State)
_DELTA_DECODER: Final = msgspec.msgpack.Decoder(_Delta)
_PAYER_DECODER: Final = msgspec.msgpack.Decoder(
    tuple[tuple[tuple[int, str, str, int, str, bool], ...], tuple[tuple[int, str, bool], ...]]
)


def hour_in_night(hour: int, thresholds: FraudThresholds) -> bool:
    start, end = thresholds.night_start_h, thresholds.night_end_h
    return start <= hour < end if start <= end else hour >= start or hour < end


def _spike_reason(charge: ChargeCreated, profile: StoreProfile, log_amount: float) -> str:
    typical = profile.typical_amount()
    return (
        f"{format_brl(charge.amount)} é {format_decimal(math.exp(log_amount) / typical)}× "
        f"o valor típico da loja {charge.store_id} "
        f"({format_brl(Decimal(round(typical, 2)))})"
    )


def _night_reason(charge: ChargeCreated, now_ms: int) -> str:
    local = datetime.fromtimestamp(now_ms / 1000, LOCAL_TZ)
    return f"{format_brl(charge.amount)} às {local:%H:%M} (madrugada) na loja {charge.store_id}"


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
