"""The report's KPIs, computed in SQL, equal values worked out by hand — on DuckDB and PostgreSQL.

The dataset (local time America/Sao_Paulo = UTC-3; the period is the week of Monday 13/05/2024,
the previous period the week before):

| id | store  | city      | local time          | cents | conf. s | status    | note              |
|----|--------|-----------|---------------------|-------|---------|-----------|-------------------|
| p1 | loja-a | Recife    | seg 13/05 10:00:10  | 1000  | 2       | confirmed |                   |
| p2 | loja-a | Recife    | seg 13/05 10:00:50  | 3000  | 4       | confirmed | p1's minute       |
| p3 | loja-a | Recife    | seg 13/05 10:04:00  | 1958  | 6       | confirmed |                   |
| p4 | loja-b | Recife    | seg 13/05 14:30:00  |  500  | 10      | confirmed |                   |
| p5 | loja-c | São Paulo | ter 14/05 10:15:00  | 4000  | 3       | confirmed |                   |
| p6 | loja-a | Recife    | dom 19/05 23:30:00  |  700  | 1       | confirmed | UTC: 20/05 02:30  |
| p7 | loja-a | Recife    | ter 14/05 10:20:00  | 1500  | 5       | confirmed |                   |
| p8 | loja-c | São Paulo | ter 14/05 05:59:00  | 1001  | -       | confirmed | no conf. time     |
| f1 | loja-a | Recife    | seg 13/05 10:02:00  | 99999 | -       | failed    |                   |
| e1 | loja-b | Recife    | qua 15/05 09:00:00  | 2500  | -       | expired   |                   |
| e2 | loja-c | São Paulo | sex 17/05 12:00:00  |  100  | -       | expired   |                   |
| k1 | loja-a | Recife    | seg 13/05 11:00:00  |  900  | -       | pending   | never counted     |
| q1 | loja-a | Recife    | dom 12/05 23:59:00  |  100  | 1       | confirmed | previous week     |
| r1 | loja-b | Recife    | qua 08/05 14:00:00  | 4000  | 20      | confirmed | previous week     |
| f0 | loja-b | Recife    | qua 08/05 15:00:00  |  300  | -       | failed    | previous week     |
| q2 | loja-a | Recife    | seg 20/05 00:00:30  |  200  | 1       | confirmed | the day after     |
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from payment_rows import BACKENDS, LocalRow, filled_store, local_rows

from pulso.analytics.kpis import (
    DAY_PARTS,
    CityConfirmation,
    KpiError,
    KpiRow,
    PeriodKpis,
    SpreadRow,
    period_kpis,
)
from pulso.errors import PulsoError
from pulso.store import Store

START, END = date(2024, 5, 13), date(2024, 5, 19)

# id, store, city, uf, local time, cents, confirmation seconds, status
ROWS: list[LocalRow] = [
    ("p1", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 0, 10), 1000, 2.0, "confirmed"),
    ("p2", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 0, 50), 3000, 4.0, "confirmed"),
    ("p3", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 4, 0), 1958, 6.0, "confirmed"),
    ("p4", "loja-b", "Recife", "PE", datetime(2024, 5, 13, 14, 30, 0), 500, 10.0, "confirmed"),
    ("p5", "loja-c", "São Paulo", "SP", datetime(2024, 5, 14, 10, 15), 4000, 3.0, "confirmed"),
    ("p6", "loja-a", "Recife", "PE", datetime(2024, 5, 19, 23, 30, 0), 700, 1.0, "confirmed"),
    ("p7", "loja-a", "Recife", "PE", datetime(2024, 5, 14, 10, 20, 0), 1500, 5.0, "confirmed"),
    ("p8", "loja-c", "São Paulo", "SP", datetime(2024, 5, 14, 5, 59), 1001, None, "confirmed"),
    ("f1", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 2, 0), 99999, None, "failed"),
    ("e1", "loja-b", "Recife", "PE", datetime(2024, 5, 15, 9, 0, 0), 2500, None, "expired"),
    ("e2", "loja-c", "São Paulo", "SP", datetime(2024, 5, 17, 12, 0), 100, None, "expired"),
    ("k1", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 11, 0, 0), 900, None, "pending"),
    ("q1", "loja-a", "Recife", "PE", datetime(2024, 5, 12, 23, 59, 0), 100, 1.0, "confirmed"),
    ("r1", "loja-b", "Recife", "PE", datetime(2024, 5, 8, 14, 0, 0), 4000, 20.0, "confirmed"),
    ("f0", "loja-b", "Recife", "PE", datetime(2024, 5, 8, 15, 0, 0), 300, None, "failed"),
    ("q2", "loja-a", "Recife", "PE", datetime(2024, 5, 20, 0, 0, 30), 200, 1.0, "confirmed"),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with filled_store(request, tmp_path, local_rows(ROWS)) as opened:
        yield opened


@pytest.fixture
def week(store: Store) -> PeriodKpis:
    return period_kpis(store, start=START, end=END)


def _row(label: str, payments: int, revenue: str, ticket: str | None) -> KpiRow:
    return KpiRow(label, payments, Decimal(revenue), None if ticket is None else Decimal(ticket))


def _nonzero(rows: list[KpiRow]) -> list[KpiRow]:
    return [r for r in rows if r.payments]


def test_totals_count_confirmed_payments_only(week: PeriodKpis) -> None:
    assert (week.start, week.end, week.days) == (START, END, 7)
    # 1000 + 3000 + 1958 + 500 + 4000 + 700 + 1500 + 1001 = 13659 centavos in 8 payments.
    assert week.payments == 8
    assert week.revenue == Decimal("136.59")
    assert week.average_ticket == Decimal("17.07")  # 17.07375
    assert (week.failed, week.expired) == (1, 2)  # the pending k1 is neither
    assert (week.stores, week.cities) == (3, 2)
    assert isinstance(week.revenue, Decimal)
    assert type(week.payments) is int


def test_confirmation_time_over_the_payments_that_have_one(week: PeriodKpis) -> None:
    # 2, 4, 6, 10, 3, 1, 5 (p8 has none): mean 31/7; p95 at rank 5.7 of 1,2,3,4,5,6,10.
    assert week.confirmation_mean_s == pytest.approx(31 / 7)
    assert week.confirmation_p95_s == pytest.approx(6 + 0.7 * 4)
    recife, sao_paulo = week.confirmation_by_city  # slowest first
    # Recife: 2, 4, 6, 10, 1, 5 -> mean 28/6; p95 at rank 4.75 of 1,2,4,5,6,10.
    assert (recife.city, recife.payments) == ("Recife", 6)
    assert (recife.mean_s, recife.p95_s) == pytest.approx((28 / 6, 9.0))
    assert sao_paulo == CityConfirmation("São Paulo", 1, 3.0, 3.0)


def test_by_hour_lists_all_24_hours_in_local_time(week: PeriodKpis) -> None:
    assert [r.label for r in week.by_hour] == [f"{h:02d}h" for h in range(24)]
    assert _nonzero(week.by_hour) == [
        _row("05h", 1, "10.01", "10.01"),
        _row("10h", 5, "114.58", "22.92"),  # 11458 / 5 = 2291.6
        _row("14h", 1, "5.00", "5.00"),
        _row("23h", 1, "7.00", "7.00"),  # p6 is 02:30 on Monday in UTC
    ]
    assert week.by_hour[0] == _row("00h", 0, "0.00", None)


def test_by_day_lists_every_date_and_rounds_half_even(week: PeriodKpis) -> None:
    assert [(r.label, r.payments) for r in week.by_day] == [
        ("13/05/2024", 4),
        ("14/05/2024", 3),
        ("15/05/2024", 0),
        ("16/05/2024", 0),
        ("17/05/2024", 0),
        ("18/05/2024", 0),
        ("19/05/2024", 1),
    ]
    # 6458 / 4 = 1614.5 centavos: half even gives R$ 16,14 (half up would give 16,15).
    assert week.by_day[0] == _row("13/05/2024", 4, "64.58", "16.14")
    assert week.by_day[1] == _row("14/05/2024", 3, "65.01", "21.67")
    assert week.by_day[2].average_ticket is None


def test_by_city_and_store_highest_revenue_first(week: PeriodKpis) -> None:
    assert week.by_city == [
        _row("Recife", 6, "86.58", "14.43"),
        _row("São Paulo", 2, "50.01", "25.00"),  # 2500.5 centavos, half even
    ]
    assert week.by_store == [
        _row("loja-a", 5, "81.58", "16.32"),
        _row("loja-c", 2, "50.01", "25.00"),
        _row("loja-b", 1, "5.00", "5.00"),
    ]


def test_day_parts_mean_ticket_and_idle_minutes(week: PeriodKpis) -> None:
    # (store, date) pairs with a sale: loja-a 13, 14, 19/05; loja-b 13/05; loja-c 14/05 = 5.
    # Minutes with a payment: madrugada 1 (p8), manhã 4 (10:00, 10:04, 10:15, 10:20),
    # tarde 1 (p4), noite 1 (p6).
    assert [r.label for r in week.by_day_part] == [label for label, _, _ in DAY_PARTS]
    assert [(r.payments, r.average_ticket) for r in week.by_day_part] == [
        (1, Decimal("10.01")),
        (5, Decimal("22.92")),
        (1, Decimal("5.00")),
        (1, Decimal("7.00")),
    ]
    idle = [r.idle_minutes_per_store_day for r in week.by_day_part]
    assert idle == pytest.approx([360 - 1 / 5, 360 - 4 / 5, 360 - 1 / 5, 360 - 1 / 5])


def test_idle_minutes_of_one_store_on_one_day(store: Store) -> None:
    # loja-a on 13/05 only: payments in minutes 10:00 and 10:04 of the manhã.
    day = period_kpis(store, start=START, end=START, store_id="loja-a", with_previous=False)
    idle = [r.idle_minutes_per_store_day for r in day.by_day_part]
    assert idle == [360.0, 358.0, 360.0, 360.0]
    assert [r.payments for r in day.by_day_part] == [0, 3, 0, 0]
    assert day.by_day_part[0].average_ticket is None


def test_hourly_spread_counts_days_without_payments_as_zero(week: PeriodKpis) -> None:
    spread = {r.label: r for r in week.hourly_spread}
    assert list(spread) == [f"{h:02d}h" for h in range(24)]
    assert (spread["10h"].minimum, spread["10h"].maximum) == (0, 3)
    assert spread["10h"].mean == pytest.approx(5 / 7)
    assert (spread["05h"].minimum, spread["05h"].maximum) == (0, 1)
    assert spread["05h"].mean == pytest.approx(1 / 7)
    assert spread["03h"] == SpreadRow("03h", 0, 0, 0.0)


def test_hourly_spread_of_two_days_with_payments(store: Store) -> None:
    kpis = period_kpis(store, start=START, end=date(2024, 5, 14), with_previous=False)
    spread = {r.label: r for r in kpis.hourly_spread}
    assert spread["10h"] == SpreadRow("10h", 2, 3, 2.5)
    assert spread["14h"] == SpreadRow("14h", 0, 1, 0.5)


def test_previous_period_is_the_week_before(week: PeriodKpis) -> None:
    previous = week.previous
    assert previous is not None
    assert (previous.start, previous.end) == (date(2024, 5, 6), date(2024, 5, 12))
    assert previous.payments == 2  # q1 (Sunday 23:59) and r1
    assert previous.revenue == Decimal("41.00")
    assert previous.average_ticket == Decimal("20.50")
    assert (previous.failed, previous.expired) == (1, 0)
    assert (previous.stores, previous.cities) == (2, 1)
    assert previous.confirmation_mean_s == pytest.approx(10.5)
    assert previous.previous is None


def test_filters_by_store_and_city(store: Store) -> None:
    loja_c = period_kpis(store, start=START, end=END, store_id="loja-c")
    assert (loja_c.payments, loja_c.revenue, loja_c.failed, loja_c.expired) == (
        2,
        Decimal("50.01"),
        0,
        1,
    )
    assert [r.label for r in loja_c.by_store] == ["loja-c"]
    assert loja_c.previous is not None and loja_c.previous.payments == 0
    recife = period_kpis(store, start=START, end=END, city="Recife")
    assert (recife.payments, recife.failed, recife.expired, recife.cities) == (6, 1, 1, 1)
    assert [c.city for c in recife.confirmation_by_city] == ["Recife"]


def test_an_empty_period_gives_zeros_and_blanks(store: Store) -> None:
    empty = period_kpis(store, start=date(2023, 1, 1), end=date(2023, 1, 3))
    assert (empty.payments, empty.revenue, empty.average_ticket) == (0, Decimal("0.00"), None)
    assert (empty.failed, empty.expired, empty.stores, empty.cities) == (0, 0, 0, 0)
    assert (empty.confirmation_mean_s, empty.confirmation_p95_s) == (None, None)
    assert len(empty.by_hour) == 24 and not _nonzero(empty.by_hour)
    assert [r.label for r in empty.by_day] == ["01/01/2023", "02/01/2023", "03/01/2023"]
    assert (empty.by_city, empty.by_store, empty.confirmation_by_city) == ([], [], [])
    assert [
        (r.payments, r.average_ticket, r.idle_minutes_per_store_day) for r in empty.by_day_part
    ] == [(0, None, None)] * 4
    assert {(r.minimum, r.maximum, r.mean) for r in empty.hourly_spread} == {(0, 0, 0.0)}
    assert empty.previous is not None and empty.previous.payments == 0


def test_a_start_after_the_end_is_refused(store: Store) -> None:
    with pytest.raises(KpiError, match="swap start and end") as caught:
        period_kpis(store, start=END, end=START)
    assert isinstance(caught.value, PulsoError)
