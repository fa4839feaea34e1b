"""The 34 payment heatmaps as data: grids computed inside the store engine.

Each grid aggregates the **confirmed** payments (``status = 'confirmed'``) in SQL on DuckDB or
PostgreSQL; Python only lays the returned cells out on the axes. Definitions and choices:

- **Which moment places a payment in a cell**: ``created_at``, the moment the charge was made at
  the till (the customer standing there). Confirmation follows within seconds, and the creation
  time is what the store's staffing and idle time are about; ``payment_minutes`` uses it too.
- **Period**: local dates ``start``..``end`` inclusive, in America/Sao_Paulo; grouping (weekday,
  date, hour, minute) uses local time converted in SQL. Weekdays are ISO: ``seg`` (Monday)
  first, ``dom`` last.
- **Amount** is ``paid_cents``, returned as exact ``Decimal`` reais; the mean is rounded to the
  centavo (half even). Counts are ``int``; times and per-day means are ``float``.
- **Blank cells** are ``None``: no payment fell in that cell. A low-price cell whose cell had
  payments but none below the threshold is ``0``.
- **Rows and columns**: weekdays and hours are always complete (7, 24); dates cover every day of
  the period; stores and cities are those with a confirmed payment in the filtered period, sorted.
- **Idle minutes per hour** (``ociosidade_por_hora_loja``): for a store and hour ``h``, the mean
  over the days the store sold anything in the period of ``60 - minutes of hour h with at least
  one payment``. An hour with no payment on any of those days is 60 idle minutes.
- **Idle minutes per day** (``ociosidade_por_dia``): the store's business hours that day are
  taken as the span from the minute of its first payment to the minute of its last (both
  included); idle minutes are the minutes of that span with no payment. Days with no payment are
  blank.
- **Mean payments per day in an hour** (``media_transacoes_por_hora_*``): payments in that hour
  divided by the number of days on which the row's store (or city) sold anything in the period.
- **Low prices**: payments with amount strictly below the threshold; by default the 10th
  percentile (``percentile_cont``) of the amounts the grid covers, i.e. after the period, store
  and city filters; ``low_price_threshold`` overrides it.
- **Confirmation time**: mean of ``confirmation_seconds`` (creation to confirmation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from pulso.analytics.heatmap_defs import HEATMAPS, WEEKDAY_LABELS, Axis, HeatmapSpec
from pulso.analytics.heatmap_sql import (
    LOCAL_ZONE,
    Filters,
    grid_sql,
    low_price_percentile_sql,
)
from pulso.domain.money import CENT, from_cents
from pulso.errors import PulsoError
from pulso.store.protocol import Store

__all__ = [
    "DEFAULT_LOW_PRICE_QUANTILE",
    "HEATMAPS",
    "HeatmapError",
    "HeatmapGrid",
    "HeatmapSpec",
    "UnknownHeatmapError",
    "heatmap",
]

DEFAULT_LOW_PRICE_QUANTILE: Final = 0.10
_ZONE: Final = ZoneInfo(LOCAL_ZONE)
_THRESHOLD_PLACES: Final = Decimal("0.0001")
"""The default threshold (centavos) is rounded so both engines' floating percentiles agree."""

Value = float | Decimal | None


class HeatmapError(PulsoError):
    """A heatmap was asked for with arguments that cannot produce one."""


class UnknownHeatmapError(HeatmapError):
    """No heatmap has that name."""

    def __init__(self, name: str) -> None:
        valid = ", ".join(sorted(HEATMAPS))
        super().__init__(f"unknown heatmap {name!r}: use one of {valid}")
        self.name = name


@dataclass(frozen=True, slots=True)
class HeatmapGrid:
    """The grid behind one heatmap: ``values[i][j]`` is row ``i``, column ``j`` (None = blank)."""

    spec: HeatmapSpec
    rows: list[str]
    columns: list[str]
    values: list[list[Value]]
    start: date
    end: date
    low_price_threshold: Decimal | None = None
    """Reais; set on the low-price heatmaps only (None there when the period has no payment)."""


def heatmap(
    store: Store,
    name: str,
    *,
    start: date,
    end: date,
    store_id: str | None = None,
    city: str | None = None,
    low_price_threshold: Decimal | None = None,
) -> HeatmapGrid:
    """Compute heatmap ``name`` for local dates ``start``..``end`` (inclusive)."""
    spec = HEATMAPS.get(name)
    if spec is None:
        raise UnknownHeatmapError(name)
    _check_arguments(start, end, low_price_threshold)
    filters = Filters(
        _local_midnight(start), _local_midnight(end + timedelta(days=1)), store_id, city
    )
    threshold_cents: Decimal | None = None
    if spec.statistic == "low_price_count":
        threshold_cents = _threshold_cents(store, filters, low_price_threshold)
    sql, params = grid_sql(store.dialect, spec, filters, threshold_cents)
    cells = {(r, c): _value(spec, rest) for r, c, *rest in store.query(sql, params)}
    row_keys = _axis_keys(spec.rows, start, end, [r for r, _ in cells])
    column_keys = _axis_keys(spec.columns, start, end, [c for _, c in cells])
    return HeatmapGrid(
        spec=spec,
        rows=[_label(spec.rows, k) for k in row_keys],
        columns=[_label(spec.columns, k) for k in column_keys],
        values=[[cells.get((r, c)) for c in column_keys] for r in row_keys],
        start=start,
        end=end,
        low_price_threshold=None if threshold_cents is None else threshold_cents.scaleb(-2),
    )


def _check_arguments(start: date, end: date, low_price_threshold: Decimal | None) -> None:
    if start > end:
        raise HeatmapError(f"period starts {start} after it ends {end}: swap start and end")
    if low_price_threshold is not None and not (
        low_price_threshold.is_finite() and low_price_threshold >= 0
    ):
        raise HeatmapError(
            f"low_price_threshold {low_price_threshold} is not an amount: give reais >= 0"
        )


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), _ZONE).astimezone(UTC)


def _threshold_cents(store: Store, filters: Filters, threshold: Decimal | None) -> Decimal | None:
    if threshold is not None:
        return threshold.scaleb(2)
    sql, params = low_price_percentile_sql(store.dialect, filters, DEFAULT_LOW_PRICE_QUANTILE)
    [(percentile,)] = store.query(sql, params)
    if percentile is None:
        return None
    return Decimal(percentile).quantize(_THRESHOLD_PLACES)


def _value(spec: HeatmapSpec, raw: Sequence[Any]) -> Value:
    first = raw[0]
    if first is None:
        return None
    if spec.statistic == "mean":
        return (from_cents(int(first)) / int(raw[1])).quantize(CENT)
    if spec.unit == "brl":
        return from_cents(int(first))
    if spec.unit == "count" and spec.statistic != "payments_per_day":
        return int(first)
    return float(first)


def _axis_keys(axis: Axis, start: date, end: date, found: list[Any]) -> list[Any]:
    if axis == "weekday":
        return list(range(1, 8))
    if axis == "hour":
        return list(range(24))
    if axis == "date":
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return sorted({k for k in found if k is not None})


def _label(axis: Axis, key: Any) -> str:
    if axis == "weekday":
        return WEEKDAY_LABELS[key - 1]
    if axis == "date":
        return f"{key:%d/%m}"
    return str(key)
