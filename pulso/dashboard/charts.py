"""Vega-Lite specs for the dashboard's charts, with Brazilian number formats.

Plain dictionaries (``st.vega_lite_chart`` draws them in the browser, offline); the data is
inlined, already in the order it is shown, and every tooltip carries pre-formatted text so the
page never shows ``1,234.56`` where a Brazilian expects ``1.234,56``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from pulso.analytics.heatmap_defs import AXIS_TITLES
from pulso.dashboard.client import HeatmapGrid
from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count, format_decimal

Spec = dict[str, Any]
Row = Mapping[str, Any]

PT_BR_NUMBERS: Final = {
    "decimal": ",",
    "thousands": ".",
    "grouping": [3],
    "currency": ["R$ ", ""],
}
BAR_COLOR: Final = "#0f766e"
HEATMAP_SCHEME: Final = "oranges"
_AXIS_TITLES: Final[dict[str, str]] = {str(k): v for k, v in AXIS_TITLES.items()}


def bar_chart(
    rows: Sequence[Row],
    *,
    x: str,
    y: str,
    tooltip: Sequence[str],
    y_title: str,
    height: int = 260,
) -> Spec:
    """Bars of ``y`` (a number) per ``x`` (a label, kept in the order of ``rows``)."""
    return {
        "data": {"values": [dict(r) for r in rows]},
        "mark": {"type": "bar", "color": BAR_COLOR, "tooltip": True},
        "height": height,
        "encoding": {
            "x": {"field": x, "type": "ordinal", "sort": None, "axis": {"labelAngle": 0}},
            "y": {"field": y, "type": "quantitative", "title": y_title, "axis": {"format": ",.0f"}},
            "tooltip": [{"field": name, "type": "nominal"} for name in tooltip],
        },
        "config": {"locale": {"number": PT_BR_NUMBERS}},
    }


def heatmap_chart(grid: HeatmapGrid, *, height: int = 420) -> Spec:
    """A heatmap grid as coloured cells, rows and columns in the API's order; blank cells
    (no data) stay white."""
    cells = [
        {
            "linha": row,
            "coluna": column,
            "valor": float(value),
            "texto": format_cell(grid.unit, value),
        }
        for row, values in zip(grid.row_labels, grid.values, strict=True)
        for column, value in zip(grid.column_labels, values, strict=True)
        if value is not None
    ]
    return {
        "data": {"values": cells},
        "mark": {"type": "rect", "tooltip": True},
        "height": height,
        "encoding": {
            # every row and column of the grid, also those with no value at all
            "x": {
                "field": "coluna",
                "type": "ordinal",
                "scale": {"domain": grid.column_labels},
                "axis": {"labelAngle": 0},
                "title": None,
            },
            "y": {
                "field": "linha",
                "type": "ordinal",
                "scale": {"domain": grid.row_labels},
                "title": None,
            },
            "color": {
                "field": "valor",
                "type": "quantitative",
                "title": None,
                "scale": {"scheme": HEATMAP_SCHEME},
                "legend": {"format": ",.0f"},
            },
            "tooltip": [
                {"field": "linha", "type": "nominal", "title": axis_title(grid.rows)},
                {"field": "coluna", "type": "nominal", "title": axis_title(grid.columns)},
                {"field": "texto", "type": "nominal", "title": "valor"},
            ],
        },
        "config": {"locale": {"number": PT_BR_NUMBERS}},
    }


def axis_title(axis: str) -> str:
    """``Dia da semana`` for ``weekday``; an unknown axis as it came."""
    return _AXIS_TITLES.get(axis, axis)


def format_cell(unit: str, value: int | float | str) -> str:
    """A heatmap value as text: counts ``1.234``, money ``R$ 1.234,56``, ``12,3 s``."""
    if unit == "brl":
        return format_brl(Decimal(str(value)))
    if unit == "count" and float(value).is_integer():
        return format_count(int(float(value)))
    suffix = {"seconds": " s", "minutes": " min"}.get(unit, "")
    return format_decimal(float(value), places=1) + suffix
