"""The 34 heatmap pictures of a generated week: the PNG renderer beside its matplotlib baseline.

Builds the 34 grids the report draws (``all_heatmaps`` over ``--payments`` generated payments,
``--stores`` stores in ``--cities`` cities, ``--days`` days: the shapes a 10-million-payment
week has; the pictures depend on the shapes, not on the count), then times, in the same run:

- the baseline: the renderer this module replaced, kept here as it was (one matplotlib
  ``Figure`` per picture, ticks and every text drawn by matplotlib), serial;
- ``render_heatmap_png`` for each grid, serial;
- ``render_heatmap_pngs`` with ``--workers`` threads (default: one per core);
- the same pictures drawn by a pool of as many spawned processes (start-up included), the
  alternative to threads.

The machine is shared: the load average is printed beside the figures.

    python benchmarks/bench_heatmap_png.py [--payments 1000000] [--stores 200] [--cities 20]
        [--days 7] [--workers N] [--repeats 2] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from bench_heatmaps import FIRST_DAY, generate, load_duckdb

from pulso.analytics.heatmaps import HeatmapGrid, all_heatmaps
from pulso.reports import heatmap_png as png
from pulso.store.duckdb import DuckDBStore

T = TypeVar("T")


# --------------------------------------------------------------------------- the baseline
# pulso/reports/heatmap_png.py before the Pillow renderer, as it was (helpers shared).


def matplotlib_png(
    grid: HeatmapGrid, *, dpi: int = png.DEFAULT_DPI, filter_text: str | None = None
) -> bytes:
    """The heatmap of ``grid`` as PNG bytes.

    ``filter_text`` (e.g. ``"loja LJ-0001"``) goes in the subtitle after the period: the grid
    does not record the store or city filter it was computed with.
    """
    png._check_grid(grid, dpi)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layout = png._layout(grid)
    figure = Figure(figsize=(layout.fig_w_in, layout.fig_h_in), dpi=dpi, facecolor="white")
    FigureCanvasAgg(figure)
    _draw(figure, grid, layout, filter_text)
    buffer = io.BytesIO()
    # zlib level 3 instead of 6: 34 ms instead of 49 ms per picture, for files 9 % larger.
    figure.savefig(
        buffer, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 3}
    )
    return buffer.getvalue()


def _draw(figure: Any, grid: HeatmapGrid, layout: Any, filter_text: str | None) -> None:
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    n_rows, n_columns = max(len(grid.rows), 1), max(len(grid.columns), 1)
    data = np.full((n_rows, n_columns), np.nan)
    for i, row in enumerate(grid.values):
        data[i, : len(row)] = [np.nan if v is None else float(v) for v in row]
    masked = np.ma.masked_invalid(data)
    top = float(masked.max()) if masked.count() else 1.0
    bottom = min(0.0, float(masked.min())) if masked.count() else 0.0
    norm = Normalize(vmin=bottom, vmax=top if top > bottom else bottom + 1.0)
    cmap = colormaps[png.COLORMAP].with_extremes(bad=png.BLANK_CELL_RGB)

    grid_w_in, grid_h_in = n_columns * layout.cell_w_in, n_rows * layout.cell_h_in
    axes = figure.add_axes(
        (
            layout.left_in / layout.fig_w_in,
            layout.bottom_in / layout.fig_h_in,
            grid_w_in / layout.fig_w_in,
            grid_h_in / layout.fig_h_in,
        )
    )
    image = axes.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    _draw_ticks(axes, grid, layout)
    _draw_cell_lines(axes, layout, n_rows, n_columns)
    formatter = png._cell_formatter(grid, layout)
    if formatter is not None:
        _draw_cell_text(axes, grid, formatter, image.to_rgba(masked))
    if not masked.count():
        axes.text(
            (n_columns - 1) / 2,
            (n_rows - 1) / 2,
            "Sem pagamentos no período",
            ha="center",
            va="center",
            fontsize=png._AXIS_TITLE_PT,
            color="#4b5563",
        )
    _draw_titles(figure, grid, layout, filter_text)
    _draw_colorbar(figure, grid, layout, image, grid_h_in)


def _draw_ticks(axes: Any, grid: HeatmapGrid, layout: Any) -> None:
    row_positions = range(0, len(grid.rows), layout.row_step)
    column_positions = range(0, len(grid.columns), layout.column_step)
    axes.set_yticks(list(row_positions), [grid.rows[i] for i in row_positions])
    axes.set_xticks(list(column_positions), [grid.columns[j] for j in column_positions])
    axes.tick_params(labelsize=png._TICK_PT, length=2, color="#9ca3af")
    # A store named "A$1 e B$2" must print as written, not as TeX between the dollar signs.
    for label in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        label.set_parse_math(False)
    if layout.x_labels_rotated:
        axes.tick_params(axis="x", labelrotation=90)
    axes.set_xlabel(png.AXIS_TITLES[grid.spec.columns], fontsize=png._AXIS_TITLE_PT)
    axes.set_ylabel(png.AXIS_TITLES[grid.spec.rows], fontsize=png._AXIS_TITLE_PT)
    for spine in axes.spines.values():
        spine.set_visible(False)


def _draw_cell_lines(axes: Any, layout: Any, n_rows: int, n_columns: int) -> None:
    # White gaps separate the cells only while they are big enough for the gap not to eat them.
    if layout.cell_w_in < 0.25 or layout.cell_h_in < 0.18:
        return
    # Two line collections, not one minor tick per cell edge: ticks cost ~0.3 ms each.
    axes.vlines([x - 0.5 for x in range(1, n_columns)], -0.5, n_rows - 0.5, "white", lw=1.2)
    axes.hlines([y - 0.5 for y in range(1, n_rows)], -0.5, n_columns - 0.5, "white", lw=1.2)


def _draw_cell_text(
    axes: Any, grid: HeatmapGrid, formatter: Callable[[float | Decimal], str], rgba: Any
) -> None:
    for i, row in enumerate(grid.values):
        for j, value in enumerate(row):
            if value is None:
                continue
            axes.text(
                j,
                i,
                formatter(value),
                ha="center",
                va="center",
                fontsize=png._CELL_PT,
                color=png._text_colour(tuple(rgba[i, j][:3])),
                parse_math=False,
            )


def _draw_titles(figure: Any, grid: HeatmapGrid, layout: Any, filter_text: str | None) -> None:
    x = png._SIDE_PAD_IN / layout.fig_w_in
    figure.text(
        x,
        1 - 0.3 / layout.fig_h_in,
        grid.spec.title,
        fontsize=png._TITLE_PT,
        fontweight="bold",
        va="center",
        parse_math=False,
    )
    figure.text(
        x,
        1 - 0.62 / layout.fig_h_in,
        png._subtitle(grid, filter_text),
        fontsize=png._SUBTITLE_PT,
        color="#4b5563",
        va="center",
        parse_math=False,
    )


def _draw_colorbar(
    figure: Any, grid: HeatmapGrid, layout: Any, image: Any, grid_h_in: float
) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    left_in = layout.left_in + len(grid.columns or [""]) * layout.cell_w_in + png._COLORBAR_GAP_IN
    height_in = layout.colorbar_h_in
    bottom_in = layout.bottom_in + grid_h_in - height_in
    colorbar_axes = figure.add_axes(
        (
            left_in / layout.fig_w_in,
            bottom_in / layout.fig_h_in,
            png._COLORBAR_W_IN / layout.fig_w_in,
            height_in / layout.fig_h_in,
        )
    )
    colorbar = figure.colorbar(image, cax=colorbar_axes)
    tick_label = png._scale_formatter(grid.spec)
    colorbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: tick_label(v)))
    if png._counts_whole_payments(grid.spec):
        colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    colorbar.ax.tick_params(labelsize=png._TICK_PT)
    colorbar.outline.set_visible(False)
    colorbar.set_label(png._colorbar_title(grid.spec), fontsize=png._TICK_PT + 1)
    # Placed past the widest tick label: matplotlib's own placement can overlap "R$ 8,0 mil".
    widest_tick_pt = png._text_width_pt(tick_label(float(image.norm.vmax)), png._TICK_PT)
    label_x_in = png._COLORBAR_W_IN + 0.08 + widest_tick_pt / png._PT_PER_IN + 0.12
    colorbar.ax.yaxis.set_label_coords(label_x_in / png._COLORBAR_W_IN, 0.5)


# --------------------------------------------------------------------------- timing


def timed(action: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best of ``repeats`` wall times in seconds, and the last result."""
    best_s, result = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        best_s = min(best_s, time.perf_counter() - started)
    assert result is not None
    return best_s, result


def _in_processes(grids: list[HeatmapGrid], workers: int) -> list[bytes]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(png.render_heatmap_png, grids))


def build_grids(payments: int, stores: int, cities: int, days: int) -> list[HeatmapGrid]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pulso.duckdb"
        load_duckdb(path, generate(payments, stores, cities, days, seed=7))
        store = DuckDBStore(path)
        try:
            end = FIRST_DAY + timedelta(days=days - 1)
            return list(all_heatmaps(store, start=FIRST_DAY, end=end).values())
        finally:
            store.close()


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--cities", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write both sets of pictures here")
    args = parser.parse_args()
    print(_load())
    grids = build_grids(args.payments, args.stores, args.cities, args.days)
    shapes = sorted({(len(g.rows), len(g.columns)) for g in grids})
    print(f"{len(grids)} grids from {args.payments:,} payments; shapes (rows, columns): {shapes}")
    png.render_heatmap_png(grids[0])  # imports and font caches, for both renderers
    matplotlib_png(grids[0])
    before_s, before = timed(lambda: [matplotlib_png(g) for g in grids], 1)
    serial_s, serial = timed(lambda: [png.render_heatmap_png(g) for g in grids], args.repeats)
    pool_s, pooled = timed(
        lambda: png.render_heatmap_pngs(grids, workers=args.workers), args.repeats
    )
    assert pooled == serial, "the threads must draw the same bytes"
    workers = args.workers or len(os.sched_getaffinity(0))
    processes_s, processed = timed(lambda: _in_processes(grids, workers), args.repeats)
    assert processed == serial
    mb = sum(map(len, before)) / 1e6
    print(f"baseline, matplotlib figure per picture, serial: {before_s:6.2f} s  ({mb:.1f} MB)")
    print(
        f"render_heatmap_png, serial:                     {serial_s:6.2f} s"
        f"  ({sum(map(len, serial)) / 1e6:.1f} MB) -> {before_s / serial_s:.1f}x faster"
    )
    print(
        f"render_heatmap_pngs, {workers} threads:               {pool_s:6.2f} s"
        f"  -> {before_s / pool_s:.1f}x the baseline, {serial_s / pool_s:.2f}x serial"
    )
    print(
        f"same, {workers} spawned processes instead:          {processes_s:6.2f} s"
        f"  -> {serial_s / processes_s:.2f}x serial"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for grid, old, new in zip(grids, before, serial, strict=True):
            (args.out / f"before_{grid.spec.file_name}").write_bytes(old)
            (args.out / grid.spec.file_name).write_bytes(new)
    print(_load())


if __name__ == "__main__":
    main()
