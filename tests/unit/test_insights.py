"""The written reading: deterministic Brazilian-Portuguese bullets from hand-made KPIs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from pulso.analytics.heatmaps import HEATMAPS, HeatmapGrid
from pulso.analytics.insights import Insight, Reading, write_reading
from pulso.analytics.kpis import (
    CityConfirmation,
    DayPartRow,
    KpiRow,
    PeriodKpis,
    SpreadRow,
)

START, END = date(2024, 5, 13), date(2024, 5, 19)  # Monday to Sunday
HOURS = [str(h) for h in range(24)]


def _row(label: str, payments: int, revenue: str) -> KpiRow:
    money = Decimal(revenue)
    ticket = (money / payments).quantize(Decimal("0.01")) if payments else None
    return KpiRow(label, payments, money, ticket)


def _kpis(**overrides: Any) -> PeriodKpis:
    """100 payments, R$ 5.000,00; peak at 18h (40) and on Friday 17/05 (30)."""
    hours = {9: (10, "400.00"), 12: (30, "1500.00"), 18: (40, "2100.00"), 21: (20, "1000.00")}
    days = {0: 10, 1: 15, 2: 15, 3: 10, 4: 30, 5: 12, 6: 8}
    values: dict[str, Any] = {
        "start": START,
        "end": END,
        "payments": 100,
        "revenue": Decimal("5000.00"),
        "average_ticket": Decimal("50.00"),
        "failed": 0,
        "expired": 0,
        "stores": 3,
        "cities": 2,
        "confirmation_mean_s": 10.0,
        "confirmation_p95_s": 25.0,
        "by_hour": [_row(f"{h:02d}h", *hours.get(h, (0, "0.00"))) for h in range(24)],
        "by_day": [_row(f"{13 + i}/05/2024", n, str(50 * n)) for i, n in sorted(days.items())],
        "by_city": [_row("Recife", 70, "3500.00"), _row("Manaus", 30, "1500.00")],
        "by_store": [
            _row("loja-a", 50, "2500.00"),
            _row("loja-b", 30, "1500.00"),
            _row("loja-c", 20, "1000.00"),
        ],
        "by_day_part": [
            DayPartRow("madrugada", 0, None, 360.0),
            DayPartRow("manhã", 10, Decimal("40.00"), 300.0),
            DayPartRow("tarde", 30, Decimal("50.00"), 250.0),
            DayPartRow("noite", 60, Decimal("51.67"), 200.0),
        ],
        "confirmation_by_city": [
            CityConfirmation("Recife", 70, 10.5, 26.0),
            CityConfirmation("Manaus", 30, 8.8, 20.0),
        ],
        "hourly_spread": [
            SpreadRow(f"{h:02d}h", 0, 12 if h == 18 else 5, h / 7) for h in range(24)
        ],
        "previous": None,
    }
    values.update(overrides)
    return PeriodKpis(**values)


def _previous(payments: int, revenue: str) -> PeriodKpis:
    money = Decimal(revenue)
    return _kpis(
        start=date(2024, 5, 6),
        end=date(2024, 5, 12),
        payments=payments,
        revenue=money,
        average_ticket=(money / payments).quantize(Decimal("0.01")) if payments else None,
    )


def _texts(reading: Reading, kind: str) -> list[str]:
    return [i.text for i in reading.insights if i.kind == kind]


def _grid(name: str, rows: dict[str, dict[int, float | int]], **extra: Any) -> HeatmapGrid:
    """A store × hour grid with the given cells (the others blank)."""
    return HeatmapGrid(
        spec=HEATMAPS[name],
        rows=list(rows),
        columns=HOURS,
        values=[[cells.get(h) for h in range(24)] for cells in rows.values()],
        start=START,
        end=END,
        **extra,
    )


def test_summary_and_peaks_are_named() -> None:
    reading = write_reading(_kpis())
    assert reading.title == "Leitura de 13/05/2024 a 19/05/2024"
    assert reading.source == "deterministic"
    assert _texts(reading, "summary") == [
        "100 pagamentos confirmados somaram R$ 5.000,00 (ticket médio R$ 50,00) em 3 lojas de "
        "2 cidades; loja-a respondeu por 50,0% do faturamento."
    ]
    assert _texts(reading, "peak") == [
        "Pico às 18h: 40 pagamentos (40,0% do total), até 12 num mesmo dia; o dia mais "
        "movimentado foi sexta-feira, 17/05/2024, com 30 pagamentos e R$ 1.500,00."
    ]


def test_a_single_day_names_the_peak_hour_only() -> None:
    one_day = _kpis(end=START, by_day=[_row("13/05/2024", 100, "5000.00")])
    [peak] = _texts(write_reading(one_day), "peak")
    assert peak == "Pico às 18h: 40 pagamentos (40,0% do total)."


def test_week_over_week_changes_in_percent() -> None:
    # Revenue 4.000 -> 5.000 (+25%); payments 125 -> 100 (-20%); ticket 32,00 -> 50,00
    # (+56,25%, shown half even like every percentage of the report).
    reading = write_reading(_kpis(previous=_previous(125, "4000.00")))
    assert _texts(reading, "change") == [
        "Frente à semana anterior: faturamento +25,0% (R$ 4.000,00 → R$ 5.000,00), "
        "pagamentos -20,0% (125 → 100) e ticket médio +56,2% (R$ 32,00 → R$ 50,00)."
    ]


def test_change_names_the_previous_day_or_days() -> None:
    day = _kpis(end=START, previous=_previous(100, "5000.00"))
    [change] = _texts(write_reading(day), "change")
    assert change.startswith("Frente ao dia anterior: faturamento 0,0% (")
    three = _kpis(end=date(2024, 5, 15), previous=_previous(50, "5000.00"))
    [change] = _texts(write_reading(three), "change")
    assert change.startswith("Frente aos 3 dias anteriores: faturamento 0,0%")
    assert "pagamentos +100,0% (50 → 100)" in change


@pytest.mark.parametrize("previous", [None, "empty"])
def test_no_change_without_a_previous_period_with_payments(previous: str | None) -> None:
    before = _previous(0, "0.00") if previous else None
    reading = write_reading(_kpis(previous=before))
    assert _texts(reading, "change") == []
    assert "anterior" not in reading.as_text()


def test_an_empty_period_is_one_honest_sentence() -> None:
    empty = _kpis(payments=0, revenue=Decimal("0.00"), average_ticket=None, expired=2)
    reading = write_reading(empty)
    assert reading.insights == (
        Insight(
            "empty",
            "Nenhum pagamento confirmado de 13/05/2024 a 19/05/2024; 2 cobranças expiraram.",
        ),
    )
    one_day = _kpis(end=START, payments=0, revenue=Decimal("0.00"), average_ticket=None)
    assert write_reading(one_day).as_text() == (
        "Leitura de 13/05/2024\n\n• Nenhum pagamento confirmado em 13/05/2024."
    )


def test_slow_confirmation_by_city_against_the_overall_mean() -> None:
    cities = [
        CityConfirmation("Belém", 2, 40.0, 60.0),  # too few payments to judge
        CityConfirmation("Recife", 20, 15.0, 30.0),  # 50% above 10 s
        CityConfirmation("Manaus", 40, 12.4, 20.0),  # under 1.25 x
        CityConfirmation("Natal", 38, 6.0, 9.0),
    ]
    [text] = _texts(write_reading(_kpis(confirmation_by_city=cities)), "confirmation")
    assert text == (
        "Confirmação lenta: Recife com 15,0 s em média (p95 30,0 s, 50,0% acima); "
        "a média geral é 10,0 s."
    )


def test_no_slow_city_gives_the_overall_time() -> None:
    [text] = _texts(write_reading(_kpis()), "confirmation")
    assert text == "Confirmação em 10,0 s em média (p95 25,0 s), sem cidade lenta."
    untimed = _kpis(confirmation_mean_s=None, confirmation_p95_s=None, confirmation_by_city=[])
    assert _texts(write_reading(untimed), "confirmation") == []


def test_idle_slots_worth_closing_from_the_grids() -> None:
    idle = _grid(
        "ociosidade_por_hora_loja",
        {
            # loja-a: busiest at 10h (30 minutes with a payment); 07h nearly idle (2 minutes);
            # 08h not idle enough; 22h never sold (closed).
            "loja-a": {7: 58.0, 8: 50.0, 10: 30.0, 22: 60.0},
            # loja-b sells only at 14h: its one open hour is never proposed for closing.
            "loja-b": {14: 59.0, 15: 60.0},
            "loja-c": {6: 59.5, 9: 56.0, 12: 20.0},
        },
    )
    per_day = _grid(
        "media_transacoes_por_hora_loja",
        {"loja-a": {7: 0.5, 10: 12.0}, "loja-b": {14: 1.0}, "loja-c": {6: 0.2, 9: 6.5}},
    )
    reading = write_reading(_kpis(), {idle.spec.name: idle, per_day.spec.name: per_day})
    # loja-c 09h has 4 minutes with a payment (<= 25% of 40) but 6,5 payments a day: too busy.
    assert _texts(reading, "idle") == [
        "Horários quase parados, candidatos a fechar ou reduzir equipe: loja-c às 06h "
        "(59,5 min ociosos por hora, 0,2 pagamento/dia); loja-a às 07h (58,0 min ociosos por "
        "hora, 0,5 pagamento/dia)."
    ]
    alone = write_reading(_kpis(), {idle.spec.name: idle})
    [text] = _texts(alone, "idle")
    assert "loja-c às 09h (56,0 min ociosos por hora)" in text


def test_idle_part_of_the_day_without_the_grid() -> None:
    parts = [
        DayPartRow("madrugada", 2, Decimal("20.00"), 355.0),  # 2% of payments, 98.6% idle
        DayPartRow("manhã", 18, Decimal("40.00"), 300.0),
        DayPartRow("tarde", 30, Decimal("50.00"), 250.0),
        DayPartRow("noite", 50, Decimal("51.67"), 200.0),
    ]
    assert _texts(write_reading(_kpis(by_day_part=parts)), "idle") == [
        "Madrugada: só 2 pagamentos (2,0% do total) e 355,0 min ociosos por loja e dia; avalie "
        "fechar ou reduzir a equipe nesse turno."
    ]
    assert _texts(write_reading(_kpis()), "idle") == []  # madrugada had no payment at all


def test_low_price_concentration() -> None:
    low = _grid(
        "precos_baixos_por_hora_loja",
        {"loja-a": {10: 6, 11: 0}, "loja-b": {14: 1}, "loja-c": {10: 1, 20: 0}},
        low_price_threshold=Decimal("5.00"),
    )
    [text] = _texts(write_reading(_kpis(), {low.spec.name: low}), "low_price")
    assert text == (
        "Valores baixos (abaixo de R$ 5,00): 8 pagamentos, 75,0% em loja-a, com pico às 10h (7)."
    )


def test_low_prices_spread_evenly_name_no_store() -> None:
    low = _grid(
        "precos_baixos_por_hora_loja",
        {"loja-a": {9: 2}, "loja-b": {9: 1, 15: 1}, "loja-c": {15: 2}},
        low_price_threshold=Decimal("12.34"),
    )
    [text] = _texts(write_reading(_kpis(), {low.spec.name: low}), "low_price")
    # 09h and 15h tie at 3: the earlier hour is named.
    assert text == (
        "Valores baixos (abaixo de R$ 12,34): 6 pagamentos, espalhados por 3 lojas, "
        "com pico às 09h (3)."
    )
    none = _grid("precos_baixos_por_hora_loja", {"loja-a": {9: 0}}, low_price_threshold=None)
    assert _texts(write_reading(_kpis(), {none.spec.name: none}), "low_price") == []


def test_failures_and_expired_charges() -> None:
    reading = write_reading(_kpis(payments=8, failed=1, expired=2))
    assert _texts(reading, "failures") == [
        "1 cobrança falhou e 2 expiraram: 27,3% das 11 cobranças do período não viraram pagamento."
    ]
    only_failed = write_reading(_kpis(failed=3))
    assert _texts(only_failed, "failures")[0].startswith("3 cobranças falharam: 2,9% das 103")
    assert _texts(write_reading(_kpis()), "failures") == []


def test_reading_is_short_deterministic_and_renders_as_text_and_markdown() -> None:
    kpis = _kpis(previous=_previous(90, "4500.00"), failed=2, expired=1)
    low = _grid(
        "precos_baixos_por_hora_loja", {"loja_a*": {10: 3}}, low_price_threshold=Decimal("9.90")
    )
    reading = write_reading(kpis, {low.spec.name: low})
    assert reading == write_reading(kpis, {low.spec.name: low})
    assert 5 <= len(reading.insights) <= 8
    text = reading.as_text()
    assert text.startswith("Leitura de 13/05/2024 a 19/05/2024\n\n• 100 pagamentos")
    assert text.count("\n• ") == len(reading.insights)
    markdown = reading.as_markdown()
    assert markdown.startswith("**Leitura de 13/05/2024 a 19/05/2024**\n\n- 100 pagamentos")
    assert "em loja\\_a\\*" in markdown
    assert "loja_a*" in text
