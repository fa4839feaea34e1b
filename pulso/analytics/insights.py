"""The report's written reading: a few Brazilian-Portuguese bullets computed from the KPIs.

Deterministic: the same KPIs (and grids) always give the same text. Each bullet says one thing
worth acting on, in this order, and is left out when there is nothing to say:

- ``summary``: payments, revenue, ticket médio, stores and cities, the leading store's share;
- ``change``: revenue, payments and ticket médio against the previous period of the same
  length (left out when that period had no payment);
- ``peak``: the busiest hour (and the most it had in one day) and the busiest day;
- ``idle``: up to three store-hours that are nearly idle but not closed, from the
  ``ociosidade_por_hora_loja`` grid: some payment there, yet at least ``IDLE_SLOT_MIN_MINUTES``
  idle minutes of 60 on the days the store sold, and minutes with a payment at most
  ``IDLE_SLOT_MAX_SHARE_OF_PEAK`` of the store's busiest hour's (and when
  ``media_transacoes_por_hora_loja`` is given, at most ``IDLE_SLOT_MAX_PAYMENTS_PER_DAY``
  payments a day); without the grid, a part of the day with few payments and almost all of its
  minutes idle;
- ``low_price``: where the low-price payments concentrate: the store with most of them (when
  it has ``LOW_PRICE_CONCENTRATED`` times its even share) and the hour or date with most, from
  ``precos_baixos_por_hora_loja`` or else ``precos_baixos_por_dia``;
- ``confirmation``: cities whose mean confirmation time is ``SLOW_CITY_FACTOR`` times the
  overall mean or more (with at least ``SLOW_CITY_MIN_PAYMENTS`` timed payments), else the
  overall mean;
- ``failures``: charges that failed or expired, and their share of the period's charges.

An empty period gives one sentence saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal

from pulso.analytics.heatmaps import HeatmapGrid
from pulso.analytics.kpis import DAY_PARTS, PeriodKpis
from pulso.domain.money import format_brl
from pulso.domain.ptbr import (
    format_count,
    format_date,
    format_day_heading,
    format_decimal,
    format_duration_s,
    format_percent,
    format_period,
)

InsightKind = Literal[
    "summary", "change", "peak", "idle", "low_price", "confirmation", "failures", "empty", "text"
]
ReadingSource = Literal["deterministic", "llm"]

IDLE_SLOT_MIN_MINUTES: Final = 50.0
IDLE_SLOT_MAX_PAYMENTS_PER_DAY: Final = 5.0
IDLE_SLOT_MAX_SHARE_OF_PEAK: Final = 0.25
IDLE_SLOTS_SHOWN: Final = 3
IDLE_PART_MAX_SHARE: Final = 0.10
"""Without the idle grid: a part of the day with at most this share of the payments..."""
IDLE_PART_MIN_SHARE_IDLE: Final = 0.90
"""...and at least this share of its minutes idle is pointed at."""
LOW_PRICE_CONCENTRATED: Final = 2.0
"""A store is named when it has this many times its even share of the low-price payments."""
SLOW_CITY_FACTOR: Final = 1.25
SLOW_CITY_MIN_PAYMENTS: Final = 5
SLOW_CITIES_SHOWN: Final = 2

_PART_MINUTES: Final = tuple((last - first) * 60 for _, first, last in DAY_PARTS)
_MARKDOWN_SPECIAL: Final = str.maketrans({c: f"\\{c}" for c in "\\`*_[]"})


@dataclass(frozen=True, slots=True)
class Insight:
    """One bullet of the reading."""

    kind: InsightKind
    text: str


@dataclass(frozen=True, slots=True)
class Reading:
    """The written reading: a title and a few bullets, and who wrote them."""

    title: str
    insights: tuple[Insight, ...]
    source: ReadingSource = "deterministic"

    def as_text(self) -> str:
        """Plain text: the title, a blank line, one ``• `` bullet per line."""
        return "\n".join([self.title, "", *(f"• {i.text}" for i in self.insights)])

    def as_markdown(self) -> str:
        """Markdown: the title in bold and a ``- `` list (Markdown characters escaped)."""
        title = f"**{self.title.translate(_MARKDOWN_SPECIAL)}**"
        bullets = (f"- {i.text.translate(_MARKDOWN_SPECIAL)}" for i in self.insights)
        return "\n".join([title, "", *bullets])


def write_reading(kpis: PeriodKpis, grids: Mapping[str, HeatmapGrid] | None = None) -> Reading:
    """The deterministic reading of ``kpis`` (``grids``: heatmaps by name, for idle slots and
    low prices)."""
    title = f"Leitura de {format_period(kpis.start, kpis.end)}"
    if not kpis.payments:
        return Reading(title, (_empty(kpis),))
    grids = grids or {}
    found = [
        _summary(kpis),
        _change(kpis),
        _peak(kpis),
        _idle(kpis, grids),
        _low_price(grids),
        _confirmation(kpis),
        _failures(kpis),
    ]
    return Reading(title, tuple(i for i in found if i is not None))


# --------------------------------------------------------------------------- the bullets


def _empty(kpis: PeriodKpis) -> Insight:
    text = f"Nenhum pagamento confirmado {_period_phrase(kpis.start, kpis.end)}"
    outcomes = _outcomes_phrase(kpis.failed, kpis.expired)
    return Insight("empty", f"{text}; {outcomes}." if outcomes else f"{text}.")


def _summary(kpis: PeriodKpis) -> Insight:
    text = (
        f"{_count(kpis.payments, 'pagamento confirmado', 'pagamentos confirmados')} somaram "
        f"{format_brl(kpis.revenue)} (ticket médio {_brl(kpis.average_ticket)}) em "
        f"{_count(kpis.stores, 'loja', 'lojas')} de {_count(kpis.cities, 'cidade', 'cidades')}"
    )
    if kpis.stores > 1 and kpis.by_store and kpis.revenue:
        top = kpis.by_store[0]
        share = _percent(top.revenue, kpis.revenue)
        text += f"; {top.label} respondeu por {share} do faturamento"
    return Insight("summary", text + ".")


def _change(kpis: PeriodKpis) -> Insight | None:
    before = kpis.previous
    if before is None or not before.payments:
        return None
    parts = [
        f"faturamento {_change_pct(kpis.revenue, before.revenue)} "
        f"({format_brl(before.revenue)} → {format_brl(kpis.revenue)})",
        f"pagamentos {_change_pct(kpis.payments, before.payments)} "
        f"({format_count(before.payments)} → {format_count(kpis.payments)})",
    ]
    if kpis.average_ticket is not None and before.average_ticket is not None:
        parts.append(
            f"ticket médio {_change_pct(kpis.average_ticket, before.average_ticket)} "
            f"({format_brl(before.average_ticket)} → {format_brl(kpis.average_ticket)})"
        )
    return Insight("change", f"Frente {_previous_name(kpis)}: {_join(parts)}.")


def _peak(kpis: PeriodKpis) -> Insight | None:
    if not kpis.by_hour:
        return None
    hour = max(kpis.by_hour, key=lambda r: r.payments)  # the earliest of equal hours
    text = (
        f"Pico às {hour.label}: {_count(hour.payments, 'pagamento', 'pagamentos')} "
        f"({_percent(hour.payments, kpis.payments)} do total)"
    )
    spread = next((s for s in kpis.hourly_spread if s.label == hour.label), None)
    if kpis.days > 1 and spread is not None and spread.maximum > 1:
        text += f", até {format_count(spread.maximum)} num mesmo dia"
    if kpis.days > 1 and kpis.by_day:
        day = max(kpis.by_day, key=lambda r: r.payments)
        heading = format_day_heading(datetime.strptime(day.label, "%d/%m/%Y").date())
        text += (
            f"; o dia mais movimentado foi {heading[0].lower()}{heading[1:]}, com "
            f"{_count(day.payments, 'pagamento', 'pagamentos')} e {format_brl(day.revenue)}"
        )
    return Insight("peak", text + ".")


def _idle(kpis: PeriodKpis, grids: Mapping[str, HeatmapGrid]) -> Insight | None:
    idle = grids.get("ociosidade_por_hora_loja")
    if idle is not None:
        return _idle_slots(idle, grids.get("media_transacoes_por_hora_loja"))
    return _idle_part(kpis)


def _idle_slots(idle: HeatmapGrid, per_day: HeatmapGrid | None) -> Insight | None:
    means = _cells(per_day) if per_day is not None else {}
    cells = _cells(idle)
    peak_active: dict[str, float] = {}  # each store's busiest hour, in minutes with a payment
    for (store, _), minutes in cells.items():
        peak_active[store] = max(peak_active.get(store, 0.0), 60 - float(minutes))
    slots = sorted(
        (-float(minutes), store, int(hour))
        for (store, hour), minutes in cells.items()
        if _worth_closing(float(minutes), peak_active[store], means.get((store, hour)))
    )
    if not slots:
        return None
    described = []
    for minus_idle, store, hour in slots[:IDLE_SLOTS_SHOWN]:
        detail = f"{format_decimal(-minus_idle)} min ociosos por hora"
        mean = means.get((store, str(hour)))
        if mean is not None:
            noun = "pagamento" if float(mean) < 2 else "pagamentos"
            detail += f", {format_decimal(float(mean))} {noun}/dia"
        described.append(f"{store} às {hour:02d}h ({detail})")
    text = "Horários quase parados, candidatos a fechar ou reduzir equipe: "
    return Insight("idle", text + "; ".join(described) + ".")


def _worth_closing(idle_minutes: float, peak_active: float, mean: float | Decimal | None) -> bool:
    """Open (some sale) but nearly idle, and far quieter than the store's busiest hour."""
    active = 60 - idle_minutes
    return (
        0 < active <= IDLE_SLOT_MAX_SHARE_OF_PEAK * peak_active
        and idle_minutes >= IDLE_SLOT_MIN_MINUTES
        and (mean is None or float(mean) <= IDLE_SLOT_MAX_PAYMENTS_PER_DAY)
    )


def _idle_part(kpis: PeriodKpis) -> Insight | None:
    candidates = []
    for part, minutes in zip(kpis.by_day_part, _PART_MINUTES, strict=False):
        idle = part.idle_minutes_per_store_day
        quiet = 0 < part.payments <= IDLE_PART_MAX_SHARE * kpis.payments
        if quiet and idle is not None and idle >= IDLE_PART_MIN_SHARE_IDLE * minutes:
            candidates.append((idle / minutes, part.label, part.payments, idle))
    if not candidates:
        return None
    _, label, payments, idle = max(candidates)
    return Insight(
        "idle",
        f"{label.capitalize()}: só {_count(payments, 'pagamento', 'pagamentos')} "
        f"({_percent(payments, kpis.payments)} do total) e {format_decimal(idle)} min ociosos "
        "por loja e dia; avalie fechar ou reduzir a equipe nesse turno.",
    )


def _low_price(grids: Mapping[str, HeatmapGrid]) -> Insight | None:
    grid = grids.get("precos_baixos_por_hora_loja") or grids.get("precos_baixos_por_dia")
    if grid is None or grid.low_price_threshold is None:
        return None
    by_row, by_column = _sums(grid)
    total = sum(by_row.values())
    if not total:
        return None
    row = min(by_row, key=lambda k: (-by_row[k], k))
    column = min(by_column, key=lambda k: (-by_column[k], grid.columns.index(k)))
    when = f"às {int(column):02d}h" if grid.spec.columns == "hour" else f"em {column}"
    where = f"{_percent(by_row[row], total)} em {row}"
    if len(by_row) > 1 and by_row[row] < LOW_PRICE_CONCENTRATED * total / len(by_row):
        where = f"espalhados por {_count(len(by_row), 'loja', 'lojas')}"
    return Insight(
        "low_price",
        f"Valores baixos (abaixo de {format_brl(grid.low_price_threshold)}): "
        f"{_count(total, 'pagamento', 'pagamentos')}, {where}, com pico {when} "
        f"({format_count(by_column[column])}).",
    )


def _confirmation(kpis: PeriodKpis) -> Insight | None:
    overall = kpis.confirmation_mean_s
    if overall is None:
        return None
    slow = [
        c
        for c in kpis.confirmation_by_city
        if c.payments >= SLOW_CITY_MIN_PAYMENTS and c.mean_s >= SLOW_CITY_FACTOR * overall
    ]
    if not slow:
        p95 = f" (p95 {_seconds(kpis.confirmation_p95_s)})" if kpis.confirmation_p95_s else ""
        return Insight(
            "confirmation", f"Confirmação em {_seconds(overall)} em média{p95}, sem cidade lenta."
        )
    cities = [
        f"{c.city} com {_seconds(c.mean_s)} em média (p95 {_seconds(c.p95_s)}, "
        f"{_percent(c.mean_s - overall, overall)} acima)"
        for c in slow[:SLOW_CITIES_SHOWN]
    ]
    return Insight(
        "confirmation",
        f"Confirmação lenta: {_join(cities)}; a média geral é {_seconds(overall)}.",
    )


def _failures(kpis: PeriodKpis) -> Insight | None:
    outcomes = _outcomes_phrase(kpis.failed, kpis.expired)
    if not outcomes:
        return None
    charges = kpis.payments + kpis.failed + kpis.expired
    share = _percent(kpis.failed + kpis.expired, charges)
    return Insight(
        "failures",
        f"{outcomes[0].upper()}{outcomes[1:]}: {share} das "
        f"{_count(charges, 'cobrança', 'cobranças')} do período não viraram pagamento.",
    )


# --------------------------------------------------------------------------- wording


def _count(n: int, singular: str, plural: str) -> str:
    return f"{format_count(n)} {singular if n == 1 else plural}"


def _brl(amount: Decimal | None) -> str:
    return "—" if amount is None else format_brl(amount)


def _percent(part: float | Decimal, whole: float | Decimal) -> str:
    return format_percent(100 * float(part) / float(whole))


def _change_pct(now: float | Decimal, before: float | Decimal) -> str:
    return format_percent(100 * (float(now) - float(before)) / float(before), signed=True)


def _seconds(seconds: float | None) -> str:
    if seconds is not None and seconds < 60:
        return f"{format_decimal(seconds)} s"
    return format_duration_s(seconds)


def _join(parts: list[str]) -> str:
    """``a``, ``a e b``, ``a, b e c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} e {parts[-1]}"


def _period_phrase(start: date, end: date) -> str:
    return f"em {format_date(start)}" if start == end else f"de {format_period(start, end)}"


def _previous_name(kpis: PeriodKpis) -> str:
    if kpis.days == 1:
        return "ao dia anterior"
    if kpis.days == 7:
        return "à semana anterior"
    return f"aos {kpis.days} dias anteriores"


def _outcomes_phrase(failed: int, expired: int) -> str:
    """``1 cobrança falhou e 2 expiraram`` (empty when both are zero)."""
    parts = []
    if failed:
        parts.append(_count(failed, "cobrança falhou", "cobranças falharam"))
    if expired:
        verb = "expirou" if expired == 1 else "expiraram"
        parts.append(
            f"{format_count(expired)} {verb}"
            if failed
            else _count(expired, "cobrança expirou", "cobranças expiraram")
        )
    return " e ".join(parts)


# --------------------------------------------------------------------------- grids


def _cells(grid: HeatmapGrid) -> dict[tuple[str, str], float | Decimal]:
    """The grid's non-blank cells by (row, column) label."""
    return {
        (row, column): value
        for row, values in zip(grid.rows, grid.values, strict=True)
        for column, value in zip(grid.columns, values, strict=True)
        if value is not None
    }


def _sums(grid: HeatmapGrid) -> tuple[dict[str, int], dict[str, int]]:
    """A count grid's totals per row and per column."""
    by_row: dict[str, int] = {}
    by_column: dict[str, int] = {}
    for (row, column), value in _cells(grid).items():
        by_row[row] = by_row.get(row, 0) + int(value)
        by_column[column] = by_column.get(column, 0) + int(value)
    return by_row, by_column
