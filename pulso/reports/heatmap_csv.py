"""Heatmap grids as CSV: the data behind each picture, one file per heatmap."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from pulso.analytics.heatmaps import HeatmapGrid


def heatmap_csv(grid: HeatmapGrid) -> str:
    """Rows as in the picture, a header of column labels; blank cells are empty fields and
    money is a decimal with a dot (machine-readable; the pictures carry the R$ format)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"{grid.spec.rows}\\{grid.spec.columns}", *grid.columns])
    for label, values in zip(grid.rows, grid.values, strict=True):
        writer.writerow([label, *(_field(v) for v in values)])
    return out.getvalue()


def write_heatmap_csv(grid: HeatmapGrid, out_dir: Path) -> Path:
    path = out_dir / grid.spec.file_name.replace(".png", ".csv")
    path.write_text(heatmap_csv(grid), encoding="utf-8")
    return path


def _field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)
