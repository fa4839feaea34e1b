"""The 34 payment heatmaps as data: grids computed inside the store engine.

Each grid aggregates the **confirmed** payments (``status = 'confirmed'``) in SQL on DuckDB or
PostgreSQL; Python only lays the returned cells out on the axes. ``heatmap`` computes one grid
with one query; ``all_heatmaps`` computes any set of them (the report's 34) from one scan of
the payments. Definitions and choices:

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from pulso.analytics.heatmap_defs import HEATMAPS, WEEKDAY_LABELS, Axis, HeatmapSpec
from pulso.analytics.heatmap_sql import (
    Filters,
    SharedRequest,
    grid_sql,
    low_price_percentile_sql,
    percentile_cont,
    shared_grids_sql,
)
from pulso.domain.money import CENT, from_cents
from pulso.domain.timefmt import local_midnight
from pulso.errors import PulsoError
from pulso.store.protocol import Store

__all__ = [
    "DEFAULT_LOW_PRICE_QUANTILE",
    "HEATMAPS",
    "HeatmapError",
    "HeatmapGrid",
    "HeatmapSpec",
    "UnknownHeatmapError",
    "all_heatmaps",
    "heatmap",
]

DEFAULT_LOW_PRICE_QUANTILE: Final = 0.10
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
    filters = _filters(start, end, store_id, city)
    threshold_cents: Decimal | None = None
    if spec.statistic == "low_price_count":
        threshold_cents = _threshold_cents(store, filters, low_price_threshold)
    sql, params = grid_sql(store.dialect, spec, filters, threshold_cents)
    cells = {(r, c): _value(spec, rest) for r, c, *rest in store.query(sql, params)}
    return _grid(spec, cells, start, end, threshold_cents)


def all_heatmaps(
    store: Store,
    *,
    start: date,
    end: date,
    store_id: str | None = None,
    city: str | None = None,
    low_price_threshold: Decimal | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, HeatmapGrid]:
    """Every heatmap in ``names`` (default: all 34, in ``HEATMAPS`` order) for local dates
    ``start``..``end`` (inclusive), from one scan of the payments.

    Same grids as :func:`heatmap` cell for cell (mean confirmation times may differ in the
    last bits of the float: the seconds add up in another order), but one query computes the
    parts per store, city and hour once (after the 10th percentile when a low-price grid is
    asked for without a threshold) and every grid is combined from them, where 34 calls of
    ``heatmap`` scan the payments 34 times. One query, no temporary table: concurrent calls
    on one store cannot meet. Unknown names raise :class:`UnknownHeatmapError`.
    """
    specs = _specs(names)
    _check_arguments(start, end, low_price_threshold)
    if not specs:
        return {}
    filters = _filters(start, end, store_id, city)
    threshold_cents: Decimal | None = None
    if any(spec.statistic == "low_price_count" for spec in specs):
        threshold_cents = _threshold_cents(store, filters, low_price_threshold)
    request = _shared_request(specs)
    sql, params = shared_grids_sql(store.dialect, filters, threshold_cents, request)
    parts = _SharedParts(request, store.query(sql, params))
    return {
        spec.name: _grid(spec, parts.cells(spec), start, end, threshold_cents) for spec in specs
    }


def _specs(names: Iterable[str] | None) -> list[HeatmapSpec]:
    if names is None:
        return list(HEATMAPS.values())
    if isinstance(names, str):  # one name is a string, and a string iterates its letters
        names = [names]
    specs: dict[str, HeatmapSpec] = {}
    for name in names:
        spec = HEATMAPS.get(name)
        if spec is None:
            raise UnknownHeatmapError(name)
        specs[name] = spec
    return list(specs.values())


def _filters(start: date, end: date, store_id: str | None, city: str | None) -> Filters:
    return Filters(local_midnight(start), local_midnight(end + timedelta(days=1)), store_id, city)


def _grid(
    spec: HeatmapSpec,
    cells: dict[tuple[Any, Any], Value],
    start: date,
    end: date,
    threshold_cents: Decimal | None,
) -> HeatmapGrid:
    row_keys = _axis_keys(spec.rows, start, end, [r for r, _ in cells])
    column_keys = _axis_keys(spec.columns, start, end, [c for _, c in cells])
    if spec.statistic != "low_price_count":
        threshold_cents = None
    return HeatmapGrid(
        spec=spec,
        rows=[_label(spec.rows, k) for k in row_keys],
        columns=[_label(spec.columns, k) for k in column_keys],
        values=[[cells.get((r, c)) for c in column_keys] for r in row_keys],
        start=start,
        end=end,
        low_price_threshold=None if threshold_cents is None else threshold_cents.scaleb(-2),
    )


_CELL_STATISTICS: Final = frozenset(
    {"count", "sum", "mean", "max", "min", "confirmation_mean", "low_price_count"}
)
_EPOCH_DATE: Final = date(1970, 1, 1)
_Key = tuple[Any, Any]
_Parts = tuple[Any, ...]
"""A cell's parts from the shared query: n, s, mn, mx, cs, cn, low (see shared_grids_sql)."""
_PART_INDEX: Final[dict[str, int]] = {
    "count": 0,
    "sum": 1,
    "min": 2,
    "max": 3,
    "low_price_count": 6,
}


def _shared_request(specs: list[HeatmapSpec]) -> SharedRequest:
    pairs: dict[tuple[Axis, Axis], None] = {}
    day_rows: dict[Axis, None] = {}
    for spec in specs:
        if spec.statistic in _CELL_STATISTICS or spec.statistic == "payments_per_day":
            pairs[spec.rows, spec.columns] = None
        if spec.statistic in ("payments_per_day", "idle_per_hour"):
            day_rows[spec.rows] = None
    statistics = {spec.statistic for spec in specs}
    return SharedRequest(
        pairs=tuple(pairs),
        day_rows=tuple(day_rows),
        idle_hour="idle_per_hour" in statistics,
        idle_date="idle_per_day" in statistics,
    )


class _SharedParts:
    """The shared query's rows, sorted by what they are, turned into any requested grid."""

    def __init__(self, request: SharedRequest, rows: list[tuple[Any, ...]]) -> None:
        self._request = request
        self._pairs: list[dict[_Key, _Parts]] = [{} for _ in request.pairs]
        self._days: list[dict[Any, int]] = [{} for _ in request.day_rows]
        self._active_per_hour: dict[_Key, int] = {}
        self._idle_per_date: dict[_Key, Value] = {}
        for part, index, row_text, row_number, column, *values in rows:
            if part == "cells":
                rows_axis, columns_axis = request.pairs[index]
                key = (_key(rows_axis, row_text, row_number), _key(columns_axis, None, column))
                self._pairs[index][key] = tuple(values)
            elif part == "days":
                axis = request.day_rows[index]
                self._days[index][_key(axis, row_text, row_number)] = int(values[0])
            elif part == "idle_hour":
                self._active_per_hour[row_text, column] = int(values[0])
            else:  # idle_date: the day's span less its active minutes
                active, _, first, last = values[:4]
                self._idle_per_date[row_text, _key("date", None, column)] = float(
                    int(last) - int(first) + 1 - int(active)
                )

    def cells(self, spec: HeatmapSpec) -> dict[_Key, Value]:
        if spec.statistic == "idle_per_day":
            return self._idle_per_date
        if spec.statistic == "idle_per_hour":
            days = self._days[self._request.day_rows.index(spec.rows)]
            return {
                (r, h): 60 - self._active_per_hour.get((r, h), 0) / n_days
                for r, n_days in days.items()
                for h in range(24)
            }
        pair = self._pairs[self._request.pairs.index((spec.rows, spec.columns))]
        if spec.statistic == "payments_per_day":
            days = self._days[self._request.day_rows.index(spec.rows)]
            return {(r, c): int(parts[0]) / days[r] for (r, c), parts in pair.items() if r in days}
        statistic = spec.statistic
        if statistic in _PART_INDEX:
            i = _PART_INDEX[statistic]
            if spec.unit == "count":
                return {key: int(parts[i]) for key, parts in pair.items()}
            return {
                key: None if parts[i] is None else from_cents(int(parts[i]))
                for key, parts in pair.items()
            }
        return {key: _part_value(spec, parts) for key, parts in pair.items()}


def _key(axis: Axis, text: str | None, number: int | None) -> Any:
    if axis in ("store", "city"):
        return text
    if number is None:
        return None
    if axis == "date":
        return _EPOCH_DATE + timedelta(days=int(number))
    return int(number)


def _part_value(spec: HeatmapSpec, parts: _Parts) -> Value:
    """A mean from its parts (the other statistics are one part each, see _PART_INDEX)."""
    n, s, _, _, cs, cn, _ = parts
    if spec.statistic == "confirmation_mean":
        return float(cs) / int(cn) if cn else None
    return _value(spec, (s, n))


def _check_arguments(start: date, end: date, low_price_threshold: Decimal | None) -> None:
    if start > end:
        raise HeatmapError(f"period starts {start} after it ends {end}: swap start and end")
    if low_price_threshold is not None and not (
        low_price_threshold.is_finite() and low_price_threshold >= 0
    ):
        raise HeatmapError(
            f"low_price_threshold {low_price_threshold} is not an amount: give reais >= 0"
        )


def _threshold_cents(store: Store, filters: Filters, threshold: Decimal | None) -> Decimal | None:
    if threshold is not None:
        return threshold.scaleb(2)
    sql, params = low_price_percentile_sql(store.dialect, filters, DEFAULT_LOW_PRICE_QUANTILE)
    [(n, first, second)] = store.query(sql, params)
    if not n:
        return None
    percentile = percentile_cont(DEFAULT_LOW_PRICE_QUANTILE, int(n), float(first), float(second))
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
