"""Analytics as data: the heatmap grids behind the report's pictures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pulso.analytics.heatmap_defs import HEATMAPS, HeatmapSpec
from pulso.analytics.heatmaps import heatmap
from pulso.api.deps import ApiKeyDep, StateDep

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], dependencies=[ApiKeyDep])

Cell = int | float | str | None


class HeatmapInfo(BaseModel):
    """One of the 34 heatmaps."""

    name: str
    title: str
    rows: str
    columns: str
    statistic: str
    unit: str = Field(description="count, brl (values are decimal strings), seconds, minutes")
    file_name: str


class HeatmapData(HeatmapInfo):
    """A heatmap's grid: ``values[i][j]`` is row ``i``, column ``j``; null is a blank cell."""

    start: date
    end: date
    row_labels: list[str]
    column_labels: list[str]
    values: list[list[Cell]]
    low_price_threshold: str | None = None


@router.get("/heatmaps")
def list_heatmaps() -> list[HeatmapInfo]:
    """The 34 heatmaps, their axes and units."""
    return [_info(spec) for spec in HEATMAPS.values()]


@router.get("/heatmaps/{name}", responses={404: {"description": "Unknown heatmap"}})
async def get_heatmap(
    name: str,
    state: StateDep,
    start: Annotated[date, Query(alias="from", description="First local day (inclusive)")],
    end: Annotated[date, Query(alias="to", description="Last local day (inclusive)")],
    store: Annotated[str | None, Query(description="Only this store id")] = None,
    city: Annotated[str | None, Query(description="Only this city")] = None,
) -> HeatmapData:
    """One heatmap's grid over a period, optionally for one store or city."""
    grid = await run_in_threadpool(
        heatmap, state.store, name, start=start, end=end, store_id=store, city=city
    )
    threshold = grid.low_price_threshold
    return HeatmapData(
        **_info(grid.spec).model_dump(),
        start=grid.start,
        end=grid.end,
        row_labels=list(grid.rows),
        column_labels=list(grid.columns),
        values=[[_cell(v) for v in row] for row in grid.values],
        low_price_threshold=None if threshold is None else f"{threshold:.2f}",
    )


def _info(spec: HeatmapSpec) -> HeatmapInfo:
    return HeatmapInfo(
        name=spec.name,
        title=spec.title,
        rows=spec.rows,
        columns=spec.columns,
        statistic=spec.statistic,
        unit=spec.unit,
        file_name=spec.file_name,
    )


def _cell(value: object) -> Cell:
    # Money stays exact on the wire: a decimal string, as charge amounts are.
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    assert value is None or isinstance(value, int | float)
    return value
