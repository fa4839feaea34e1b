"""One PNG per heatmap grid (``mapa_calor_<name>.png``), legible at a glance.

Pillow draws them on a white RGB image and numpy paints the cells, each a solid block exact to
the pixel; matplotlib gives the colour map, the colour bar's ticks (its ``MaxNLocator``) and
the font (its DejaVu Sans). Drawing through a matplotlib ``Figure`` cost ten times as much:
matplotlib 3.11 lays out each text and draws it glyph by glyph in Python and builds five
artists per tick (benchmarks/bench_heatmap_png.py keeps that renderer as its baseline).
matplotlib and Pillow are imported inside the functions: ``pulso --help`` must stay fast.
``render_heatmap_pngs`` draws many pictures in a thread per core.

Choices that keep the picture honest and readable:

- **Colour scale**: one sequential hue family (``YlOrRd``: pale yellow to dark red), darkest at
  the grid's maximum, and starting at 0, not at the minimum: every quantity here (payments,
  reais, seconds, minutes) is a non-negative amount, and a scale from the minimum would make a
  cell with 10 % more look several times larger.
- **Blank cells** (``None``, no payment) are light grey without a number, never painted as 0.
- **Layout** is computed in inches from the grid's shape: cells keep a readable size, the figure
  grows with rows and columns; cell text is written only when every value fits its cell
  (full ``R$ 1.234,56``, else compact ``R$ 1,2 mil``, else none), and row and column labels are
  thinned when the cells are smaller than the labels. Text is written as given (a ``$`` in a
  store's name is a dollar sign, never TeX).
"""

from __future__ import annotations

import functools
import io
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pulso.analytics.heatmap_defs import AXIS_TITLES, HeatmapSpec
from pulso.analytics.heatmaps import HeatmapGrid
from pulso.domain.money import format_brl
from pulso.reports import ReportError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage
    from PIL.ImageDraw import ImageDraw as PILDraw

__all__ = [
    "BLANK_CELL_RGB",
    "COLORMAP",
    "DEFAULT_DPI",
    "render_heatmap_png",
    "render_heatmap_pngs",
    "write_heatmap_pngs",
]

DEFAULT_DPI: Final = 110

COLORMAP: Final = "YlOrRd"
BLANK_CELL_RGB: Final = (0.85, 0.85, 0.85)
"""Light grey: darker than the palest yellow of the scale, so a blank never passes for a low."""

_TITLE_PT: Final = 13.0
_SUBTITLE_PT: Final = 9.0
_AXIS_TITLE_PT: Final = 10.0
_TICK_PT: Final = 8.0
_CELL_PT: Final = 7.0
_NO_PAYMENTS: Final = "Sem pagamentos no período"
_BOLD_WIDER: Final = 1.1  # DejaVu Sans Bold is about a tenth wider than the regular face
_CHAR_EM: Final = 0.62  # DejaVu Sans digits are 0.636 em, letters narrower: a safe mean width
_PT_PER_IN: Final = 72.0
_CHAR_WIDTH_EM: Final[dict[str, float]] = {
    **dict.fromkeys("0123456789$", 0.636),
    **dict.fromkeys(".,: ", 0.318),
    **dict.fromkeys("il", 0.278),
    "R": 0.695,
    "m": 0.974,
    "s": 0.521,
    "-": 0.361,
}
"""DejaVu Sans advance widths of the characters cell values are made of."""

_CELL_MAX_W_IN: Final = 1.1
_CELL_MIN_W_IN: Final = 0.16
_CELL_MAX_H_IN: Final = 0.42
_CELL_MIN_H_IN: Final = 0.1
_MAX_GRID_W_IN: Final = 16.0  # past this the cells narrow instead of the picture widening
_MAX_GRID_H_IN: Final = 26.0
_MIN_TEXT_CELL_H_PT: Final = 11.0  # below this height a number would touch the cell's edges
_CELL_PAD_PT: Final = 3.0

_TOP_IN: Final = 0.95
_BOTTOM_GAP_IN: Final = 0.25
_RIGHT_IN: Final = 1.55  # colour bar, its tick labels and its title
_COLORBAR_W_IN: Final = 0.2
_COLORBAR_GAP_IN: Final = 0.2
_SIDE_PAD_IN: Final = 0.3

_TEXT_DARK: Final = "#111827"
_TEXT_LIGHT: Final = "#ffffff"
_LABEL: Final = "#000000"
_MUTED: Final = "#4b5563"
_LABEL_PAD_PT: Final = 4.0  # between the grid and its row and column labels
_AXIS_TITLE_PAD_PT: Final = 4.0  # between the column labels and the axis title
_GAP_PT: Final = 1.2  # white line between cells
_SCALE_TICK_PT: Final = 3.5  # the colour bar's tick marks, and the gap to their labels
_SCALE_TICK_PAD_PT: Final = 3.5
_SCALE_TITLE_GAP_PT: Final = 6.0

_COLORBAR_TITLES: Final[dict[str, str]] = {
    "count": "Número de pagamentos",
    "low_price_count": "Pagamentos de valor baixo",
    "payments_per_day": "Pagamentos por dia (média)",
    "brl": "Valor (R$)",
    "seconds": "Tempo de confirmação (segundos)",
    "minutes": "Minutos ociosos",
}


@dataclass(frozen=True, slots=True)
class _Layout:
    cell_w_in: float
    cell_h_in: float
    left_in: float
    bottom_in: float
    fig_w_in: float
    fig_h_in: float
    colorbar_h_in: float
    row_step: int
    column_step: int
    x_labels_rotated: bool


def render_heatmap_png(
    grid: HeatmapGrid, *, dpi: int = DEFAULT_DPI, filter_text: str | None = None
) -> bytes:
    """The heatmap of ``grid`` as PNG bytes.

    ``filter_text`` (e.g. ``"loja LJ-0001"``) goes in the subtitle after the period: the grid
    does not record the store or city filter it was computed with.
    """
    _check_grid(grid, dpi)
    from PIL import Image, ImageDraw

    layout = _layout(grid, filter_text)
    size = (round(layout.fig_w_in * dpi), round(layout.fig_h_in * dpi))
    picture = Image.new("RGB", size, "white")
    page = _Page(picture, ImageDraw.Draw(picture), dpi)
    cells = _Cells.of(grid)
    box = _grid_box(grid, layout, dpi, size[1])
    _paint_cells(page, box, cells, layout)
    _write_labels(page, grid, layout, box, cells)
    _write_titles(page, grid, filter_text)
    _write_axis_titles(page, grid, layout, box)
    _draw_colorbar(page, grid, layout, box, cells)
    buffer = io.BytesIO()
    # zlib level 3 instead of 6: 40 % faster here, for files 6 % (text) to 40 % larger.
    picture.save(buffer, format="png", compress_level=3, dpi=(dpi, dpi))
    return buffer.getvalue()


def render_heatmap_pngs(
    grids: Iterable[HeatmapGrid],
    *,
    dpi: int = DEFAULT_DPI,
    filter_text: str | None = None,
    workers: int | None = None,
) -> list[bytes]:
    """The PNG of each grid, in order, drawn by ``workers`` threads at once (default: as many
    as the CPUs this process may use; 1 draws them one after the other).

    Threads, not processes: Pillow's drawing, zlib and numpy's copies release the GIL, so two
    threads on two otherwise idle cores drew the 34 pictures in about two thirds of the time
    of one, where two spawned processes were slower than one thread (each spends over a
    second importing matplotlib and pulso before drawing; bench_heatmap_png.py). When other
    work holds the cores, threads gain nothing, and cost little.
    """
    grids = list(grids)
    if workers is not None and workers < 1:
        raise ReportError(f"workers {workers} cannot draw anything; use 1 or more")
    workers = min(workers or _usable_cpus(), len(grids))
    draw = functools.partial(render_heatmap_png, dpi=dpi, filter_text=filter_text)
    if workers <= 1:
        return [draw(grid) for grid in grids]
    with ThreadPoolExecutor(workers, thread_name_prefix="heatmap-png") as pool:
        return list(pool.map(draw, grids))


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def write_heatmap_pngs(
    grids: Iterable[HeatmapGrid],
    out_dir: Path,
    *,
    dpi: int = DEFAULT_DPI,
    filter_text: str | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Write ``mapa_calor_<name>.png`` for each grid into ``out_dir`` (created if missing)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"cannot create the heatmap folder {out_dir}: {e.strerror}; choose a writable --out"
        ) from e
    grids = list(grids)
    pngs = render_heatmap_pngs(grids, dpi=dpi, filter_text=filter_text, workers=workers)
    written: list[Path] = []
    for grid, png in zip(grids, pngs, strict=True):
        path = out_dir / grid.spec.file_name
        try:
            path.write_bytes(png)
        except OSError as e:
            raise ReportError(
                f"cannot write heatmap {path}: {e.strerror}; choose a writable --out"
            ) from e
        written.append(path)
    return written


# --------------------------------------------------------------------------- checks and layout


def _check_grid(grid: HeatmapGrid, dpi: int) -> None:
    name = grid.spec.name
    if dpi < 10:
        raise ReportError(f"heatmap {name}: dpi {dpi} is too small to draw; use 72 or more")
    if len(grid.values) != len(grid.rows):
        raise ReportError(
            f"heatmap {name}: {len(grid.rows)} row labels but {len(grid.values)} rows of values;"
            " build the grid with one values row per label"
        )
    for index, row in enumerate(grid.values):
        if len(row) != len(grid.columns):
            raise ReportError(
                f"heatmap {name}: row {index} has {len(row)} values for {len(grid.columns)}"
                " columns; build the grid with one value per column (None for blank)"
            )


def _text_width_pt(text: str, size_pt: float) -> float:
    """Width of ``text`` in DejaVu Sans (matplotlib's font), close enough to decide fitting."""
    return sum(_CHAR_WIDTH_EM.get(c, _CHAR_EM) for c in text) * size_pt


def _layout(grid: HeatmapGrid, filter_text: str | None = None) -> _Layout:
    n_rows = max(len(grid.rows), 1)
    n_columns = max(len(grid.columns), 1)
    cell_w_in = _clamp(_MAX_GRID_W_IN / n_columns, _CELL_MIN_W_IN, _CELL_MAX_W_IN)
    if not grid.rows or not grid.columns:  # one blank cell, wide enough to say why
        cell_w_in = _text_width_pt(_NO_PAYMENTS, _AXIS_TITLE_PT) / _PT_PER_IN + 0.3
    cell_h_in = _clamp(_MAX_GRID_H_IN / n_rows, _CELL_MIN_H_IN, _CELL_MAX_H_IN)
    tick_h_pt = _TICK_PT * 1.35
    row_step = max(1, math.ceil(tick_h_pt / (cell_h_in * _PT_PER_IN)))
    widest_column = max((_text_width_pt(c, _TICK_PT) for c in grid.columns), default=0.0)
    x_labels_rotated = widest_column + 2.0 > cell_w_in * _PT_PER_IN
    column_room_pt = tick_h_pt if x_labels_rotated else widest_column + 4.0
    column_step = max(1, math.ceil(column_room_pt / (cell_w_in * _PT_PER_IN)))
    widest_row_in = max((_text_width_pt(r, _TICK_PT) for r in grid.rows), default=0.0) / 72
    left_in = _SIDE_PAD_IN + _AXIS_TITLE_PT * 1.6 / _PT_PER_IN + widest_row_in + 0.1
    x_labels_in = (widest_column if x_labels_rotated else _TICK_PT * 1.4) / _PT_PER_IN
    bottom_in = _BOTTOM_GAP_IN + _AXIS_TITLE_PT * 1.6 / _PT_PER_IN + x_labels_in + 0.1
    title_pt = max(
        _text_width_pt(grid.spec.title, _TITLE_PT) * _BOLD_WIDER,
        _text_width_pt(_subtitle(grid, filter_text), _SUBTITLE_PT),
    )
    title_in = title_pt / _PT_PER_IN + 2 * _SIDE_PAD_IN
    fig_w_in = max(left_in + n_columns * cell_w_in + _RIGHT_IN, title_in, 6.0)
    # The colour bar is at least as tall as its title, reaching below a short grid if needed.
    colorbar_title_in = _text_width_pt(_colorbar_title(grid.spec), _TICK_PT + 1) / _PT_PER_IN
    colorbar_h_in = max(min(n_rows * cell_h_in, 4.0), colorbar_title_in + 0.2)
    fig_h_in = max(_TOP_IN + n_rows * cell_h_in + bottom_in, _TOP_IN + colorbar_h_in + 0.3)
    bottom_in = fig_h_in - _TOP_IN - n_rows * cell_h_in  # the grid hangs under the titles
    return _Layout(
        cell_w_in,
        cell_h_in,
        left_in,
        bottom_in,
        fig_w_in,
        fig_h_in,
        colorbar_h_in,
        row_step,
        column_step,
        x_labels_rotated,
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True, slots=True)
class _Page:
    """The picture being drawn, its Pillow drawing context and its resolution."""

    picture: PILImage
    draw: PILDraw
    dpi: int

    def px(self, points: float) -> float:
        return points * self.dpi / _PT_PER_IN

    def font(self, points: float, *, bold: bool = False) -> Any:
        return _font(self.px(points), bold)

    def write(
        self, xy: tuple[float, float], text: str, points: float, fill: str, anchor: str
    ) -> None:
        self.draw.text(xy, text, fill=fill, font=self.font(points), anchor=anchor)

    def write_upwards(
        self, xy: tuple[float, float], text: str, points: float, fill: str, anchor: str
    ) -> None:
        """``text`` turned 90° (read bottom to top); ``anchor`` places the turned box on
        ``xy`` as Pillow's do: "mt" centred under xy, "mm" centred on it, "lm" right of it."""
        from PIL import Image, ImageDraw

        font = self.font(points)
        left, upper, right, lower = font.getbbox(text)
        mask = Image.new("L", (max(right - left, 1), max(lower - upper, 1)))
        ImageDraw.Draw(mask).text((-left, -upper), text, fill=255, font=font)
        turned = mask.rotate(90, expand=True)
        x, y = xy
        x -= 0 if anchor[0] == "l" else turned.width / 2
        y -= 0 if anchor[1] == "t" else turned.height / 2
        self.picture.paste(Image.new("RGB", turned.size, fill), (round(x), round(y)), turned)


@dataclass(frozen=True, slots=True)
class _Cells:
    """The grid's values as a masked array (blank = masked), its scale and cell colours."""

    values: Any  # numpy masked array, rows x columns
    norm: Any  # matplotlib Normalize
    cmap: Any  # matplotlib Colormap, blank cells BLANK_CELL_RGB
    rgba: Any  # floats, rows x columns x 4

    @staticmethod
    def of(grid: HeatmapGrid) -> _Cells:
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
        cmap = colormaps[COLORMAP].with_extremes(bad=BLANK_CELL_RGB)
        return _Cells(masked, norm, cmap, cmap(norm(masked)))


@dataclass(frozen=True, slots=True)
class _Box:
    """Pixel edges of the cells: ``xs[j]..xs[j + 1]`` is column j, ``ys[i]..ys[i + 1]`` row i
    (y grows downwards)."""

    xs: Any  # numpy int array, columns + 1
    ys: Any  # numpy int array, rows + 1


def _grid_box(grid: HeatmapGrid, layout: _Layout, dpi: int, height_px: int) -> _Box:
    import numpy as np

    n_rows, n_columns = max(len(grid.rows), 1), max(len(grid.columns), 1)
    top = height_px - (layout.bottom_in + n_rows * layout.cell_h_in) * dpi
    xs = np.rint(layout.left_in * dpi + np.arange(n_columns + 1) * layout.cell_w_in * dpi)
    ys = np.rint(top + np.arange(n_rows + 1) * layout.cell_h_in * dpi)
    return _Box(xs.astype(int), ys.astype(int))


def _paint_cells(page: _Page, box: _Box, cells: _Cells, layout: _Layout) -> None:
    """Each cell a solid block of its colour, with white gaps between cells while they are big
    enough for the gap not to eat them."""
    import numpy as np
    from PIL import Image

    xs, ys = box.xs, box.ys
    colours = np.rint(np.asarray(cells.rgba)[:, :, :3] * 255).astype(np.uint8)
    block = np.repeat(np.repeat(colours, np.diff(ys), axis=0), np.diff(xs), axis=1)
    if layout.cell_w_in >= 0.25 and layout.cell_h_in >= 0.18:
        half = max(1, round(page.px(_GAP_PT))) / 2
        for x in xs[1:-1] - xs[0]:
            block[:, round(x - half) : round(x + half)] = 255
        for y in ys[1:-1] - ys[0]:
            block[round(y - half) : round(y + half), :] = 255
    page.picture.paste(Image.fromarray(block, "RGB"), (int(xs[0]), int(ys[0])))


def _write_labels(
    page: _Page, grid: HeatmapGrid, layout: _Layout, box: _Box, cells: _Cells
) -> None:
    """Row and column labels beside the grid, and the value in each cell when it fits."""
    xs, ys = box.xs, box.ys
    pad = page.px(_LABEL_PAD_PT)
    for i in range(0, len(grid.rows), layout.row_step):
        page.write((xs[0] - pad, (ys[i] + ys[i + 1]) / 2), grid.rows[i], _TICK_PT, _LABEL, "rm")
    for j in range(0, len(grid.columns), layout.column_step):
        middle = (xs[j] + xs[j + 1]) / 2
        if layout.x_labels_rotated:
            page.write_upwards((middle, ys[-1] + pad), grid.columns[j], _TICK_PT, _LABEL, "mt")
        else:
            page.write((middle, ys[-1] + pad), grid.columns[j], _TICK_PT, _LABEL, "mt")
    middle_xy = ((xs[0] + xs[-1]) / 2, (ys[0] + ys[-1]) / 2)
    if not cells.values.count():
        page.write(middle_xy, _NO_PAYMENTS, _AXIS_TITLE_PT, _MUTED, "mm")
        return
    formatter = _cell_formatter(grid, layout)
    if formatter is None:
        return
    font = page.font(_CELL_PT)
    text = page.draw.text
    for i, row in enumerate(grid.values):
        middle_y = (ys[i] + ys[i + 1]) / 2
        for j, value in enumerate(row):
            if value is not None:
                fill = _text_colour(tuple(cells.rgba[i, j][:3]))
                xy = ((xs[j] + xs[j + 1]) / 2, middle_y)
                text(xy, formatter(value), fill=fill, font=font, anchor="mm")


def _write_titles(page: _Page, grid: HeatmapGrid, filter_text: str | None) -> None:
    x = page.dpi * _SIDE_PAD_IN
    title_font = page.font(_TITLE_PT, bold=True)
    page.draw.text((x, 0.3 * page.dpi), grid.spec.title, fill=_LABEL, font=title_font, anchor="lm")
    page.write((x, 0.62 * page.dpi), _subtitle(grid, filter_text), _SUBTITLE_PT, _MUTED, "lm")


def _write_axis_titles(page: _Page, grid: HeatmapGrid, layout: _Layout, box: _Box) -> None:
    if layout.x_labels_rotated:
        labels_pt = max((_text_width_pt(c, _TICK_PT) for c in grid.columns), default=0.0)
    else:
        labels_pt = _TICK_PT * 1.2
    below = box.ys[-1] + page.px(_LABEL_PAD_PT + labels_pt + _AXIS_TITLE_PAD_PT)
    middle_x = (box.xs[0] + box.xs[-1]) / 2
    page.write((middle_x, below), AXIS_TITLES[grid.spec.columns], _AXIS_TITLE_PT, _LABEL, "mt")
    middle_y = (box.ys[0] + box.ys[-1]) / 2
    row_title_x = page.dpi * (_SIDE_PAD_IN + _AXIS_TITLE_PT * 0.8 / _PT_PER_IN)
    row_title = AXIS_TITLES[grid.spec.rows]
    page.write_upwards((row_title_x, middle_y), row_title, _AXIS_TITLE_PT, _LABEL, "mm")


def _draw_colorbar(
    page: _Page, grid: HeatmapGrid, layout: _Layout, box: _Box, cells: _Cells
) -> None:
    """The scale beside the grid: the colours from its top (maximum) down to 0, ticks at round
    values labelled like the cells, and its title."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator
    from PIL import Image

    left = round(box.xs[-1] + page.px(_COLORBAR_GAP_IN * _PT_PER_IN))
    width = max(1, round(page.px(_COLORBAR_W_IN * _PT_PER_IN)))
    height = max(2, round(page.px(layout.colorbar_h_in * _PT_PER_IN)))
    top = int(box.ys[0])
    shades = cells.cmap(np.linspace(1.0, 0.0, height), bytes=True)[:, :3]
    page.picture.paste(Image.fromarray(np.repeat(shades[:, None, :], width, axis=1)), (left, top))
    vmin, vmax = float(cells.norm.vmin), float(cells.norm.vmax)
    # As matplotlib's AutoLocator on the bar: at most one tick per two label heights, up to 9.
    bins = max(min(int(layout.colorbar_h_in * _PT_PER_IN // (2 * _TICK_PT)), 9), 1)
    locator = MaxNLocator(bins, steps=[1, 2, 2.5, 5, 10], integer=_counts_whole_payments(grid.spec))
    span = vmax - vmin
    ticks = [t for t in locator.tick_values(vmin, vmax) if -1e-9 <= (t - vmin) / span <= 1 + 1e-9]
    label = _scale_formatter(grid.spec)
    tick_length, tick_pad = page.px(_SCALE_TICK_PT), page.px(_SCALE_TICK_PAD_PT)
    widest = 0.0
    for value in ticks:
        y = top + (height - 1) * (vmax - value) / span
        page.draw.line([(left + width, y), (left + width + tick_length, y)], fill=_LABEL)
        text = label(value)
        page.write((left + width + tick_length + tick_pad, y), text, _TICK_PT, _LABEL, "lm")
        widest = max(widest, page.font(_TICK_PT).getlength(text))
    title_x = left + width + tick_length + tick_pad + widest + page.px(_SCALE_TITLE_GAP_PT)
    title_xy = (title_x, top + height / 2)
    page.write_upwards(title_xy, _colorbar_title(grid.spec), _TICK_PT + 1, _LABEL, "lm")


_FONTS = threading.local()


def _font(size_px: float, bold: bool) -> Any:
    """matplotlib's own font file (DejaVu Sans), the one the layout's widths are measured on.
    Cached per thread: a FreeType face must not draw for two threads at once."""
    fonts: dict[tuple[float, bool], Any] | None = getattr(_FONTS, "fonts", None)
    if fonts is None:
        fonts = _FONTS.fonts = {}
    font = fonts.get((size_px, bold))
    if font is None:
        from PIL import ImageFont

        font = ImageFont.truetype(_font_path(bold), size_px, layout_engine=ImageFont.Layout.BASIC)
        fonts[size_px, bold] = font
    return font


@functools.cache
def _font_path(bold: bool) -> str:
    from matplotlib import font_manager

    weight = "bold" if bold else "normal"
    properties = font_manager.FontProperties(family=["sans-serif"], weight=weight)
    return str(font_manager.findfont(properties))


def _text_colour(rgb: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with the cell (WCAG relative luminance)."""
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    # Contrast with white is 1.05 / (L + 0.05), with black (L + 0.05) / 0.05: equal at L ≈ 0.179.
    return _TEXT_DARK if luminance > 0.179 else _TEXT_LIGHT


# --------------------------------------------------------------------------- words and numbers


def _subtitle(grid: HeatmapGrid, filter_text: str | None) -> str:
    from pulso.reports.pdf import format_date

    parts = [f"{format_date(grid.start)} – {format_date(grid.end)}", "pagamentos confirmados"]
    if grid.spec.statistic == "low_price_count":
        if grid.low_price_threshold is None:
            parts.append("valor baixo: sem pagamentos no período")
        else:
            parts.append(f"valor baixo: abaixo de {format_brl(grid.low_price_threshold)}")
    if filter_text:
        parts.append(filter_text)
    return " · ".join(parts)


def _counts_whole_payments(spec: HeatmapSpec) -> bool:
    """Counts of payments: the scale shows 0, 1, 2…, never 0,5 payments."""
    return spec.unit == "count" and spec.statistic != "payments_per_day"


def _colorbar_title(spec: HeatmapSpec) -> str:
    return _COLORBAR_TITLES.get(spec.statistic) or _COLORBAR_TITLES[spec.unit]


def _decimal_br(value: float | Decimal, places: int) -> str:
    """``1.234,5``: Brazilian thousands dot and decimal comma."""
    quantum = Decimal(1).scaleb(-places)
    text = f"{Decimal(str(value)).quantize(quantum, ROUND_HALF_EVEN):,.{places}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _compact_brl(value: float | Decimal) -> str:
    """``R$ 950``, ``R$ 1,2 mil``, ``R$ 3,4 mi``: amounts for narrow cells and the colour bar."""
    amount = abs(float(value))
    sign = "-" if float(value) < 0 else ""
    if amount >= 1_000_000:
        return f"{sign}R$ {_decimal_br(amount / 1_000_000, 1)} mi"
    if amount >= 1_000:
        return f"{sign}R$ {_decimal_br(amount / 1_000, 1)} mil"
    return f"{sign}R$ {_decimal_br(amount, 0 if amount >= 100 else 2)}"


def _format_count(value: float | Decimal) -> str:
    from pulso.reports.pdf import format_count

    if isinstance(value, int):
        return format_count(value)
    # Per-day means are fractions: 0,4 payments a day must not read as 0.
    return format_count(round(value)) if value >= 100 else _decimal_br(value, 1)


def _format_seconds(value: float | Decimal) -> str:
    return f"{_decimal_br(value, 1)} s"


def _format_minutes(value: float | Decimal) -> str:
    from pulso.reports.pdf import format_count

    return format_count(round(value))


def _cell_formatters(spec: HeatmapSpec) -> list[Callable[[float | Decimal], str]]:
    """The ways to write a value of ``spec``, from the fullest to the most compact."""
    if spec.unit == "brl":
        return [lambda v: format_brl(Decimal(str(v))), _compact_brl]
    if spec.unit == "seconds":
        return [_format_seconds]
    if spec.unit == "minutes":
        return [_format_minutes]
    return [_format_count]


def _scale_formatter(spec: HeatmapSpec) -> Callable[[float], str]:
    if spec.unit == "brl":
        return _compact_brl
    if spec.unit == "seconds":
        return _format_seconds
    if spec.unit == "minutes":
        return _format_minutes
    return lambda v: _format_count(float(v)) if v != int(v) else _format_count(int(v))


def _cell_formatter(grid: HeatmapGrid, layout: _Layout) -> Callable[[float | Decimal], str] | None:
    """The fullest formatter whose every value fits its cell; None when no text fits."""
    if layout.cell_h_in * _PT_PER_IN < _MIN_TEXT_CELL_H_PT:
        return None
    room_pt = layout.cell_w_in * _PT_PER_IN - 2 * _CELL_PAD_PT
    values = [v for row in grid.values for v in row if v is not None]
    for formatter in _cell_formatters(grid.spec):
        widest = max((_text_width_pt(formatter(v), _CELL_PT) for v in values), default=0.0)
        if widest <= room_pt:
            return formatter
    return None
