"""The heatmap grids, computed in SQL, equal values worked out by hand — on DuckDB and PostgreSQL.

The dataset (local time America/Sao_Paulo = UTC-3; week of Monday 13/05/2024):

| id | store  | city      | local time        | cents | conf. s | note                           |
|----|--------|-----------|-------------------|-------|---------|--------------------------------|
| p1 | loja-a | Recife    | seg 13/05 10:00:10 | 1000 | 2       |                                |
| p2 | loja-a | Recife    | seg 13/05 10:00:50 | 3000 | 4       | same minute as p1              |
| p3 | loja-a | Recife    | seg 13/05 10:04:00 | 2002 | 6       |                                |
| p4 | loja-b | Recife    | seg 13/05 14:30:00 |  500 | 10      |                                |
| p5 | loja-c | São Paulo | ter 14/05 10:15:00 | 4000 | 3       |                                |
| p6 | loja-a | Recife    | dom 19/05 23:30:00 |  700 | 1       | UTC is Monday 20/05 02:30      |
| p7 | loja-a | Recife    | ter 14/05 10:20:00 | 1500 | 5       |                                |
| f1 | loja-a | Recife    | seg 13/05 10:02:00 | 99999| -       | failed: never counted          |
| q1 | loja-a | Recife    | dom 12/05 23:59:00 |  100 | 1       | the day before the period      |
| q2 | loja-a | Recife    | seg 20/05 00:00:30 |  200 | 1       | the day after the period       |
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from payment_rows import BACKENDS, LocalRow, filled_store, local_rows, payment

from pulso.analytics.heatmaps import (
    HEATMAPS,
    HeatmapError,
    HeatmapGrid,
    UnknownHeatmapError,
    all_heatmaps,
    heatmap,
)
from pulso.errors import PulsoError
from pulso.store import Store

START, END = date(2024, 5, 13), date(2024, 5, 19)

# id, store, city, uf, local time, paid cents, confirmation seconds, status
ROWS: list[LocalRow] = [
    ("p1", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 0, 10), 1000, 2.0, "confirmed"),
    ("p2", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 0, 50), 3000, 4.0, "confirmed"),
    ("p3", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 4, 0), 2002, 6.0, "confirmed"),
    ("p4", "loja-b", "Recife", "PE", datetime(2024, 5, 13, 14, 30, 0), 500, 10.0, "confirmed"),
    ("p5", "loja-c", "São Paulo", "SP", datetime(2024, 5, 14, 10, 15), 4000, 3.0, "confirmed"),
    ("p6", "loja-a", "Recife", "PE", datetime(2024, 5, 19, 23, 30, 0), 700, 1.0, "confirmed"),
    ("p7", "loja-a", "Recife", "PE", datetime(2024, 5, 14, 10, 20, 0), 1500, 5.0, "confirmed"),
    ("f1", "loja-a", "Recife", "PE", datetime(2024, 5, 13, 10, 2, 0), 99999, None, "failed"),
    ("q1", "loja-a", "Recife", "PE", datetime(2024, 5, 12, 23, 59, 0), 100, 1.0, "confirmed"),
    ("q2", "loja-a", "Recife", "PE", datetime(2024, 5, 20, 0, 0, 30), 200, 1.0, "confirmed"),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with filled_store(request, tmp_path / "store", local_rows(ROWS)) as opened:
        yield opened


def _grid(store: Store, name: str, **kwargs: Any) -> HeatmapGrid:
    kwargs.setdefault("start", START)
    kwargs.setdefault("end", END)
    return heatmap(store, name, **kwargs)


def _cells(grid: HeatmapGrid) -> dict[tuple[str, str], Any]:
    """The non-blank cells, by (row label, column label)."""
    return {
        (row, column): value
        for row, values in zip(grid.rows, grid.values, strict=True)
        for column, value in zip(grid.columns, values, strict=True)
        if value is not None
    }


def _cell(grid: HeatmapGrid, row: str, column: str) -> Any:
    return grid.values[grid.rows.index(row)][grid.columns.index(column)]


HOURS = [str(h) for h in range(24)]
WEEKDAYS = ["seg", "ter", "qua", "qui", "sex", "sáb", "dom"]
PERIOD_DATES = ["13/05", "14/05", "15/05", "16/05", "17/05", "18/05", "19/05"]


def test_count_by_weekday_and_hour_uses_local_time(store: Store) -> None:
    grid = _grid(store, "semana_count")
    assert grid.rows == WEEKDAYS
    assert grid.columns == HOURS
    # p6 is Monday 02:30 in UTC but Sunday 23:30 in São Paulo; the failed charge is not counted.
    assert _cells(grid) == {("seg", "10"): 3, ("seg", "14"): 1, ("ter", "10"): 2, ("dom", "23"): 1}
    assert all(type(v) is int for v in _cells(grid).values())
    assert grid.values[WEEKDAYS.index("qua")] == [None] * 24  # blank, never zero


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("semana_sum", {"seg10": "60.02", "seg14": "5.00", "ter10": "55.00", "dom23": "7.00"}),
        # seg 10h: 6002 / 3 = 2000.67 centavos -> R$ 20,01; ter 10h: 5500 / 2
        ("semana_mean", {"seg10": "20.01", "seg14": "5.00", "ter10": "27.50", "dom23": "7.00"}),
        ("semana_max", {"seg10": "30.00", "seg14": "5.00", "ter10": "40.00", "dom23": "7.00"}),
        ("semana_min", {"seg10": "10.00", "seg14": "5.00", "ter10": "15.00", "dom23": "7.00"}),
    ],
)
def test_amount_statistics_are_exact_reais(
    store: Store, name: str, expected: dict[str, str]
) -> None:
    cells = _cells(_grid(store, name))
    assert cells == {(k[:3], k[3:]): Decimal(v) for k, v in expected.items()}
    assert all(isinstance(v, Decimal) for v in cells.values())


def test_store_and_city_by_weekday(store: Store) -> None:
    by_store = _grid(store, "loja_count")
    assert by_store.rows == ["loja-a", "loja-b", "loja-c"]
    assert by_store.columns == WEEKDAYS
    assert _cells(by_store) == {
        ("loja-a", "seg"): 3,
        ("loja-a", "ter"): 1,
        ("loja-a", "dom"): 1,
        ("loja-b", "seg"): 1,
        ("loja-c", "ter"): 1,
    }
    by_city = _grid(store, "cidade_sum")
    assert by_city.rows == ["Recife", "São Paulo"]
    assert _cells(by_city) == {
        ("Recife", "seg"): Decimal("65.02"),
        ("Recife", "ter"): Decimal("15.00"),
        ("Recife", "dom"): Decimal("7.00"),
        ("São Paulo", "ter"): Decimal("40.00"),
    }


def test_date_by_hour_lists_every_day_of_the_period(store: Store) -> None:
    grid = _grid(store, "dia_count")
    assert grid.rows == PERIOD_DATES
    assert _cells(grid) == {
        ("13/05", "10"): 3,
        ("13/05", "14"): 1,
        ("14/05", "10"): 2,
        ("19/05", "23"): 1,
    }


def test_idle_minutes_per_hour_average_over_the_stores_selling_days(store: Store) -> None:
    grid = _grid(store, "ociosidade_por_hora_loja")
    assert grid.rows == ["loja-a", "loja-b", "loja-c"]
    # loja-a sold on 3 days; at 10h it had payments in 2 minutes on 13/05 and 1 on 14/05.
    loja_a = grid.values[0]
    assert loja_a[10] == pytest.approx(60 - 3 / 3)
    assert loja_a[23] == pytest.approx(60 - 1 / 3)
    assert [v for h, v in enumerate(loja_a) if h not in (10, 23)] == [60.0] * 22
    assert _cell(grid, "loja-b", "14") == 59.0
    assert _cell(grid, "loja-c", "10") == 59.0
    assert _cell(grid, "loja-c", "9") == 60.0


def test_idle_minutes_per_day_within_business_hours(store: Store) -> None:
    grid = _grid(store, "ociosidade_por_dia")
    assert grid.columns == PERIOD_DATES
    # loja-a on 13/05: open 10:00..10:04 (5 minutes), payments in 10:00 and 10:04 -> 3 idle.
    assert _cells(grid) == {
        ("loja-a", "13/05"): 3.0,
        ("loja-a", "14/05"): 0.0,
        ("loja-a", "19/05"): 0.0,
        ("loja-b", "13/05"): 0.0,
        ("loja-c", "14/05"): 0.0,
    }


def test_low_prices_with_an_explicit_threshold(store: Store) -> None:
    # Strictly below R$ 10,00: p4 (5,00) and p6 (7,00); p1 is exactly 10,00.
    grid = _grid(store, "precos_baixos_por_hora_loja", low_price_threshold=Decimal("10.00"))
    assert grid.low_price_threshold == Decimal("10.00")
    assert _cells(grid) == {
        ("loja-a", "10"): 0,
        ("loja-a", "23"): 1,
        ("loja-b", "14"): 1,
        ("loja-c", "10"): 0,
    }


def test_low_prices_default_to_the_10th_percentile(store: Store) -> None:
    # Amounts 500, 700, 1000, 1500, 2002, 3000, 4000: p10 = 500 + 0.6 * 200 = 620 centavos.
    grid = _grid(store, "precos_baixos_por_dia")
    assert grid.low_price_threshold == Decimal("6.20")
    assert _cells(grid)[("loja-b", "13/05")] == 1
    assert sum(v for v in _cells(grid).values()) == 1
    # loja-a alone: 700, 1000, 1500, 2002, 3000 -> p10 = 700 + 0.4 * 300 = 820: p6 is low.
    alone = _grid(store, "precos_baixos_por_dia", store_id="loja-a")
    assert alone.low_price_threshold == Decimal("8.20")
    assert _cells(alone) == {
        ("loja-a", "13/05"): 0,
        ("loja-a", "14/05"): 0,
        ("loja-a", "19/05"): 1,
    }


def test_confirmation_time_means(store: Store) -> None:
    by_city = _grid(store, "tempo_medio_por_hora_cidade")
    assert _cells(by_city) == {
        ("Recife", "10"): 4.25,  # (2 + 4 + 6 + 5) / 4
        ("Recife", "14"): 10.0,
        ("Recife", "23"): 1.0,
        ("São Paulo", "10"): 3.0,
    }
    by_day = _grid(store, "tempo_medio_por_dia")
    assert _cell(by_day, "loja-a", "13/05") == 4.0
    assert _cell(by_day, "loja-a", "14/05") == 5.0
    assert _cell(by_day, "loja-a", "15/05") is None


def test_mean_payments_per_day_in_each_hour(store: Store) -> None:
    by_store = _cells(_grid(store, "media_transacoes_por_hora_loja"))
    assert by_store == {
        ("loja-a", "10"): pytest.approx(4 / 3),
        ("loja-a", "23"): pytest.approx(1 / 3),
        ("loja-b", "14"): 1.0,
        ("loja-c", "10"): 1.0,
    }
    # Recife sold on 13/05, 14/05 and 19/05.
    by_city = _cells(_grid(store, "media_transacoes_por_hora_cidade"))
    assert by_city == {
        ("Recife", "10"): pytest.approx(4 / 3),
        ("Recife", "14"): pytest.approx(1 / 3),
        ("Recife", "23"): pytest.approx(1 / 3),
        ("São Paulo", "10"): 1.0,
    }


def test_minimums_and_totals_by_store_and_city(store: Store) -> None:
    assert _cells(_grid(store, "minimos_por_hora_cidade")) == {
        ("Recife", "10"): Decimal("10.00"),
        ("Recife", "14"): Decimal("5.00"),
        ("Recife", "23"): Decimal("7.00"),
        ("São Paulo", "10"): Decimal("40.00"),
    }
    totals = _grid(store, "pagamentos_por_dia")
    assert _cell(totals, "loja-a", "13/05") == Decimal("60.02")
    assert _cell(totals, "loja-a", "14/05") == Decimal("15.00")
    assert _cell(totals, "loja-b", "14/05") is None


def test_store_and_city_filters(store: Store) -> None:
    only_b = _grid(store, "loja_count", store_id="loja-b")
    assert only_b.rows == ["loja-b"]
    assert _cells(only_b) == {("loja-b", "seg"): 1}
    sao_paulo = _grid(store, "semana_count", city="São Paulo")
    assert _cells(sao_paulo) == {("ter", "10"): 1}
    assert _grid(store, "cidade_count", city="Manaus").rows == []
    both = _grid(store, "loja_count", store_id="loja-b", city="São Paulo")
    assert both.rows == []
    assert both.values == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 5, 12), date(2024, 5, 12), {("dom", "23"): 1}),  # q1 only
        (date(2024, 5, 20), date(2024, 5, 20), {("seg", "0"): 1}),  # q2 only
        (date(2024, 5, 19), date(2024, 5, 19), {("dom", "23"): 1}),  # p6: UTC says 20/05
        (date(2024, 5, 12), date(2024, 5, 20), None),
    ],
)
def test_period_is_local_dates_inclusive(
    store: Store, start: date, end: date, expected: dict[tuple[str, str], int] | None
) -> None:
    cells = _cells(_grid(store, "semana_count", start=start, end=end))
    if expected is None:
        assert sum(cells.values()) == 9  # the 7 in the week and both neighbours
    else:
        assert cells == expected


def test_an_empty_period_gives_blank_grids(store: Store) -> None:
    empty = date(2023, 1, 1)
    week = _grid(store, "semana_count", start=empty, end=empty)
    assert week.values == [[None] * 24] * 7
    low = _grid(store, "precos_baixos_por_hora_loja", start=empty, end=empty)
    assert (low.rows, low.values, low.low_price_threshold) == ([], [], None)


def test_every_heatmap_computes_with_its_documented_axes(store: Store) -> None:
    axis_labels = {
        "weekday": WEEKDAYS,
        "hour": HOURS,
        "date": PERIOD_DATES,
        "store": ["loja-a", "loja-b", "loja-c"],
        "city": ["Recife", "São Paulo"],
    }
    assert len(HEATMAPS) == 34
    for name, spec in HEATMAPS.items():
        grid = _grid(store, name)
        assert grid.spec is spec
        assert (grid.rows, grid.columns) == (axis_labels[spec.rows], axis_labels[spec.columns])
        assert [len(row) for row in grid.values] == [len(grid.columns)] * len(grid.rows)
        assert any(v is not None for row in grid.values for v in row), name
        assert (grid.start, grid.end) == (START, END)


def test_unknown_name_lists_the_valid_ones(store: Store) -> None:
    with pytest.raises(UnknownHeatmapError, match="semana_count") as caught:
        heatmap(store, "mapa_calor_semana_count", start=START, end=END)
    assert isinstance(caught.value, PulsoError)
    assert caught.value.name == "mapa_calor_semana_count"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": END, "end": START}, "swap start and end"),
        ({"low_price_threshold": Decimal("-1")}, "reais >= 0"),
        ({"low_price_threshold": Decimal("NaN")}, "reais >= 0"),
    ],
)
def test_bad_arguments_are_refused(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(HeatmapError, match=message):
        _grid(store, "precos_baixos_por_dia", **kwargs)


# --------------------------------------------------------------------------- all_heatmaps


def _assert_same_grid(shared: HeatmapGrid, single: HeatmapGrid) -> None:
    """Cell for cell; floats to 12 digits (sums of seconds may add up in another order)."""
    name = single.spec.name
    assert shared.spec is single.spec
    assert (shared.rows, shared.columns) == (single.rows, single.columns), name
    assert (shared.start, shared.end) == (single.start, single.end), name
    assert shared.low_price_threshold == single.low_price_threshold, name
    for row, shared_values, single_values in zip(
        single.rows, shared.values, single.values, strict=True
    ):
        for column, a, b in zip(single.columns, shared_values, single_values, strict=True):
            assert type(a) is type(b), (name, row, column, a, b)
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-12), (name, row, column)
            else:
                assert a == b, (name, row, column)


def _assert_same_as_single_grids(store: Store, **kwargs: Any) -> dict[str, HeatmapGrid]:
    grids = all_heatmaps(store, **kwargs)
    assert list(grids) == list(HEATMAPS)
    for name in HEATMAPS:
        _assert_same_grid(grids[name], heatmap(store, name, **kwargs))
    return grids


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"store_id": "loja-a"},
        {"city": "Recife"},
        {"low_price_threshold": Decimal("10.00")},
        {"store_id": "loja-c", "city": "São Paulo", "low_price_threshold": Decimal("0")},
        {"store_id": "loja-b", "city": "São Paulo"},  # nothing matches both
        {"start": date(2024, 5, 12), "end": date(2024, 5, 20)},  # the neighbours too
    ],
)
def test_all_heatmaps_equal_the_single_grids(store: Store, filters: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"start": START, "end": END, **filters}
    grids = _assert_same_as_single_grids(store, **kwargs)
    if "store_id" not in filters and "city" not in filters and "start" not in filters:
        # Not vacuous: the hand-computed cells above, through the shared path.
        assert _cells(grids["semana_count"]) == {
            ("seg", "10"): 3,
            ("seg", "14"): 1,
            ("ter", "10"): 2,
            ("dom", "23"): 1,
        }
        assert _cell(grids["ociosidade_por_dia"], "loja-a", "13/05") == 3.0


def test_all_heatmaps_of_an_empty_period_are_blank(store: Store) -> None:
    empty = date(2023, 1, 1)
    grids = _assert_same_as_single_grids(store, start=empty, end=empty)
    assert grids["semana_sum"].values == [[None] * 24] * 7
    assert grids["dia_count"].rows == ["01/01"]
    low = grids["precos_baixos_por_dia"]
    assert (low.rows, low.values, low.low_price_threshold) == ([], [], None)
    assert grids["ociosidade_por_hora_loja"].rows == []


def test_all_heatmaps_computes_only_the_names_asked_for(store: Store) -> None:
    names = [
        "ociosidade_por_dia",
        "semana_mean",
        "ociosidade_por_dia",
        "media_transacoes_por_hora_cidade",
    ]
    grids = all_heatmaps(store, start=START, end=END, names=names)
    assert list(grids) == ["ociosidade_por_dia", "semana_mean", "media_transacoes_por_hora_cidade"]
    for name, grid in grids.items():
        _assert_same_grid(grid, heatmap(store, name, start=START, end=END))
    one = all_heatmaps(store, start=START, end=END, names="precos_baixos_por_dia")
    assert list(one) == ["precos_baixos_por_dia"]
    assert one["precos_baixos_por_dia"].low_price_threshold == Decimal("6.20")
    assert all_heatmaps(store, start=START, end=END, names=[]) == {}


def test_all_heatmaps_refuses_what_heatmap_refuses(store: Store) -> None:
    with pytest.raises(UnknownHeatmapError, match="semana_count"):
        all_heatmaps(store, start=START, end=END, names=["semana_count", "semana_mode"])
    with pytest.raises(HeatmapError, match="swap start and end"):
        all_heatmaps(store, start=END, end=START)
    with pytest.raises(HeatmapError, match="reais >= 0"):
        all_heatmaps(store, start=START, end=END, low_price_threshold=Decimal("-0.01"))
    with pytest.raises(HeatmapError, match="swap start and end"):  # even with nothing to do
        all_heatmaps(store, start=END, end=START, names=[])


def test_all_heatmaps_from_several_threads_at_once(store: Store) -> None:
    # One query per call, no temporary tables: concurrent calls cannot see each other's.
    expected = all_heatmaps(store, start=START, end=END)
    only_a = all_heatmaps(store, start=START, end=END, store_id="loja-a")
    results: list[bool] = []

    def compute(store_id: str | None) -> None:
        for _ in range(3):
            grids = all_heatmaps(store, start=START, end=END, store_id=store_id)
            results.append(grids == (only_a if store_id else expected))

    threads = [threading.Thread(target=compute, args=(s,)) for s in (None, "loja-a", None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [True] * 9


# Edge cases, by UTC time: summer time ending (local 23:00-23:59 of 17/02/2018 happens twice:
# UTC-2, then UTC-3) and starting (local 00:00-00:59 of 04/11/2018 does not exist), a store
# selling in two cities in the same minute, a payment without a city, one without a store,
# one without a paid amount and one without a confirmation time.
# id, store, city, UTC time, paid cents, confirmation seconds
EDGE_ROWS: list[tuple[str, str | None, str | None, datetime, int | None, float | None]] = [
    ("e1", "loja-x", "Recife", datetime(2018, 2, 18, 1, 10, 20), 1000, 2.5),  # 23:10 UTC-2
    ("e2", "loja-x", "Recife", datetime(2018, 2, 18, 2, 10, 40), 1200, 3.25),  # 23:10 UTC-3
    ("e3", "loja-x", "Recife", datetime(2018, 2, 18, 2, 45), 800, None),  # 23:45 UTC-3
    ("e4", "loja-x", "Recife", datetime(2018, 2, 17, 12, 0, 5), 500, 1.0),  # 10:00
    ("e5", "loja-x", "Olinda", datetime(2018, 2, 17, 12, 0, 30), 700, 2.0),  # 10:00, elsewhere
    ("e6", "loja-y", None, datetime(2018, 2, 17, 15, 59, 59, 999999), 999, 4.0),
    ("e7", None, "Recife", datetime(2018, 2, 17, 16, 0), 300, 1.5),
    ("e8", "loja-y", "Olinda", datetime(2018, 2, 17, 17, 0), None, 2.0),
    ("e9", "loja-x", "Recife", datetime(2018, 11, 4, 2, 59), 650, 1.0),  # 03/11 23:59
    ("e10", "loja-x", "Recife", datetime(2018, 11, 4, 3, 30), 650, 1.0),  # 04/11 01:30 UTC-2
    ("e11", "loja-z", "São Paulo", datetime(2018, 11, 4, 4, 0), 2500, 9.75),
    ("e12", "loja-x", "Recife", datetime(2018, 11, 4, 4, 0, 59), 1550, 0.5),
]


def _edge_rows() -> list[dict[str, Any]]:
    return [
        payment(
            charge_id,
            created_at=utc.replace(tzinfo=UTC),
            store_id=store_id,
            city=city,
            amount_cents=cents or 100,
            paid_cents=cents,
            seconds=seconds,
        )
        for charge_id, store_id, city, utc, cents, seconds in EDGE_ROWS
    ]


@pytest.fixture(params=BACKENDS)
def edge_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with filled_store(request, tmp_path / "edge", _edge_rows()) as opened:
        yield opened


@pytest.mark.parametrize(
    ("start", "end", "filters"),
    [
        (date(2018, 2, 16), date(2018, 2, 18), {}),
        (date(2018, 11, 3), date(2018, 11, 5), {}),
        (date(2018, 2, 16), date(2018, 11, 5), {}),
        (date(2018, 2, 16), date(2018, 11, 5), {"store_id": "loja-x"}),
        (date(2018, 2, 16), date(2018, 11, 5), {"city": "Recife"}),
        # Only e8, whose amount is unknown: no default threshold, low-price cells of 0.
        (date(2018, 2, 17), date(2018, 2, 17), {"store_id": "loja-y", "city": "Olinda"}),
        (date(2018, 11, 4), date(2018, 11, 4), {"store_id": "loja-z"}),  # one amount
    ],
)
def test_all_heatmaps_equal_the_single_grids_on_edge_cases(
    edge_store: Store, start: date, end: date, filters: dict[str, Any]
) -> None:
    _assert_same_as_single_grids(edge_store, start=start, end=end, **filters)


def test_the_hour_repeated_when_summer_time_ended_is_one_wall_clock_hour(
    edge_store: Store,
) -> None:
    grids = all_heatmaps(edge_store, start=date(2018, 2, 17), end=date(2018, 2, 17))
    # loja-x on 17/02: minutes 10:00 (two cities), 23:10 (twice: UTC-2 and UTC-3) and 23:45;
    # open 10:00..23:45 = 826 minutes, 3 of them active.
    assert _cell(grids["ociosidade_por_dia"], "loja-x", "17/02") == 823.0
    per_hour = grids["ociosidade_por_hora_loja"]
    assert _cell(per_hour, "loja-x", "23") == 58.0
    assert _cell(per_hour, "loja-x", "10") == 59.0
    assert _cell(grids["dia_count"], "17/02", "23") == 3
    assert _cell(grids["semana_count"], "sáb", "23") == 3
    assert _cells(grids["loja_count"]) == {("loja-x", "sáb"): 5, ("loja-y", "sáb"): 2}
    assert grids["cidade_count"].rows == ["Olinda", "Recife"]  # no row for the missing city
    assert _cell(grids["loja_sum"], "loja-y", "sáb") == Decimal("9.99")  # e8 paid nothing known
    assert _cell(grids["tempo_medio_por_dia"], "loja-x", "17/02") == pytest.approx(8.75 / 4)
