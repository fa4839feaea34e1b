"""The SQL behind the heatmaps: one aggregate query per grid, run inside the store engine.

Every query returns cells as ``(row key, column key, value...)``. Keys: ISO weekday 1..7,
hour 0..23, local ``DATE``, ``store_id``, ``city``.

Converting every payment's time to local time is a large share of a grid's cost, so statistics
that combine from hourly parts (counts, sums, min, max, means) first aggregate the payments
per store, city and *UTC* hour with integer arithmetic, and convert only those hours:
São Paulo's offset from UTC has been whole hours since 1914, so a UTC hour lies in exactly one
local hour. Idle time needs minutes and converts each payment's time.
"""

from __future__ import annotations

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


def low_price_percentile_sql(
    dialect: Dialect, filters: Filters, fraction: float
) -> tuple[str, list[Any]]:
    """The ``fraction`` quantile of the amounts (centavos) the grid covers."""
    base, params = base_cte(dialect, filters)
    sql = f"{base} SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY amount_cents) FROM base"
    return sql, [*params, fraction]


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
