"""The Spark batch jobs in local mode on generated data, against pulso's own analytics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spark_support import spark, spark_skip_reason

from pulso.store.duckdb import DuckDBStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(spark_skip_reason() is not None, reason=str(spark_skip_reason())),
]
__all__ = ["spark"]

START = date(2026, 11, 2)
END = date(2026, 11, 4)


@pytest.fixture(scope="module")
def payments_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """Three days of ``pulso generate payments`` folded by the pipeline's payments processor."""
    from pulso.pipeline.processors.payments import PaymentsProcessor
    from pulso.sources.payments_generator import PaymentsConfig, generate_payments

    store = DuckDBStore(tmp_path_factory.mktemp("payments") / "pulso.duckdb")
    store.migrate()
    events = list(generate_payments(PaymentsConfig(start=START, days=3, n_stores=5, n_cities=3)))
    processor = PaymentsProcessor(b"k" * 32)
    with store.transaction() as tx:
        for i in range(0, len(events), 5_000):
            processor.process(events[i : i + 5_000], tx)
    yield store
    store.close()


def _same(spark_value: str, number: float, pulso_value: Any) -> bool:
    if isinstance(pulso_value, float):
        return math.isclose(number, pulso_value, rel_tol=1e-12)
    if isinstance(pulso_value, Decimal):
        return Decimal(spark_value) == pulso_value
    return bool(int(spark_value) == pulso_value)


def test_heatmap_cells_equal_the_store_engines(
    spark: Any, payments_store: DuckDBStore, tmp_path: Path
) -> None:
    from pulso.analytics.heatmaps import all_heatmaps
    from pulso.spark.batch import (
        PAYMENT_COLUMNS,
        SPARK_HEATMAPS,
        HeatmapJob,
        export_table,
        heatmap_cells,
    )

    parquet = tmp_path / "payments.parquet"
    assert export_table(payments_store, "payments", PAYMENT_COLUMNS, parquet) > 1_000
    job = HeatmapJob(str(parquet), str(tmp_path / "cells"), START, END)
    cells = heatmap_cells(spark, job).to_pylist()
    grids = all_heatmaps(payments_store, start=START, end=END, names=SPARK_HEATMAPS)
    assert len(SPARK_HEATMAPS) == 32
    expected = {
        (name, row, column): value
        for name, grid in grids.items()
        for row, values in zip(grid.rows, grid.values, strict=True)
        for column, value in zip(grid.columns, values, strict=True)
        if value is not None
    }
    found = {(c["grid"], c["row"], c["column"]): (c["value"], c["number"]) for c in cells}
    assert found.keys() == expected.keys()
    wrong = [k for k, (v, n) in found.items() if not _same(v, n, expected[k])]
    assert not wrong, [(k, found[k], expected[k]) for k in wrong[:5]]
    assert {c["grid"] for c in cells} == set(SPARK_HEATMAPS)
    written = spark.read.parquet(str(tmp_path / "cells")).count()
    assert written == len(cells)


def test_heatmaps_with_a_store_filter_and_a_threshold(
    spark: Any, payments_store: DuckDBStore, tmp_path: Path
) -> None:
    from pulso.analytics.heatmaps import all_heatmaps
    from pulso.spark.batch import PAYMENT_COLUMNS, HeatmapJob, export_table, heatmap_cells

    parquet = tmp_path / "payments.parquet"
    export_table(payments_store, "payments", PAYMENT_COLUMNS, parquet)
    names = ("precos_baixos_por_dia", "semana_mean", "tempo_medio_por_dia")
    store_id = payments_store.query("SELECT min(store_id) FROM payments")[0][0]
    threshold = Decimal("20.00")
    job = HeatmapJob(
        str(parquet), str(tmp_path / "cells"), START, END, names, store_id, None, threshold
    )
    cells = heatmap_cells(spark, job).to_pylist()
    grids = all_heatmaps(
        payments_store,
        start=START,
        end=END,
        store_id=store_id,
        low_price_threshold=threshold,
        names=names,
    )
    for c in cells:
        grid = grids[c["grid"]]
        value = grid.values[grid.rows.index(c["row"])][grid.columns.index(c["column"])]
        assert _same(c["value"], c["number"], value)
    assert {c["row"] for c in cells if c["grid"] == "precos_baixos_por_dia"} == {store_id}


def test_heatmap_job_refuses_bad_input(spark: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pulso.spark.batch import BatchJobError, HeatmapJob, heatmap_cells

    odd = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"store_id": ["a"], "amount": [1]}), odd)
    with pytest.raises(BatchJobError, match="lacks the payments columns"):
        heatmap_cells(spark, HeatmapJob(str(odd), str(tmp_path / "o"), START, END))
    with pytest.raises(BatchJobError, match="idle time"):
        heatmap_cells(
            spark, HeatmapJob(str(odd), str(tmp_path / "o"), START, END, ("ociosidade_por_dia",))
        )
    with pytest.raises(BatchJobError, match="no heatmap 'nope'"):
        heatmap_cells(spark, HeatmapJob(str(odd), str(tmp_path / "o"), START, END, ("nope",)))


def test_market_trends_equal_pulsos(spark: Any, tmp_path: Path) -> None:
    """Snapshots of the offline Mercado Livre rounds (what ``pulso market sync`` stores)."""
    from pulso.market.history import load_snapshots, sync_category
    from pulso.market.trends import category_trends
    from pulso.sources.mercadolivre_offline import offline_client, offline_data, offline_rounds
    from pulso.spark.batch import SNAPSHOT_COLUMNS, TrendsJob, export_table, market_trends

    store = DuckDBStore(tmp_path / "market.duckdb")
    store.migrate()
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    categories = list(offline_data().rounds[0]["highlights"])
    for index, days_ago in enumerate(offline_rounds()):
        client = offline_client(index)
        for category_id in categories:
            sync_category(client, store, category_id, now - timedelta(days=days_ago))
    parquet = tmp_path / "snapshots.parquet"
    export_table(store, "product_snapshots", SNAPSHOT_COLUMNS, parquet)
    since = now - timedelta(days=5)  # leaves the oldest round out
    table = market_trends(spark, TrendsJob(str(parquet), str(tmp_path / "trends"), since, now))
    expected = category_trends(load_snapshots(store, since=since, until=now))
    rows = {(r["category_id"], r["product_id"]): r for r in table.to_pylist()}
    assert len(rows) == sum(len(t.rows) for t in expected) > 0
    statuses = set()
    for trends in expected:
        for row in trends.rows:
            got = rows[trends.category_id, row.product_id]
            statuses.add(row.status)
            assert got["status"] == row.status
            assert got["title"] == row.title and got["kind"] == row.kind
            assert got["position_before"] == row.position_before
            assert got["position_now"] == row.position_now
            assert got["change"] == row.change
            assert got["snapshots"] == trends.snapshots
            assert got["first_at"] == trends.first_at and got["last_at"] == trends.last_at
            price_now = None if row.price_now is None else int(row.price_now * 100)
            assert got["price_now_cents"] == price_now
            if row.velocity_per_day is None:
                assert got["velocity_per_day"] is None
            else:
                assert math.isclose(got["velocity_per_day"], row.velocity_per_day, abs_tol=1e-9)
    assert {"rising", "falling", "new", "left"} <= statuses
