"""Batch jobs: the heatmap aggregates and the marketplace trends, recomputed with Spark.

Both read Parquet (the store's tables exported with :func:`export_table`, or any Parquet with
the same columns, e.g. from a data lake) and write Parquet. The aggregation runs in Spark;
only the grid cells and trend rows, small by nature, come back to the driver.

**Heatmaps** (:func:`heatmap_cells`): the grids of :mod:`pulso.analytics.heatmaps` with the
same definitions (confirmed payments, local dates ``start..end`` in America/Sao_Paulo, ISO
weekdays, amounts ``paid_cents`` as exact reais, means rounded half-even to the centavo, the
low-price threshold the 10th percentile with interpolation). 32 of the 34 grids: every grid
but the two idle-time ones (``ociosidade_*``), which need the minutes of every store's day
and stay in the store engine. Output: one row per non-blank cell, ``grid, row, column, value,
number``, where ``row``/``column`` are the labels pulso shows (``seg``, ``14``, ``24/11``, a
store id, a city), ``value`` the exact value as text (reais, counts) and ``number`` a double.

**Trends** (:func:`market_trends`): :func:`pulso.market.trends.category_trends` for every
category, from product snapshots in a window: first against latest snapshot per category,
status (rising, falling, steady, new, left), change in positions and the least-squares
velocity in positions per day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from pulso.analytics.heatmap_defs import HEATMAPS, WEEKDAY_LABELS, Axis, HeatmapSpec
from pulso.domain.money import CENT, from_cents
from pulso.domain.timefmt import local_midnight
from pulso.errors import PulsoError
from pulso.store.protocol import Store

LOCAL_ZONE: Final = "America/Sao_Paulo"
SPARK_HEATMAPS: Final = tuple(
    name
    for name, spec in HEATMAPS.items()
    if spec.statistic not in ("idle_per_hour", "idle_per_day")
)
LOW_PRICE_QUANTILE: Final = 0.10
_THRESHOLD_PLACES: Final = Decimal("0.0001")
_EPOCH: Final = date(1970, 1, 1)
CELLS_SCHEMA: Final = pa.schema(
    [
        pa.field("grid", pa.string()),
        pa.field("row", pa.string()),
        pa.field("column", pa.string()),
        pa.field("value", pa.string()),
        pa.field("number", pa.float64()),
    ]
)


class BatchJobError(PulsoError):
    """The job cannot run with these inputs."""


def export_table(store: Store, table: str, columns: Sequence[str], path: Path) -> int:
    """Write a store table's columns to one Parquet file; returns the row count."""
    from pulso.store.duckdb import to_arrow
    from pulso.store.tables import TABLES

    spec = next((t for t in TABLES if t.name == table), None)
    if spec is None:
        raise BatchJobError(f"no table {table!r} in the store")
    unknown = [c for c in columns if c not in spec.column_names]
    if unknown:
        raise BatchJobError(f"table {table!r} has no columns {unknown}")
    schema = to_arrow(spec, tuple(columns), {c: [] for c in columns}).schema
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with store.transaction() as tx, pq.ParquetWriter(path, schema) as writer:
        for batch in tx.fetch_arrow(f"SELECT {', '.join(columns)} FROM {table}", schema):
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


PAYMENT_COLUMNS: Final = (
    "charge_id",
    "store_id",
    "city",
    "status",
    "paid_cents",
    "created_at",
    "confirmation_seconds",
)
SNAPSHOT_COLUMNS: Final = (
    "site",
    "category_id",
    "product_id",
    "taken_at",
    "kind",
    "position",
    "title",
    "price_cents",
)


# ----------------------------------------------------------------------------------- heatmaps


@dataclass(frozen=True, slots=True)
class HeatmapJob:
    payments: str  # Parquet file or folder with the payments columns
    output: str  # Parquet folder for the cells
    start: date
    end: date
    names: tuple[str, ...] = SPARK_HEATMAPS
    store_id: str | None = None
    city: str | None = None
    low_price_threshold: Decimal | None = None  # reais; None: the 10th percentile


_KEY_COLUMNS: Final[dict[Axis, str]] = {
    "weekday": "wd",
    "hour": "h",
    "date": "d",
    "store": "store_id",
    "city": "city",
}


def heatmap_cells(spark: Any, job: HeatmapJob) -> pa.Table:
    """Compute the grids' cells, write them under ``job.output``, and return them."""
    from pyspark.sql import functions as F

    specs = _heatmap_specs(job.names)
    if job.start > job.end:
        raise BatchJobError(f"period starts {job.start} after it ends {job.end}")
    payments = spark.read.parquet(job.payments)
    missing = {"store_id", "city", "status", "paid_cents", "created_at"} - set(payments.columns)
    if missing:
        raise BatchJobError(f"{job.payments} lacks the payments columns {sorted(missing)}")
    if "confirmation_seconds" not in payments.columns:
        payments = payments.withColumn("confirmation_seconds", F.lit(None).cast("double"))
    start_utc = local_midnight(job.start)
    end_utc = local_midnight(job.end + timedelta(days=1))
    rows = payments.where(
        (F.col("status") == "confirmed")
        & (F.col("created_at") >= F.lit(start_utc))
        & (F.col("created_at") < F.lit(end_utc))
    )
    if job.store_id is not None:
        rows = rows.where(F.col("store_id") == job.store_id)
    if job.city is not None:
        rows = rows.where(F.col("city") == job.city)
    local = F.from_utc_timestamp("created_at", LOCAL_ZONE)
    rows = (
        rows.withColumn("lt", local)
        .withColumn("wd", ((F.dayofweek("lt") + 5) % 7) + 1)
        .withColumn("h", F.hour("lt"))
        .withColumn("d", F.datediff(F.to_date("lt"), F.lit(_EPOCH)))
        .select("store_id", "city", "paid_cents", "confirmation_seconds", "wd", "h", "d")
    ).cache()
    try:
        threshold = _threshold_cents(rows, specs, job.low_price_threshold)
        low = (
            F.sum(F.when(F.col("paid_cents") < F.lit(threshold), 1).otherwise(0))
            if threshold is not None
            else F.lit(0)
        )
        pairs = list(dict.fromkeys((s.rows, s.columns) for s in specs))
        parts: dict[tuple[Axis, Axis], dict[tuple[Any, Any], tuple[Any, ...]]] = {}
        for row_axis, column_axis in pairs:
            grouped = rows.groupBy(
                F.col(_KEY_COLUMNS[row_axis]).alias("r"),
                F.col(_KEY_COLUMNS[column_axis]).alias("c"),
            ).agg(
                F.count(F.lit(1)).alias("n"),
                F.sum("paid_cents").alias("s"),
                F.min("paid_cents").alias("mn"),
                F.max("paid_cents").alias("mx"),
                F.sum("confirmation_seconds").alias("cs"),
                F.count("confirmation_seconds").alias("cn"),
                low.alias("low"),
            )
            parts[row_axis, column_axis] = {
                (r["r"], r["c"]): (r["n"], r["s"], r["mn"], r["mx"], r["cs"], r["cn"], r["low"])
                for r in grouped.collect()
            }
        days: dict[Axis, dict[Any, int]] = {}
        for axis in {s.rows for s in specs if s.statistic == "payments_per_day"}:
            counted = rows.groupBy(F.col(_KEY_COLUMNS[axis]).alias("r")).agg(
                F.countDistinct("d").alias("n")
            )
            days[axis] = {r["r"]: int(r["n"]) for r in counted.collect()}
    finally:
        rows.unpersist()
    table = _cells_table(specs, parts, days)
    spark.createDataFrame(table).coalesce(1).write.mode("overwrite").parquet(job.output)
    return table


def _heatmap_specs(names: Iterable[str]) -> list[HeatmapSpec]:
    specs: list[HeatmapSpec] = []
    for name in names:
        if name not in HEATMAPS:
            raise BatchJobError(f"no heatmap {name!r}; choose among {', '.join(SPARK_HEATMAPS)}")
        if name not in SPARK_HEATMAPS:
            raise BatchJobError(
                f"heatmap {name!r} (idle time) is computed by the store engine only: "
                "pulso report / pulso query"
            )
        specs.append(HEATMAPS[name])
    if not specs:
        raise BatchJobError("no heatmap asked for")
    return specs


def _threshold_cents(
    rows: Any, specs: list[HeatmapSpec], threshold: Decimal | None
) -> Decimal | None:
    if not any(s.statistic == "low_price_count" for s in specs):
        return None
    if threshold is not None:
        if not (threshold.is_finite() and threshold >= 0):
            raise BatchJobError(f"low-price threshold {threshold} is not an amount in reais")
        return threshold.scaleb(2)
    from pyspark.sql import functions as F

    [value] = rows.agg(F.percentile("paid_cents", LOW_PRICE_QUANTILE).alias("p")).collect()
    if value["p"] is None:
        return None
    return Decimal(float(value["p"])).quantize(_THRESHOLD_PLACES)


def _cells_table(
    specs: list[HeatmapSpec],
    parts: dict[tuple[Axis, Axis], dict[tuple[Any, Any], tuple[Any, ...]]],
    days: dict[Axis, dict[Any, int]],
) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in CELLS_SCHEMA.names}
    for spec in specs:
        for (r, c), cell in sorted(parts[spec.rows, spec.columns].items(), key=_cell_order):
            value = _cell_value(spec, cell, days.get(spec.rows, {}).get(r))
            if value is None:
                continue
            columns["grid"].append(spec.name)
            columns["row"].append(_label(spec.rows, r))
            columns["column"].append(_label(spec.columns, c))
            columns["value"].append(str(value))
            columns["number"].append(float(value))
    return pa.Table.from_pydict(columns, schema=CELLS_SCHEMA)


def _cell_order(item: tuple[tuple[Any, Any], Any]) -> tuple[str, str]:
    (r, c), _ = item
    return (f"{r:>12}" if isinstance(r, int) else str(r), f"{c:>12}")


def _cell_value(spec: HeatmapSpec, cell: tuple[Any, ...], n_days: int | None) -> Any:
    """A cell's value from its parts, as :mod:`pulso.analytics.heatmaps` computes it."""
    n, s, mn, mx, cs, cn, low = cell
    statistic = spec.statistic
    if statistic == "count":
        return int(n)
    if statistic == "sum":
        return from_cents(int(s))
    if statistic == "mean":
        return (from_cents(int(s)) / int(n)).quantize(CENT)
    if statistic == "max":
        return from_cents(int(mx))
    if statistic == "min":
        return from_cents(int(mn))
    if statistic == "confirmation_mean":
        return float(cs) / int(cn) if cn else None
    if statistic == "low_price_count":
        return int(low)
    if statistic == "payments_per_day":
        return int(n) / n_days if n_days else None
    raise BatchJobError(f"statistic {statistic!r} is not computed by Spark")


def _label(axis: Axis, key: Any) -> str:
    if axis == "weekday":
        return WEEKDAY_LABELS[int(key) - 1]
    if axis == "date":
        return f"{_EPOCH + timedelta(days=int(key)):%d/%m}"
    return str(key)


# ------------------------------------------------------------------------------------ trends


@dataclass(frozen=True, slots=True)
class TrendsJob:
    snapshots: str  # Parquet with the product_snapshots columns
    output: str
    since: datetime
    until: datetime


TRENDS_SCHEMA: Final = pa.schema(
    [
        pa.field("category_id", pa.string()),
        pa.field("product_id", pa.string()),
        pa.field("title", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("status", pa.string()),
        pa.field("position_before", pa.int32()),
        pa.field("position_now", pa.int32()),
        pa.field("change", pa.int32()),
        pa.field("velocity_per_day", pa.float64()),
        pa.field("price_before_cents", pa.int64()),
        pa.field("price_now_cents", pa.int64()),
        pa.field("first_at", pa.timestamp("us", tz="UTC")),
        pa.field("last_at", pa.timestamp("us", tz="UTC")),
        pa.field("snapshots", pa.int32()),
    ]
)
_SECONDS_PER_DAY: Final = 86_400.0


def market_trends(spark: Any, job: TrendsJob) -> pa.Table:
    """Every category's trends in ``[since, until]``, written under ``job.output``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if job.since > job.until:
        raise BatchJobError(f"window starts {job.since} after it ends {job.until}")
    snaps = spark.read.parquet(job.snapshots)
    missing = {"category_id", "product_id", "taken_at", "position", "title", "kind"} - set(
        snaps.columns
    )
    if missing:
        raise BatchJobError(f"{job.snapshots} lacks the snapshot columns {sorted(missing)}")
    if "price_cents" not in snaps.columns:
        snaps = snaps.withColumn("price_cents", F.lit(None).cast("long"))
    snaps = snaps.where(
        (F.col("taken_at") >= F.lit(job.since)) & (F.col("taken_at") <= F.lit(job.until))
    )
    by_category = Window.partitionBy("category_id")
    snaps = snaps.withColumn("first_at", F.min("taken_at").over(by_category)).withColumn(
        "last_at", F.max("taken_at").over(by_category)
    )
    counts = snaps.groupBy("category_id").agg(F.countDistinct("taken_at").alias("snapshots"))
    x = F.unix_micros("taken_at") / F.lit(_SECONDS_PER_DAY * 1e6)
    latest = F.max_by(F.struct("title", "kind"), "taken_at")
    products = snaps.groupBy("category_id", "product_id", "first_at", "last_at").agg(
        latest.alias("latest"),
        F.max(F.when(F.col("taken_at") == F.col("first_at"), F.col("position"))).alias("before"),
        F.max(F.when(F.col("taken_at") == F.col("last_at"), F.col("position"))).alias("now"),
        F.max(F.when(F.col("taken_at") == F.col("first_at"), F.col("price_cents"))).alias(
            "price_before_cents"
        ),
        F.max(F.when(F.col("taken_at") == F.col("last_at"), F.col("price_cents"))).alias(
            "price_now_cents"
        ),
        F.countDistinct("taken_at").alias("times"),
        F.covar_pop(x, F.col("position").cast("double")).alias("cov"),
        F.var_pop(x).alias("var"),
    )
    one = F.col("first_at") == F.col("last_at")
    change = F.when(
        F.col("before").isNotNull() & F.col("now").isNotNull() & ~one,
        F.col("before") - F.col("now"),
    )
    status = (
        F.when(one, "steady")
        .when(F.col("before").isNull(), "new")
        .when(F.col("now").isNull(), "left")
        .when(change > 0, "rising")
        .when(change < 0, "falling")
        .otherwise("steady")
    )
    velocity = F.when(F.col("times") >= 2, -(F.col("cov") / F.col("var")) + F.lit(0.0))
    result = products.join(counts, "category_id").select(
        "category_id",
        "product_id",
        F.col("latest.title").alias("title"),
        F.col("latest.kind").alias("kind"),
        status.alias("status"),
        F.col("before").cast("int").alias("position_before"),
        F.col("now").cast("int").alias("position_now"),
        change.cast("int").alias("change"),
        velocity.alias("velocity_per_day"),
        F.col("price_before_cents").cast("long").alias("price_before_cents"),
        F.col("price_now_cents").cast("long").alias("price_now_cents"),
        "first_at",
        "last_at",
        F.col("snapshots").cast("int").alias("snapshots"),
    )
    result.coalesce(1).write.mode("overwrite").parquet(job.output)
    table = spark.read.parquet(job.output).toArrow()
    return table.cast(TRENDS_SCHEMA).sort_by(
        [("category_id", "ascending"), ("product_id", "ascending")]
    )
