"""The SQL behind the heatmaps, run inside the store engine: one aggregate query per grid
(``grid_sql``), or one query for any set of grids (``shared_grids_sql``, one scan of the
payments for all 34).

Every per-grid query returns cells as ``(row key, column key, value...)``. Keys: ISO weekday
1..7, hour 0..23, local ``DATE``, ``store_id``, ``city``.

Converting every payment's time to local time is a large share of a grid's cost, so statistics
that combine from hourly parts (counts, sums, min, max, means) first aggregate the payments
per store, city and *UTC* hour with integer arithmetic, and convert only those hours:
São Paulo's offset from UTC has been whole hours since 1914, so a UTC hour lies in exactly one
local hour. Idle time needs minutes and converts each payment's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from pulso.analytics.heatmap_defs import Axis, HeatmapSpec
from pulso.store.protocol import Dialect

LOCAL_ZONE: Final = "America/Sao_Paulo"

_LOCAL_TIME: Final[dict[Dialect, str]] = {
    "duckdb": f"timezone('{LOCAL_ZONE}', {{at}})",
    "postgresql": f"({{at}} AT TIME ZONE '{LOCAL_ZONE}')",
}
_UTC_HOUR: Final[dict[Dialect, str]] = {
    "duckdb": "epoch_us(created_at) // 3600000000",
    "postgresql": "CAST(floor(extract(epoch FROM created_at) / 3600) AS BIGINT)",
}

_KEYS: Final[dict[Axis, str]] = {
    "weekday": "CAST(extract(isodow FROM lt) AS INTEGER)",
    "hour": "CAST(extract(hour FROM lt) AS INTEGER)",
    "date": "CAST(lt AS DATE)",
    "store": "store_id",
    "city": "city",
}

# Over the hourly parts (see _HOURLY): n payments, s cents, mn/mx cents, cs/cn seconds, low.
_CELL_AGGREGATES: Final[dict[str, str]] = {
    "count": "sum(n)",
    "sum": "sum(s)",
    "mean": "sum(s), sum(n)",
    "max": "max(mx)",
    "min": "min(mn)",
    "confirmation_mean": "sum(cs) / nullif(sum(cn), 0)",
    "low_price_count": "sum(low)",
}
_HOURLY: Final = """WITH hourly AS (
    SELECT store_id, city, {utc_hour} AS utc_hour, count(*) AS n, sum(paid_cents) AS s,
           min(paid_cents) AS mn, max(paid_cents) AS mx, sum(confirmation_seconds) AS cs,
           count(confirmation_seconds) AS cn, {low} AS low
    FROM payments WHERE {where} GROUP BY 1, 2, 3
), base AS (SELECT *, {local} AS lt FROM hourly)"""

# Days on which each row (store or city) sold anything: the denominator of per-day means.
_ROW_DAYS: Final = """, row_days AS (
    SELECT {row} AS r, count(DISTINCT CAST(lt AS DATE)) AS n_days FROM base GROUP BY 1
)"""

_PAYMENTS_PER_DAY: Final = (
    _ROW_DAYS
    + """
SELECT c.r, c.c, CAST(c.n AS DOUBLE PRECISION) / d.n_days
FROM (SELECT {row} AS r, {column} AS c, sum(n) AS n FROM base GROUP BY 1, 2) AS c
JOIN row_days AS d ON d.r = c.r"""
)

_IDLE_PER_HOUR: Final = (
    _ROW_DAYS
    + """, active AS (
    SELECT r, h, count(*) AS n FROM (
        SELECT DISTINCT {row} AS r, CAST(extract(hour FROM lt) AS INTEGER) AS h,
               date_trunc('minute', lt) AS m
        FROM base
    ) AS minutes GROUP BY 1, 2
)
SELECT d.r, g.h, 60 - CAST(coalesce(a.n, 0) AS DOUBLE PRECISION) / d.n_days
FROM row_days AS d CROSS JOIN generate_series(0, 23) AS g(h)
LEFT JOIN active AS a ON a.r = d.r AND a.h = g.h"""
)

_IDLE_PER_DAY: Final = """
SELECT r, c,
       CAST((extract(epoch FROM max(m)) - extract(epoch FROM min(m))) / 60 + 1 - count(*)
            AS DOUBLE PRECISION)
FROM (SELECT DISTINCT {row} AS r, {column} AS c, date_trunc('minute', lt) AS m FROM base) AS x
GROUP BY 1, 2"""


@dataclass(frozen=True, slots=True)
class Filters:
    """The payments a grid covers: created in ``[start_utc, end_utc)``, optionally one store
    or one city."""

    start_utc: datetime
    end_utc: datetime
    store_id: str | None = None
    city: str | None = None


def _where(filters: Filters) -> tuple[str, list[Any]]:
    where = ["status = 'confirmed'", "created_at >= %s", "created_at < %s"]
    params: list[Any] = [filters.start_utc, filters.end_utc]
    if filters.store_id is not None:
        where.append("store_id = %s")
        params.append(filters.store_id)
    if filters.city is not None:
        where.append("city = %s")
        params.append(filters.city)
    return " AND ".join(where), params


def base_cte(dialect: Dialect, filters: Filters) -> tuple[str, list[Any]]:
    """``WITH base AS (...)``: the confirmed payments in the period, with local time ``lt``."""
    where, params = _where(filters)
    local = _LOCAL_TIME[dialect].format(at="created_at")
    sql = (
        "WITH base AS (SELECT store_id, city, paid_cents AS amount_cents, confirmation_seconds, "
        f"{local} AS lt FROM payments WHERE {where})"
    )
    return sql, params


def hourly_cte(
    dialect: Dialect, filters: Filters, low_price_cents: Decimal | None
) -> tuple[str, list[Any]]:
    """``WITH hourly AS (...), base AS (...)``: parts per store, city and UTC hour, each with
    the local time ``lt`` of its hour."""
    where, params = _where(filters)
    low = "0"
    if low_price_cents is not None:
        low = "count(*) FILTER (WHERE paid_cents < %s)"
        params.insert(0, low_price_cents)  # the SELECT list comes before the WHERE
    local = _LOCAL_TIME[dialect].format(at="to_timestamp(utc_hour * 3600)")
    sql = _HOURLY.format(utc_hour=_UTC_HOUR[dialect], low=low, where=where, local=local)
    return sql, params


# percentile_cont interpolates between the values of ranks floor(f * (n - 1)) and
# ceil(f * (n - 1)) (0-based); counting each distinct amount finds both without sorting every
# payment (twice as fast on 10 million), and Python interpolates as the engines do.
_ORDER_STATISTICS: Final = """WITH amounts AS (
    SELECT paid_cents AS v, count(*) AS c FROM payments
    WHERE {where} AND paid_cents IS NOT NULL GROUP BY 1
), running AS (SELECT v, sum(c) OVER (ORDER BY v) AS upto FROM amounts),
ranks AS (
    SELECT n, floor(%s * (n - 1)) AS lo, ceil(%s * (n - 1)) AS hi
    FROM (SELECT sum(c) AS n FROM amounts) AS total
)
SELECT n, (SELECT min(v) FROM running WHERE upto > lo), (SELECT min(v) FROM running WHERE upto > hi)
FROM ranks"""


def low_price_percentile_sql(
    dialect: Dialect, filters: Filters, fraction: float
) -> tuple[str, list[Any]]:
    """``(n, first, second)``: how many amounts (centavos) the grid covers, and the two whose
    interpolation is their ``fraction`` quantile (see :func:`percentile_cont`)."""
    where, params = _where(filters)
    return _ORDER_STATISTICS.format(where=where), [*params, fraction, fraction]


def percentile_cont(fraction: float, n: int, first: float, second: float) -> float:
    """``percentile_cont(fraction)`` of ``n`` values from its two order statistics, with the
    same double arithmetic as DuckDB and PostgreSQL."""
    position = fraction * (n - 1)
    return first + (position - math.floor(position)) * (second - first)


def grid_sql(
    dialect: Dialect, spec: HeatmapSpec, filters: Filters, low_price_cents: Decimal | None
) -> tuple[str, list[Any]]:
    """The query returning ``spec``'s cells (params in placeholder order)."""
    row, column = _KEYS[spec.rows], _KEYS[spec.columns]
    statistic = spec.statistic
    if statistic in ("idle_per_hour", "idle_per_day"):
        base, params = base_cte(dialect, filters)
        template = _IDLE_PER_HOUR if statistic == "idle_per_hour" else _IDLE_PER_DAY
        return base + template.format(row=row, column=column), params
    base, params = hourly_cte(dialect, filters, low_price_cents)
    if statistic == "payments_per_day":
        return base + _PAYMENTS_PER_DAY.format(row=row, column=column), params
    aggregate = _CELL_AGGREGATES[statistic]
    return f"{base} SELECT {row}, {column}, {aggregate} FROM base GROUP BY 1, 2", params


# --------------------------------------------------------------------------- every grid at once

_UTC_MINUTE: Final[dict[Dialect, str]] = {
    "duckdb": "epoch_us(created_at) // 60000000",
    # date_part's double (not extract's numeric, 1.6x slower here) is exact enough: a minute's
    # last microsecond stays below the next minute at today's epochs.
    "postgresql": "CAST(floor(date_part('epoch', created_at) / 60) AS BIGINT)",
}
_HOUR_OF_MINUTE: Final[dict[Dialect, str]] = {"duckdb": "u // 60", "postgresql": "u / 60"}
_POPCOUNT: Final[dict[Dialect, str]] = {
    "duckdb": "bit_count({mask})",
    "postgresql": "bit_count(CAST({mask} AS BIT(64)))",
}
_DAY_NUMBER: Final = "CAST(CAST(lt AS DATE) - DATE '1970-01-01' AS BIGINT)"
"""A local date as days since 1970-01-01: an integer both engines and Python agree on."""

_SHARED_KEYS: Final[dict[Axis, str]] = {
    "weekday": "wd",
    "hour": "h",
    "date": "d",
    "store": "store_id",
    "city": "city",
}
_TEXT_AXES: Final = frozenset({"store", "city"})

# One scan of the payments: parts per store, city and UTC hour (see the module docstring),
# with the minutes of the hour that had a payment as the bits of ``mask`` (bit m = minute m).
# The minutes are what idle time needs, and 60 bits fit a BIGINT: no per-minute rows. Local
# time is worked out once per distinct hour, not once per part. Not from the pipeline's
# payment_minutes table: it has no min, max or low-price parts, its city is min(city) over
# every charge of the minute (failed ones too), and only the pipeline writes it (rows put in
# payments otherwise would be missing); the bits add little to this scan.
_SHARED_PARTS: Final = """WITH parts AS MATERIALIZED (
    SELECT store_id, city, {hour_of_minute} AS utc_hour, count(*) AS n, sum(paid_cents) AS s,
           min(paid_cents) AS mn, max(paid_cents) AS mx, sum(confirmation_seconds) AS cs,
           count(confirmation_seconds) AS cn, {low} AS low,
           bit_or(CAST(1 AS BIGINT) << CAST(u %% 60 AS INTEGER)) AS mask
    FROM (
        SELECT store_id, city, paid_cents, confirmation_seconds, {utc_minute} AS u
        FROM payments WHERE {where}
    ) AS p
    GROUP BY 1, 2, 3
), hours AS (
    SELECT utc_hour, lt, CAST(extract(isodow FROM lt) AS INTEGER) AS wd,
           CAST(extract(hour FROM lt) AS INTEGER) AS h, {day} AS d
    FROM (SELECT utc_hour, {local} AS lt FROM (SELECT DISTINCT utc_hour FROM parts) AS u) AS x
), base AS MATERIALIZED (SELECT * FROM parts JOIN hours USING (utc_hour))"""

# Per store and local hour (wall clock): the union of its minutes over the cities and over
# the UTC hours that share that wall-clock hour (the repeated hour when summer time ended).
# Then the active minutes (bits set), the first (lowest bit) and an estimate of the last
# (highest bit: floor(log2), off by one at most where the float rounds, corrected below).
_STORE_HOURS: Final = """, store_hours AS (
    SELECT store_id, d, h, mask, {popcount} AS active, {lowest_bit} AS first_m,
           CAST(floor({log2}) AS INTEGER) AS top
    FROM (SELECT store_id, d, h, bit_or(mask) AS mask FROM base GROUP BY store_id, lt, d, h) AS x
)"""
_LAST_MINUTE: Final = (
    "CASE WHEN (CAST(1 AS BIGINT) << top) > mask THEN top - 1"
    " WHEN (CAST(1 AS BIGINT) << (top + 1)) <= mask THEN top + 1 ELSE top END"
)
_LOG2: Final[dict[Dialect, str]] = {
    "duckdb": "log2(mask)",
    "postgresql": "ln(CAST(mask AS DOUBLE PRECISION)) / ln(CAST(2 AS DOUBLE PRECISION))",
}

_NO_INT: Final = "CAST(NULL AS BIGINT)"
_NO_TEXT: Final = "CAST(NULL AS TEXT)"
_NO_FLOAT: Final = "CAST(NULL AS DOUBLE PRECISION)"


@dataclass(frozen=True, slots=True)
class SharedRequest:
    """What one shared query returns, besides the cells of each axis pair in ``pairs``:
    the selling days of each axis in ``day_rows`` and the active minutes for idle time."""

    pairs: tuple[tuple[Axis, Axis], ...] = ()
    day_rows: tuple[Axis, ...] = ()
    idle_hour: bool = False
    idle_date: bool = False


def shared_grids_sql(
    dialect: Dialect, filters: Filters, low_price_cents: Decimal | None, request: SharedRequest
) -> tuple[str, list[Any]]:
    """One query returning the parts of every requested grid, from one scan of the payments.

    Rows are ``(part, pair, row text, row number, column number, n, s, mn, mx, cs, cn, low)``:

    - ``cells``: ``pair`` is the index in ``request.pairs``; the row key is the text (store,
      city) or the number (ISO weekday, local date as days since 1970-01-01), the column key a
      number (hour, weekday, date); n payments, s/mn/mx cents, cs/cn confirmation seconds and
      how many, low payments below the threshold.
    - ``days``: ``pair`` is the index in ``request.day_rows``; n = local dates with a payment.
    - ``idle_hour``: per store and hour of the day, n = active minutes summed over the dates.
    - ``idle_date``: per store and date, n = active minutes, mn/mx = first/last active minute
      of the day (minutes since local midnight, wall clock).
    """
    where, params = _where(filters)
    low = "0"
    if low_price_cents is not None:
        low = "count(*) FILTER (WHERE paid_cents < %s)"
        params.insert(0, low_price_cents)  # the SELECT list comes before the WHERE
    sql = _SHARED_PARTS.format(
        low=low,
        hour_of_minute=_HOUR_OF_MINUTE[dialect],
        utc_minute=_UTC_MINUTE[dialect],
        where=where,
        local=_LOCAL_TIME[dialect].format(at="to_timestamp(utc_hour * 3600)"),
        day=_DAY_NUMBER,
    )
    if request.idle_hour or request.idle_date:
        popcount = _POPCOUNT[dialect]
        sql += _STORE_HOURS.format(
            popcount=popcount.format(mask="mask"),
            lowest_bit=popcount.format(mask="(mask & -mask) - 1"),
            log2=_LOG2[dialect],
        )
    selects = [_cells_select(i, rows, columns) for i, (rows, columns) in enumerate(request.pairs)]
    selects += [_days_select(i, axis) for i, axis in enumerate(request.day_rows)]
    if request.idle_hour:
        selects.append(
            f"SELECT 'idle_hour', 0, store_id, {_NO_INT}, CAST(h AS BIGINT), sum(active),"
            f" {_NO_INT}, {_NO_INT}, {_NO_INT}, {_NO_FLOAT}, {_NO_INT}, {_NO_INT}"
            " FROM store_hours GROUP BY store_id, h"
        )
    if request.idle_date:
        selects.append(
            f"SELECT 'idle_date', 0, store_id, {_NO_INT}, d, sum(active), {_NO_INT},"
            " CAST(min(h * 60 + first_m) AS BIGINT),"
            f" CAST(max(h * 60 + {_LAST_MINUTE}) AS BIGINT),"
            f" {_NO_FLOAT}, {_NO_INT}, {_NO_INT} FROM store_hours GROUP BY store_id, d"
        )
    if not selects:
        raise ValueError("an empty SharedRequest asks for no query")
    return sql + "\n" + "\nUNION ALL\n".join(selects), params


def _row_keys(axis: Axis) -> tuple[str, str]:
    key = _SHARED_KEYS[axis]
    if axis in _TEXT_AXES:
        return key, _NO_INT
    return _NO_TEXT, f"CAST({key} AS BIGINT)"


def _cells_select(index: int, rows: Axis, columns: Axis) -> str:
    row_text, row_number = _row_keys(rows)
    row, column = _SHARED_KEYS[rows], _SHARED_KEYS[columns]
    return (
        f"SELECT 'cells', {index}, {row_text}, {row_number}, CAST({column} AS BIGINT), sum(n),"
        " sum(s), min(mn), max(mx), sum(cs), sum(cn), sum(low)"
        f" FROM base GROUP BY {row}, {column}"
    )


def _days_select(index: int, axis: Axis) -> str:
    row_text, row_number = _row_keys(axis)
    return (
        f"SELECT 'days', {index}, {row_text}, {row_number}, {_NO_INT}, count(DISTINCT d),"
        f" {_NO_INT}, {_NO_INT}, {_NO_INT}, {_NO_FLOAT}, {_NO_INT}, {_NO_INT}"
        f" FROM base GROUP BY {_SHARED_KEYS[axis]}"
    )
