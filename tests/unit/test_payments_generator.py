"""The payments generator: deterministic, believable curves, a sound charge lifecycle, and
malformed records that each fail decoding for their stated reason."""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from pulso.domain.events import Event, decode_event, encode_event
from pulso.domain.ids import uuid7
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.domain.validators import REGION_BY_UF, UFS, is_valid_cnpj, is_valid_cpf
from pulso.errors import InvalidEventError
from pulso.sources import GeneratorConfigError
from pulso.sources.geo import CITIES, STORE_TYPE_BY_SLUG, STORE_TYPES
from pulso.sources.payments_generator import (
    LOCAL_TZ,
    MALFORMED_KINDS,
    GenerationStats,
    MalformedFactory,
    PaymentsConfig,
    draw_outcome,
    expected_charges,
    generate_payment_records,
    generate_payments,
    make_stores,
    period_start_date,
    pick_cities,
    stores_for,
)

MONDAY = date(2024, 5, 6)
# One store of every type (8 types), a whole week: the shapes of the curves are visible.
WEEK = PaymentsConfig(start=MONDAY, days=7, n_stores=8, n_cities=4, seed=7)
SMALL = PaymentsConfig(start=MONDAY, days=1, n_stores=3, n_cities=2, seed=11)


@pytest.fixture(scope="module")
def week() -> tuple[list[Event], GenerationStats]:
    events = generate_payments(WEEK)
    return list(events), events.stats


@pytest.fixture(scope="module")
def charges(week: tuple[list[Event], GenerationStats]) -> dict[str, list[Event]]:
    by_charge: dict[str, list[Event]] = defaultdict(list)
    for event in week[0]:
        by_charge[event.key].append(event)
    return by_charge


def _created(events: list[Event]) -> list[ChargeCreated]:
    return [e.data for e in events if isinstance(e.data, ChargeCreated)]


def _local(at: datetime) -> datetime:
    return at.astimezone(LOCAL_TZ)


# --- determinism -------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes() -> None:
    assert list(generate_payment_records(SMALL)) == list(generate_payment_records(SMALL))


def test_another_seed_gives_other_events() -> None:
    other = PaymentsConfig(start=MONDAY, days=1, n_stores=3, n_cities=2, seed=12)
    first = [v for _, v in generate_payment_records(SMALL)]
    second = [v for _, v in generate_payment_records(other)]
    assert first[:50] != second[:50]


def test_malformed_records_leave_the_good_bytes_unchanged() -> None:
    spoiled = PaymentsConfig(
        start=MONDAY, days=1, n_stores=3, n_cities=2, seed=11, malformed_rate=0.2
    )
    plain = list(generate_payment_records(SMALL))
    good = [r for r in generate_payment_records(spoiled) if _decodes(r[1])]
    assert good == plain


def _decodes(raw: bytes) -> bool:
    try:
        decode_event(raw)
    except InvalidEventError:
        return False
    return True


# --- envelope and lifecycle --------------------------------------------------------------


def test_every_generated_record_decodes_to_the_same_event(
    week: tuple[list[Event], GenerationStats],
) -> None:
    for event in week[0][:20_000]:
        assert decode_event(encode_event(event)) == event


def test_events_come_in_event_time_order_with_aware_utc_times(
    week: tuple[list[Event], GenerationStats],
) -> None:
    times = [e.occurred_at for e in week[0]]
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times == sorted(times)


def test_event_ids_are_unique_uuid7_at_the_event_time(
    week: tuple[list[Event], GenerationStats],
) -> None:
    ids = [e.event_id for e in week[0]]
    assert len(set(ids)) == len(ids)
    for event in week[0][:5_000]:
        assert event.event_id.version == 7
        assert event.event_id.int >> 80 == int(event.occurred_at.timestamp() * 1000)


def test_each_charge_has_one_created_then_one_terminal(charges: dict[str, list[Event]]) -> None:
    for charge_id, events in charges.items():
        created, terminal = events  # exactly two events per charge
        assert isinstance(created.data, ChargeCreated)
        assert created.data.charge_id == charge_id
        assert isinstance(terminal.data, ChargeConfirmed | ChargeFailed | ChargeExpired)
        assert terminal.data.charge_id == charge_id
        assert terminal.occurred_at > created.occurred_at
        assert terminal.occurred_at <= created.data.expires_at


def test_outcome_shares_and_timing(charges: dict[str, list[Event]]) -> None:
    outcomes = Counter(type(events[1].data).__name__ for events in charges.values())
    total = len(charges)
    assert 0.01 < outcomes["ChargeFailed"] / total < 0.03
    assert 0.02 < outcomes["ChargeExpired"] / total < 0.045
    for created, terminal in charges.values():
        if isinstance(terminal.data, ChargeExpired):
            assert terminal.data.expired_at == created.data.expires_at
        if isinstance(terminal.data, ChargeConfirmed):
            assert terminal.data.amount_paid == created.data.amount
            assert terminal.occurred_at < created.data.expires_at


def test_confirmations_mostly_within_a_minute_with_a_tail(
    charges: dict[str, list[Event]],
) -> None:
    delays_s = [
        (terminal.occurred_at - created.occurred_at).total_seconds()
        for created, terminal in charges.values()
        if isinstance(terminal.data, ChargeConfirmed)
    ]
    within_minute = sum(d < 60 for d in delays_s) / len(delays_s)
    assert within_minute > 0.85
    assert 3 < statistics.median(delays_s) < 60
    assert sum(d > 120 for d in delays_s) > 0.01 * len(delays_s)  # the slow payers


def test_end_to_end_ids_follow_the_bcb_format(charges: dict[str, list[Event]]) -> None:
    for _, terminal in list(charges.values())[:2_000]:
        if isinstance(terminal.data, ChargeConfirmed):
            e2e = terminal.data.end_to_end_id
            stamp = terminal.occurred_at.strftime("%Y%m%d%H%M")
            assert len(e2e) == 32 and e2e[0] == "E" and e2e[9:21] == stamp


def test_charge_fields(week: tuple[list[Event], GenerationStats]) -> None:
    created = _created(week[0])
    assert len({c.charge_id for c in created}) == len(created)
    assert len({c.txid for c in created}) == len(created)
    documents = Counter("cpf" if len(c.payer_document or "") == 11 else "cnpj" for c in created)
    assert documents["cnpj"] > 0 and documents["cpf"] > 10 * documents["cnpj"]
    for c in created:
        assert len(c.txid) == 25 and c.txid.isalnum()
        assert c.amount > 0 and c.amount.as_tuple().exponent == -2
        doc = c.payer_document or ""
        assert is_valid_cpf(doc) if len(doc) == 11 else is_valid_cnpj(doc)
        assert c.expires_at - c.created_at == timedelta(seconds=WEEK.expiry_s)


def test_amounts_follow_each_store_type(week: tuple[list[Event], GenerationStats]) -> None:
    types = {s.store_id: s.store_type for s in stores_for(WEEK)}
    by_type: dict[str, list[Decimal]] = defaultdict(list)
    for c in _created(week[0]):
        by_type[types[c.store_id].slug].append(c.amount)
    for slug, amounts in by_type.items():
        kind = STORE_TYPE_BY_SLUG[slug]
        median = float(statistics.median(amounts))
        assert 0.85 * kind.amount_median_brl < median < 1.15 * kind.amount_median_brl, slug
        assert max(amounts) <= Decimal(str(kind.amount_max_brl))
    assert statistics.median(by_type["eletronicos"]) > statistics.median(by_type["padaria"])


def test_stats_count_exactly_what_was_yielded(week: tuple[list[Event], GenerationStats]) -> None:
    events, stats = week
    kinds = Counter(e.type for e in events)
    assert stats.charges == kinds["pix.charge.created"]
    assert stats.confirmed == kinds["pix.charge.confirmed"]
    assert stats.failed == kinds["pix.charge.failed"]
    assert stats.expired == kinds["pix.charge.expired"]
    assert stats.good_events == len(events) and stats.malformed == 0
    assert (stats.stores, stats.cities) == (8, 4)
    assert stats.period_start == datetime(2024, 5, 6, 3, tzinfo=UTC)  # local midnight, UTC-3


def test_expected_charges_is_close_to_the_count(
    week: tuple[list[Event], GenerationStats],
) -> None:
    assert expected_charges(WEEK) == pytest.approx(week[1].charges, rel=0.05)


# --- curves ------------------------------------------------------------------------------


def test_created_events_fall_inside_the_period_and_opening_hours(
    week: tuple[list[Event], GenerationStats],
) -> None:
    types = {s.store_id: s.store_type for s in stores_for(WEEK)}
    for c in _created(week[0]):
        assert WEEK.period_start <= c.created_at < WEEK.period_end
        local = _local(c.created_at)
        hours = types[c.store_id].hours_on(local.weekday())
        assert hours is not None and hours[0] <= local.hour < hours[1]


def test_lunch_and_evening_are_busier_than_the_small_hours(
    week: tuple[list[Event], GenerationStats],
) -> None:
    by_hour = Counter(_local(c.created_at).hour for c in _created(week[0]))
    peak_per_hour = (by_hour[12] + by_hour[18] + by_hour[19]) / 3
    small_hours_per_hour = (by_hour[3] + by_hour[4]) / 2
    assert peak_per_hour > 8 * max(small_hours_per_hour, 1)
    assert small_hours_per_hour > 0  # the petrol station never closes


def _count_by_weekday(events: list[Event], slug: str) -> Counter[int]:
    ids = {s.store_id for s in stores_for(WEEK) if s.store_type.slug == slug}
    return Counter(_local(c.created_at).weekday() for c in _created(events) if c.store_id in ids)


def test_weekly_shapes_differ_by_store_type(week: tuple[list[Event], GenerationStats]) -> None:
    mon, tue, fri, sat, sun = 0, 1, 4, 5, 6
    supermarket = _count_by_weekday(week[0], "supermercado")
    assert supermarket[sat] > 1.3 * supermarket[tue]
    restaurant = _count_by_weekday(week[0], "restaurante")
    assert restaurant[fri] + restaurant[sat] > 1.4 * (restaurant[mon] + restaurant[tue])
    electronics = _count_by_weekday(week[0], "eletronicos")
    assert electronics[sun] == 0 and electronics[sat] > 0


def test_every_type_has_believable_hours() -> None:
    for kind in STORE_TYPES:
        weekday = kind.hour_weights(2)
        assert sum(weekday) > 0, kind.slug
        assert weekday[3] < max(weekday) / 4, kind.slug  # 3 a.m. is never a peak


# --- stores and geography ----------------------------------------------------------------


def _ibge_check_digit(code: int) -> int:
    total = 0
    for i, digit in enumerate(str(code)[:6]):
        product = int(digit) * (1 if i % 2 == 0 else 2)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def test_cities_are_real_municipalities_over_every_region() -> None:
    assert len(CITIES) >= 30
    assert len({c.ibge_code for c in CITIES}) == len(CITIES)
    assert {c.region for c in CITIES} == set(REGION_BY_UF.values())
    for city in CITIES:
        assert city.uf in UFS
        assert str(city.ibge_code)[:2] == _UF_IBGE_PREFIX[city.uf], city.name
        assert city.ibge_code % 10 == _ibge_check_digit(city.ibge_code), city.name
        assert -34 < city.lat < 6 and -74 < city.lon < -34, city.name


_UF_IBGE_PREFIX = {
    "RO": "11", "AC": "12", "AM": "13", "RR": "14", "PA": "15", "AP": "16", "TO": "17",
    "MA": "21", "PI": "22", "CE": "23", "RN": "24", "PB": "25", "PE": "26", "AL": "27",
    "SE": "28", "BA": "29", "MG": "31", "ES": "32", "RJ": "33", "SP": "35", "PR": "41",
    "SC": "42", "RS": "43", "MS": "50", "MT": "51", "GO": "52", "DF": "53",
}  # fmt: skip


def test_make_stores_spreads_stores_over_the_cities() -> None:
    stores = make_stores(20, 8, random.Random(1))
    assert [s.store_id for s in stores[:3]] == ["LJ-0001", "LJ-0002", "LJ-0003"]
    assert len({s.ibge_code for s in stores}) == 8
    assert {s.store_type.slug for s in stores} == set(STORE_TYPE_BY_SLUG)
    assert all(s.name and s.name[0].isupper() and s.uf in UFS for s in stores)
    assert make_stores(20, 8, random.Random(1)) == stores


def test_fewer_stores_than_cities_uses_one_city_per_store() -> None:
    stores = make_stores(3, 8, random.Random(2))
    assert len({s.ibge_code for s in stores}) == 3


def test_a_few_cities_still_cover_the_regions() -> None:
    regions = {c.region for c in pick_cities(5, random.Random(3))}
    assert len(regions) == 5


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"days": 0}, "days"),
        ({"days": 400}, "days"),
        ({"n_stores": 0}, "stores"),
        ({"n_cities": 0}, "cities"),
        ({"n_cities": len(CITIES) + 1}, "cities"),
        ({"malformed_rate": 1.5}, "malformed-rate"),
        ({"malformed_rate": -0.1}, "malformed-rate"),
        ({"expiry_s": 10}, "expiry-s"),
    ],
)
def test_bad_config_names_the_option(changes: dict[str, float], option: str) -> None:
    with pytest.raises(GeneratorConfigError) as caught:
        PaymentsConfig(start=MONDAY, **changes)  # type: ignore[arg-type]
    assert caught.value.option == option


@pytest.mark.parametrize("start", [date(1969, 12, 31), date(2100, 12, 30), date(9999, 12, 31)])
def test_a_period_outside_the_supported_years_is_refused(start: date) -> None:
    with pytest.raises(GeneratorConfigError, match="must fall between"):
        PaymentsConfig(start=start, days=7)


def test_period_start_date() -> None:
    today = date(2024, 5, 20)
    assert period_start_date(7, today=today) == date(2024, 5, 13)  # ends yesterday
    assert period_start_date(7, today=today, end=date(2024, 5, 12)) == MONDAY
    assert period_start_date(7, today=today, start=MONDAY) == MONDAY
    with pytest.raises(GeneratorConfigError, match="not both"):
        period_start_date(7, today=today, start=MONDAY, end=date(2024, 5, 12))
    with pytest.raises(GeneratorConfigError, match="days"):
        period_start_date(10**9, today=today)  # refused before the date arithmetic overflows


def test_draw_outcome_splits_one_uniform_into_outcome_and_delay() -> None:
    expiry_ms = 600_000
    assert draw_outcome(0.0, expiry_ms)[0] == draw_outcome(0.019, expiry_ms)[0]
    assert draw_outcome(0.03, expiry_ms) == draw_outcome(0.049, expiry_ms)  # expired...
    assert draw_outcome(0.03, expiry_ms)[1] == expiry_ms  # ...exactly at expiry
    outcomes = {draw_outcome(u / 1000, expiry_ms)[0] for u in range(1000)}
    assert len(outcomes) == 3
    for u in range(1000):
        outcome, delay_ms = draw_outcome(u / 1000, expiry_ms)
        assert 0 < delay_ms <= expiry_ms
        if delay_ms == expiry_ms:
            assert outcome == draw_outcome(0.03, expiry_ms)[0]
    # The slow payers' slice of the uniform gives delays of minutes, the rest seconds.
    assert draw_outcome(0.06, expiry_ms)[1] > 60_000
    assert draw_outcome(0.5, expiry_ms)[1] < 60_000


def test_uuid7_with_seeded_bits_keeps_time_version_and_variant() -> None:
    value = uuid7(1_715_000_000_123, (1 << 80) - 1)
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"
    assert value.int >> 80 == 1_715_000_000_123
    assert uuid7(5, 12345) == uuid7(5, 12345) != uuid7(5, 12346)


# --- malformed records -------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> bytes:
    return next(iter(generate_payment_records(SMALL)))[1]


@pytest.mark.parametrize("kind", sorted(MALFORMED_KINDS))
def test_each_malformed_kind_fails_with_its_reason(template: bytes, kind: str) -> None:
    factory = MalformedFactory(random.Random(kind))
    for _ in range(200):  # bad_json cuts at random places: try many
        made_kind, (key, value) = factory.make(template, kind)
        assert made_kind == kind
        assert b"\n" not in value and key.startswith(b"ch_")
        value.decode("utf-8")  # a JSON-lines file of them stays readable text
        with pytest.raises(InvalidEventError) as caught:
            decode_event(value)
        assert caught.value.reason == MALFORMED_KINDS[kind]


def test_malformed_counts_are_exact_and_every_kind_appears() -> None:
    config = PaymentsConfig(
        start=MONDAY, days=1, n_stores=3, n_cities=2, seed=11, malformed_rate=0.05
    )
    records = generate_payment_records(config)
    reasons: Counter[str] = Counter()
    good = 0
    for _, value in records:
        assert b"\n" not in value
        try:
            decode_event(value)
            good += 1
        except InvalidEventError as e:
            reasons[e.reason] += 1
    stats = records.stats
    assert set(stats.malformed_by_kind) == set(MALFORMED_KINDS)
    expected: Counter[str] = Counter()
    for kind, count in stats.malformed_by_kind.items():
        expected[MALFORMED_KINDS[kind]] += count
    assert reasons == expected
    assert good == stats.good_events
    assert 0.035 < stats.malformed / stats.good_events < 0.065


def test_no_malformed_records_at_rate_zero() -> None:
    records = generate_payment_records(SMALL)
    values = [v for _, v in records]
    assert records.stats.malformed == 0
    assert len(values) == records.stats.good_events
