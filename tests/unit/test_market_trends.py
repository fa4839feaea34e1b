"""Trends and top-N entries computed by hand on a small history (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pulso.domain.products import ProductSnapshot
from pulso.market.alerts import KIND, alert_id, entry_alert, top_n_entries
from pulso.market.trends import category_trends, rank_velocity

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def snap(product: str, position: int, at: datetime, price: str = "10.00") -> ProductSnapshot:
    return ProductSnapshot(
        site="MLB",
        category_id="MLB1051",
        product_id=product,
        kind="ITEM",
        position=position,
        title=f"Produto {product}",
        taken_at=at,
        price=Decimal(price),
    )


# Day 0: A1 B2 C3 D4      Day 1: B1 A2 D3 E4      Day 2: B1 D2 A3 E4
#   A: 1 → 3, fell 2;  B: 2 → 1, rose 1;  C: left;  D: 4 → 2, rose 2;  E: new
HISTORY = [
    *(snap(p, n, T0) for n, p in enumerate("ABCD", 1)),
    *(snap(p, n, T0 + DAY) for n, p in enumerate("BADE", 1)),
    *(
        snap(p, n, T0 + 2 * DAY, price="9.50" if p == "D" else "10.00")
        for n, p in enumerate("BDAE", 1)
    ),
]


def test_rising_falling_entrants_and_leavers() -> None:
    (report,) = category_trends(HISTORY)
    assert (report.category_id, report.snapshots) == ("MLB1051", 3)
    assert (report.first_at, report.last_at) == (T0, T0 + 2 * DAY)
    by_id = {r.product_id: r for r in report.rows}
    assert (by_id["A"].status, by_id["A"].change) == ("falling", -2)
    assert (by_id["B"].status, by_id["B"].change) == ("rising", 1)
    assert (by_id["D"].status, by_id["D"].change) == ("rising", 2)
    assert (by_id["E"].status, by_id["E"].position_before, by_id["E"].position_now) == (
        "new",
        None,
        4,
    )
    assert (by_id["C"].status, by_id["C"].position_before, by_id["C"].position_now) == (
        "left",
        3,
        None,
    )
    assert [r.product_id for r in report.rising] == ["D", "B"]  # biggest climb first
    assert [r.product_id for r in report.falling] == ["A"]
    # today's ranking first, the leavers after
    assert [r.product_id for r in report.rows] == ["B", "D", "A", "E", "C"]
    assert (by_id["D"].price_before, by_id["D"].price_now) == (Decimal("10.00"), Decimal("9.50"))


def test_rank_velocity_is_the_least_squares_slope_in_positions_per_day() -> None:
    (report,) = category_trends(HISTORY)
    by_id = {r.product_id: r for r in report.rows}
    # D at 4, 3, 2 on days 0, 1, 2: climbing 1 position a day
    assert by_id["D"].velocity_per_day == pytest.approx(1.0)
    # A at 1, 2, 3: falling 1 a day
    assert by_id["A"].velocity_per_day == pytest.approx(-1.0)
    # B at 2, 1, 1: slope of (2,1,1) over (0,1,2) is -0.5 → +0.5 positions a day
    assert by_id["B"].velocity_per_day == pytest.approx(0.5)
    # E at 4, 4 on days 1 and 2: no move; C seen once: no velocity
    assert by_id["E"].velocity_per_day == 0.0
    assert by_id["C"].velocity_per_day is None


def test_velocity_over_half_a_day() -> None:
    points = [(T0, 10), (T0 + timedelta(hours=12), 4)]
    assert rank_velocity(points) == pytest.approx(12.0)  # 6 positions in half a day
    assert rank_velocity([(T0, 3), (T0, 5)]) is None  # one moment is no movement


def test_a_single_snapshot_is_all_steady() -> None:
    (report,) = category_trends([snap("A", 1, T0), snap("B", 2, T0)])
    assert {r.status for r in report.rows} == {"steady"}
    assert {r.change for r in report.rows} == {None}


def test_categories_are_reported_apart() -> None:
    other = ProductSnapshot(
        site="MLB",
        category_id="MLB1648",
        product_id="X",
        kind="PRODUCT",
        position=1,
        title="Notebook",
        taken_at=T0,
    )
    reports = category_trends([*HISTORY, other])
    assert [r.category_id for r in reports] == ["MLB1051", "MLB1648"]


def test_top_n_entries() -> None:
    previous = {"A": 1, "B": 2, "C": 3, "D": 4}
    now = [snap("B", 1, T0), snap("D", 2, T0), snap("A", 3, T0), snap("E", 4, T0)]
    assert [s.product_id for s in top_n_entries(previous, now, 3)] == ["D"]  # 4 → 2
    assert [s.product_id for s in top_n_entries(previous, now, 4)] == ["E"]  # new at 4
    assert top_n_entries(None, now, 3) == []  # the first snapshot is the baseline
    assert top_n_entries(previous, now, 0) == []  # watching off


def test_the_alert_is_in_portuguese_and_its_id_is_stable() -> None:
    entered = snap("D", 2, T0, price="1299.90")
    alert = entry_alert(entered, 3, previous_position=4)
    assert alert.kind == KIND == "market.top_n_entry"
    assert alert.message == (
        "Mercado Livre: «Produto D» entrou no top 3 da categoria MLB1051 — agora em 2º lugar "
        "(antes 4º), por R$ 1.299,90. Ranking de 20/11/2026 09:00."
    )
    assert alert.details["previous_position"] == "4" and alert.details["price"] == "1299.90"
    assert alert.alert_id == alert_id(snap("D", 2, T0)) != alert_id(snap("D", 2, T0 + DAY))
    assert len(alert.alert_id) <= 64
    new = entry_alert(snap("E", 1, T0), 3, previous_position=None)
    assert "fora do ranking anterior" in new.message
