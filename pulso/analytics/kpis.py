"""The report's KPIs for a period: the cover figures and the KPI tables, computed in SQL.

These are the types the PDF report, the written reading and the notifiers share. Money is
``Decimal`` reais (exact, from centavos); times are seconds or minutes as ``float``; dates are
local (America/Sao_Paulo) and the period is ``start``..``end`` inclusive, like the heatmaps.
Only **confirmed** payments count as transactions; ``failed`` and ``expired`` are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from pulso.analytics.heatmap_sql import Filters, base_cte, hourly_cte
from pulso.domain.money import CENT, from_cents
from pulso.domain.timefmt import local_midnight
from pulso.errors import PulsoError
from pulso.store.protocol import Store

DAY_PARTS: Final = (
    ("madrugada", 0, 6),
    ("manhã", 6, 12),
    ("tarde", 12, 18),
    ("noite", 18, 24),
)
"""Parts of the local day: (label, first hour, hour after the last)."""


@dataclass(frozen=True, slots=True)
class KpiRow:
    """One line of a KPI table: transactions and money for a label (hour, day, city, store)."""

    label: str
    payments: int
    revenue: Decimal
    average_ticket: Decimal | None
    """Revenue per payment, rounded to the centavo; None when there was no payment."""


@dataclass(frozen=True, slots=True)
class DayPartRow:
    """Mean price and idle time in one part of the day (madrugada, manhã, tarde, noite)."""

    label: str
    payments: int
    average_ticket: Decimal | None
    idle_minutes_per_store_day: float | None
    """Mean, over the (store, day) pairs with any sale that day, of the minutes of this part of
    the day with no payment at that store; None when no store sold anything in the period."""


@dataclass(frozen=True, slots=True)
class CityConfirmation:
    """How long payers took to confirm in a city."""

    city: str
    payments: int
    mean_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class SpreadRow:
    """Transactions in one hour of the day across the period's days: min, max and mean per day."""

    label: str
    minimum: int
    maximum: int
    mean: float


@dataclass(frozen=True, slots=True)
class PeriodKpis:
    """Everything the report says about one period, as numbers."""

    start: date
    end: date
    payments: int
    revenue: Decimal
    average_ticket: Decimal | None
    failed: int
    expired: int
    stores: int
    cities: int
    confirmation_mean_s: float | None
    confirmation_p95_s: float | None
    by_hour: list[KpiRow] = field(default_factory=list)
    """24 rows, "00h".."23h", hours with no payment included with zeros."""
    by_day: list[KpiRow] = field(default_factory=list)
    """One row per local date of the period ("dd/mm/aaaa"), days with no payment included."""
    by_city: list[KpiRow] = field(default_factory=list)
    """Cities by revenue, highest first."""
    by_store: list[KpiRow] = field(default_factory=list)
    """Stores by revenue, highest first."""
    by_day_part: list[DayPartRow] = field(default_factory=list)
    confirmation_by_city: list[CityConfirmation] = field(default_factory=list)
    """Slowest mean first."""
    hourly_spread: list[SpreadRow] = field(default_factory=list)
    """24 rows: per hour of the day, min/max/mean transactions over the period's days."""
    previous: PeriodKpis | None = None
    """The period of the same length just before, for week-over-week changes (tables included;
    its own ``previous`` is None)."""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


# --------------------------------------------------------------------- computing them in SQL


class KpiError(PulsoError):
    """KPIs were asked for with arguments that cannot produce them."""


_PART_MINUTES: Final = tuple((last - first) * 60 for _, first, last in DAY_PARTS)
_KEY_COLUMNS: Final = ("store_id", "city", "d", "h", "p")
_GROUPING_SETS: Final[dict[str, tuple[str, ...]]] = {
    "hour": ("h",),
    "day": ("d",),
    "city": ("city",),
    "store": ("store_id",),
    "day_hour": ("d", "h"),
    "part": ("p",),
    "total": (),
}


def _grouping_mask(keys: tuple[str, ...]) -> int:
    """What ``GROUPING(store_id, city, d, h, p)`` returns for a grouping set: 1 bits for the
    columns not grouped by, first column highest."""
    width = len(_KEY_COLUMNS)
    return sum(1 << (width - 1 - i) for i, c in enumerate(_KEY_COLUMNS) if c not in keys)


_SET_BY_MASK: Final = {_grouping_mask(keys): name for name, keys in _GROUPING_SETS.items()}


def _part_case(hour: str) -> str:
    """SQL: the index in ``DAY_PARTS`` of the part an hour (0..23) falls in."""
    whens = " ".join(
        f"WHEN {hour} < {last} THEN {i}" for i, (_, _, last) in enumerate(DAY_PARTS[:-1])
    )
    return f"CASE {whens} ELSE {len(DAY_PARTS) - 1} END"


# Tables, totals and spread in one pass over the hourly parts (see heatmap_sql's _HOURLY).
_TABLES_SQL: Final = """, cells AS (
    SELECT store_id, city, CAST(lt AS DATE) AS d, CAST(extract(hour FROM lt) AS INTEGER) AS h,
           n, s
    FROM base
)
SELECT GROUPING(store_id, city, d, h, p), store_id, city, d, h, p, sum(n), sum(s),
       count(DISTINCT store_id), count(DISTINCT city)
FROM (SELECT *, {part} AS p FROM cells) AS c
GROUP BY GROUPING SETS ({sets})"""

_CONFIRMATION_SQL: Final = """
SELECT GROUPING(city), city, count(confirmation_seconds), avg(confirmation_seconds),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY confirmation_seconds)
FROM base GROUP BY GROUPING SETS ((city), ())"""

# Minutes with at least one payment, per part of the day, over every store; and how many
# (store, local date) pairs had any payment: idle = part minutes - active / pairs.
_ACTIVE_MINUTES_SQL: Final = """, minutes AS (
    SELECT DISTINCT store_id, date_trunc('minute', lt) AS m FROM base
), pairs AS (
    SELECT count(*) AS n FROM (SELECT DISTINCT store_id, CAST(m AS DATE) FROM minutes) AS x
)
SELECT {part}, count(*), (SELECT n FROM pairs) FROM minutes GROUP BY 1"""

_OUTCOMES_SQL: Final = """
SELECT count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'expired')
FROM payments WHERE {where}"""


def period_kpis(
    store: Store,
    *,
    start: date,
    end: date,
    store_id: str | None = None,
    city: str | None = None,
    with_previous: bool = True,
) -> PeriodKpis:
    """The KPIs of local dates ``start``..``end`` (inclusive), optionally one store or city.

    Definitions (the heatmaps' conventions, see :mod:`pulso.analytics.heatmaps`):

    - A payment belongs to the local hour and date (America/Sao_Paulo) of its ``created_at``.
    - **Transactions** are confirmed payments; money is ``paid_cents`` as exact reais; every
      mean ticket is revenue / payments rounded to the centavo (half even). ``failed`` and
      ``expired`` count the charges created in the period that ended that way.
    - ``stores`` and ``cities``: those with a confirmed payment in the period.
    - **Confirmation time**: mean and 95th percentile (``percentile_cont``) of
      ``confirmation_seconds`` over the confirmed payments that have one; per city likewise
      (``CityConfirmation.payments`` counts those payments), slowest mean first.
    - **Idle minutes per part of the day** (``DayPartRow.idle_minutes_per_store_day``): the
      per-hour idle notion of ``ociosidade_por_hora_loja`` summed over the part's hours. For
      each (store, local date) on which the store had a confirmed payment, the part's minutes
      (360) minus the minutes of the part with at least one payment at that store; the mean
      of that over all such (store, date) pairs. A store that sold that day but not in that
      part counts 360 idle minutes; pairs with no sale at all that day are not counted.
    - **Hourly spread**: for each local hour, payments in that hour on each day of the
      period (days with none count as 0): the minimum, maximum and mean over the days.
    - ``previous``: the same KPIs for the same number of days just before ``start``.
    """
    if start > end:
        raise KpiError(f"period starts {start} after it ends {end}: swap start and end")
    filters = Filters(
        local_midnight(start), local_midnight(end + timedelta(days=1)), store_id, city
    )
    tables = _query_tables(store, filters)
    overall, by_city = _query_confirmation(store, filters)
    failed, expired = _query_outcomes(store, filters)
    previous = None
    if with_previous:
        days = timedelta(days=(end - start).days + 1)
        previous = period_kpis(
            store,
            start=start - days,
            end=end - days,
            store_id=store_id,
            city=city,
            with_previous=False,
        )
    total = tables["total"].get((), _Cell(0, 0, 0, 0))
    revenue = from_cents(total.cents)
    return PeriodKpis(
        start=start,
        end=end,
        payments=total.payments,
        revenue=revenue,
        average_ticket=_ticket(revenue, total.payments),
        failed=failed,
        expired=expired,
        stores=total.stores,
        cities=total.cities,
        confirmation_mean_s=overall[0] if overall else None,
        confirmation_p95_s=overall[1] if overall else None,
        by_hour=[_row(f"{h:02d}h", tables["hour"].get((h,))) for h in range(24)],
        by_day=[_row(f"{d:%d/%m/%Y}", tables["day"].get((d,))) for d in _dates(start, end)],
        by_city=_ranked(tables["city"], "sem cidade"),
        by_store=_ranked(tables["store"], "sem loja"),
        by_day_part=_day_parts(tables["part"], _query_active_minutes(store, filters)),
        confirmation_by_city=by_city,
        hourly_spread=_spread(tables["day_hour"], start, end),
        previous=previous,
    )


@dataclass(frozen=True, slots=True)
class _Cell:
    """One grouping set's row: confirmed payments, their centavos, distinct stores, cities."""

    payments: int
    cents: int
    stores: int
    cities: int


_Tables = dict[str, dict[tuple[Any, ...], _Cell]]


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _query_tables(store: Store, filters: Filters) -> _Tables:
    """Every grouping set's rows, keyed by set name and then by the set's key values."""
    base, params = hourly_cte(store.dialect, filters, None)
    sets = ", ".join(f"({', '.join(keys)})" for keys in _GROUPING_SETS.values())
    sql = base + _TABLES_SQL.format(part=_part_case("h"), sets=sets)
    tables: _Tables = {name: {} for name in _GROUPING_SETS}
    for mask, *keys, n, cents, stores, cities in store.query(sql, params):
        name = _SET_BY_MASK[int(mask)]
        key = tuple(v for c, v in zip(_KEY_COLUMNS, keys, strict=True) if c in _GROUPING_SETS[name])
        tables[name][key] = _Cell(int(n or 0), int(cents or 0), int(stores), int(cities))
    return tables


def _query_confirmation(
    store: Store, filters: Filters
) -> tuple[tuple[float, float] | None, list[CityConfirmation]]:
    """The overall confirmation time (mean, p95) and each city's, slowest mean first."""
    base, params = base_cte(store.dialect, filters)
    overall: tuple[float, float] | None = None
    by_city: list[CityConfirmation] = []
    for grouped, city, n, mean_s, p95_s in store.query(base + _CONFIRMATION_SQL, params):
        if not n:
            continue  # no payment with a confirmation time
        if grouped:
            overall = (float(mean_s), float(p95_s))
        else:
            label = str(city) if city is not None else "sem cidade"
            by_city.append(CityConfirmation(label, int(n), float(mean_s), float(p95_s)))
    by_city.sort(key=lambda c: (-c.mean_s, c.city))
    return overall, by_city


def _query_active_minutes(store: Store, filters: Filters) -> tuple[dict[int, int], int]:
    """Minutes with a payment per part of the day (over all stores), and (store, date) pairs."""
    base, params = base_cte(store.dialect, filters)
    sql = base + _ACTIVE_MINUTES_SQL.format(
        part=_part_case("CAST(extract(hour FROM m) AS INTEGER)")
    )
    rows = store.query(sql, params)
    pairs = int(rows[0][2]) if rows else 0
    return {int(part): int(n) for part, n, _ in rows}, pairs


def _query_outcomes(store: Store, filters: Filters) -> tuple[int, int]:
    """Charges created in the period that failed, and that expired."""
    where = ["created_at >= %s", "created_at < %s"]
    params: list[Any] = [filters.start_utc, filters.end_utc]
    for column, value in (("store_id", filters.store_id), ("city", filters.city)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    [(failed, expired)] = store.query(_OUTCOMES_SQL.format(where=" AND ".join(where)), params)
    return int(failed or 0), int(expired or 0)


def _ticket(revenue: Decimal, payments: int) -> Decimal | None:
    return (revenue / payments).quantize(CENT) if payments else None


def _row(label: str, cell: _Cell | None) -> KpiRow:
    if cell is None:
        return KpiRow(label, 0, from_cents(0), None)
    revenue = from_cents(cell.cents)
    return KpiRow(label, cell.payments, revenue, _ticket(revenue, cell.payments))


def _ranked(cells: dict[tuple[Any, ...], _Cell], blank: str) -> list[KpiRow]:
    rows = [_row(str(key[0]) if key[0] is not None else blank, c) for key, c in cells.items()]
    return sorted(rows, key=lambda r: (-r.revenue, r.label))


def _day_parts(
    cells: dict[tuple[Any, ...], _Cell], active: tuple[dict[int, int], int]
) -> list[DayPartRow]:
    minutes, pairs = active
    rows: list[DayPartRow] = []
    for index, (label, _, _) in enumerate(DAY_PARTS):
        row = _row(label, cells.get((index,)))
        idle = _PART_MINUTES[index] - minutes.get(index, 0) / pairs if pairs else None
        rows.append(DayPartRow(label, row.payments, row.average_ticket, idle))
    return rows


def _spread(cells: dict[tuple[Any, ...], _Cell], start: date, end: date) -> list[SpreadRow]:
    days = (end - start).days + 1
    per_hour: dict[int, list[int]] = {h: [] for h in range(24)}
    for (_, hour), cell in cells.items():
        per_hour[int(hour)].append(cell.payments)
    rows: list[SpreadRow] = []
    for hour, counts in per_hour.items():
        counts += [0] * (days - len(counts))  # days with no payment in that hour
        rows.append(SpreadRow(f"{hour:02d}h", min(counts), max(counts), sum(counts) / days))
    return rows
