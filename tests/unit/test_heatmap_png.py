"""Heatmap PNGs: decoded back to pixels to check blanks, the colour scale and the layout."""

from __future__ import annotations

import io
import struct
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from pulso.analytics.heatmap_defs import HEATMAPS, HeatmapSpec
from pulso.analytics.heatmaps import HeatmapGrid, Value
from pulso.reports import ReportError
from pulso.reports import heatmap_png as module
from pulso.reports.heatmap_png import (
    BLANK_CELL_RGB,
    COLORMAP,
    render_heatmap_png,
    write_heatmap_pngs,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START, END = date(2026, 11, 16), date(2026, 11, 22)


def _grid(spec: HeatmapSpec, values: list[list[Value]], **kwargs: object) -> HeatmapGrid:
    rows = [f"r{i}" for i in range(len(values))]
    columns = [f"c{j}" for j in range(len(values[0]) if values else 0)]
    return HeatmapGrid(spec, rows, columns, values, START, END, **kwargs)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _rgb255(rgb: tuple[float, ...]) -> np.ndarray:
    return np.round(np.array(rgb[:3]) * 255).astype(int)


def _mask(pixels: np.ndarray, rgb: tuple[float, ...]) -> np.ndarray:
    return np.all(np.abs(pixels - _rgb255(rgb)) <= 1, axis=2)  # type: ignore[no-any-return]


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def _size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_png_signature_and_size_follow_dpi() -> None:
    grid = _grid(HEATMAPS["semana_count"], [[1, 2], [3, None]])
    png = render_heatmap_png(grid)
    assert png.startswith(PNG_SIGNATURE)
    width, height = _size(png)
    assert 500 < width < 4000 and 200 < height < 4000
    bigger = render_heatmap_png(grid, dpi=220)
    assert _size(bigger)[0] == pytest.approx(2 * width, abs=2)


def test_blank_is_grey_max_is_darkest_and_scale_starts_at_zero() -> None:
    # r0 = [2, 10], r1 = [blank, 5]: the max is top right, the blank bottom left.
    pixels = _pixels(render_heatmap_png(_grid(HEATMAPS["semana_count"], [[2, 10], [None, 5]])))
    cmap = colormaps[COLORMAP]
    grey = _mask(pixels, BLANK_CELL_RGB)
    darkest = _mask(pixels, cmap(1.0))
    two_of_ten = _mask(pixels, cmap(0.2))  # from 0, not from the minimum 2 (which is cmap(0))
    assert grey.sum() > 2000
    # Whole cells (less their number), not only the colour bar's thin bands.
    assert darkest.sum() > 0.5 * grey.sum()
    assert two_of_ten.sum() > 0.5 * grey.sum()
    grey_x, grey_y = _centroid(grey)
    dark_x, dark_y = _centroid(darkest)
    assert dark_x > grey_x and dark_y < grey_y
    low_x, low_y = _centroid(two_of_ten)
    assert low_x < dark_x and low_y < grey_y


def test_blank_cell_is_not_painted_as_zero() -> None:
    pixels = _pixels(render_heatmap_png(_grid(HEATMAPS["semana_count"], [[0, None]])))
    palest = _mask(pixels, colormaps[COLORMAP](0.0))
    grey = _mask(pixels, BLANK_CELL_RGB)
    assert grey.sum() > 0.5 * palest.sum() > 0


def test_picture_grows_with_rows_and_columns() -> None:
    spec = HEATMAPS["ociosidade_por_hora_loja"]
    few = _size(render_heatmap_png(_grid(spec, [[30.0] * 24] * 3)))
    many = _size(render_heatmap_png(_grid(spec, [[30.0] * 24] * 30)))
    narrow = _size(render_heatmap_png(_grid(spec, [[30.0] * 7] * 3)))
    assert many[1] > few[1] + 500
    assert abs(many[0] - few[0]) < 50  # only the longer row labels widen it
    assert narrow[0] < few[0]


def test_two_hundred_stores_render_without_cell_text() -> None:
    spec = HEATMAPS["media_transacoes_por_hora_loja"]
    grid = _grid(spec, [[float(i + j) for j in range(24)] for i in range(200)])
    layout = module._layout(grid)
    assert module._cell_formatter(grid, layout) is None
    assert layout.row_step > 1  # tick labels thinned, not overlapping
    width, height = _size(render_heatmap_png(grid, dpi=72))
    assert height > width


def test_every_heatmap_writes_its_seed_file_name(tmp_path: Path) -> None:
    grids = [
        _grid(spec, [[1, None], [2, 3]], low_price_threshold=Decimal("9.90"))
        for spec in HEATMAPS.values()
    ]
    paths = write_heatmap_pngs(grids, tmp_path / "out")
    assert len(HEATMAPS) == 34
    assert [p.name for p in paths] == [f"mapa_calor_{name}.png" for name in HEATMAPS]
    for path in paths:
        assert path.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("values", [[[None, None], [None, None]], []])
def test_all_blank_or_empty_grid_renders(values: list[list[Value]]) -> None:
    png = render_heatmap_png(_grid(HEATMAPS["pagamentos_por_dia"], values))
    pixels = _pixels(png)
    assert _mask(pixels, colormaps[COLORMAP](1.0)).sum() < 200  # only the colour bar's band


def test_ragged_grid_is_refused() -> None:
    spec = HEATMAPS["semana_sum"]
    ragged = HeatmapGrid(spec, ["seg", "ter"], ["0", "1"], [[Decimal(1), None]], START, END)
    with pytest.raises(ReportError, match="2 row labels but 1 rows"):
        render_heatmap_png(ragged)
    short = HeatmapGrid(spec, ["seg"], ["0", "1"], [[Decimal(1)]], START, END)
    with pytest.raises(ReportError, match="row 0 has 1 values for 2 columns"):
        render_heatmap_png(short)


def test_dollar_signs_in_names_print_as_written() -> None:
    # matplotlib would parse "$\\nao$" as TeX and fail on the unknown command.
    spec = HEATMAPS["loja_count"]
    grid = HeatmapGrid(spec, ["Loja $\\nao$"], ["seg"], [[1]], START, END)
    png = render_heatmap_png(grid, filter_text="cidade $\\nao$")
    assert png.startswith(PNG_SIGNATURE)


def test_unwritable_folder_is_a_report_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    grid = _grid(HEATMAPS["semana_count"], [[1]])
    with pytest.raises(ReportError, match="cannot create the heatmap folder"):
        write_heatmap_pngs([grid], blocker / "out")


def test_values_are_written_the_brazilian_way() -> None:
    assert module._compact_brl(Decimal("1234.56")) == "R$ 1,2 mil"
    assert module._compact_brl(Decimal("3456789")) == "R$ 3,5 mi"
    assert module._compact_brl(Decimal("950")) == "R$ 950"
    assert module._compact_brl(Decimal("12.5")) == "R$ 12,50"
    assert module._format_seconds(12.34) == "12,3 s"
    assert module._format_minutes(42.6) == "43"
    assert module._format_count(12345) == "12.345"
    assert module._format_count(0.4) == "0,4"  # a per-day mean does not round to 0


def test_amounts_shrink_to_compact_form_in_narrow_cells() -> None:
    spec = HEATMAPS["semana_sum"]
    wide = _grid(spec, [[Decimal("1234.56")] * 7])
    narrow = _grid(spec, [[Decimal("1234.56")] * 24])
    wide_format = module._cell_formatter(wide, module._layout(wide))
    narrow_format = module._cell_formatter(narrow, module._layout(narrow))
    assert wide_format is not None and wide_format(Decimal("1234.56")) == "R$ 1.234,56"
    assert narrow_format is not None and narrow_format(Decimal("1234.56")) == "R$ 1,2 mil"


def test_text_colour_contrasts_with_the_cell() -> None:
    cmap = colormaps[COLORMAP]
    assert module._text_colour(cmap(0.0)[:3]) == "#111827"
    assert module._text_colour(cmap(1.0)[:3]) == "#ffffff"


def test_subtitle_has_period_and_low_price_threshold() -> None:
    spec = HEATMAPS["precos_baixos_por_dia"]
    grid = _grid(spec, [[1]], low_price_threshold=Decimal("7.5"))
    subtitle = module._subtitle(grid, "loja LJ-0001")
    assert subtitle.startswith("16/11/2026 – 22/11/2026")
    assert "abaixo de R$ 7,50" in subtitle and subtitle.endswith("loja LJ-0001")


def test_importing_the_module_does_not_load_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pulso.reports.heatmap_png; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _cell_box(grid: HeatmapGrid, png: bytes, i: int, j: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) of cell (i, j) as the renderer lays it out, less
    the white gaps between cells."""
    _, height = _size(png)
    box = module._grid_box(grid, module._layout(grid), module.DEFAULT_DPI, height)
    xs, ys = box.xs, box.ys
    return int(xs[j]) + 2, int(ys[i]) + 2, int(xs[j + 1]) - 2, int(ys[i + 1]) - 2


def _near(pixels: np.ndarray, hex_colour: str, tolerance: int = 40) -> np.ndarray:
    rgb = np.array([int(hex_colour[k : k + 2], 16) for k in (1, 3, 5)])
    return np.all(np.abs(pixels - rgb) <= tolerance, axis=2)  # type: ignore[no-any-return]


def test_values_are_written_in_their_cells_in_a_contrasting_colour() -> None:
    grid = _grid(HEATMAPS["semana_sum"], [[Decimal("1.00"), Decimal("1234.56")]])
    png = render_heatmap_png(grid)
    pixels = _pixels(png)
    pale = _cell_box(grid, png, 0, 0)
    dark = _cell_box(grid, png, 0, 1)
    pale_cell = pixels[pale[1] : pale[3], pale[0] : pale[2]]
    dark_cell = pixels[dark[1] : dark[3], dark[0] : dark[2]]
    # Dark text on the pale cell, white text on the darkest one; a few dozen pixels each.
    assert _near(pale_cell, "#111827").sum() > 30
    assert _near(dark_cell, "#ffffff", 10).sum() > 30
    assert _mask(dark_cell, colormaps[COLORMAP](1.0)).mean() > 0.5  # mostly the cell's colour


def test_a_blank_cell_has_no_text() -> None:
    grid = _grid(HEATMAPS["semana_count"], [[None, 7]])
    png = render_heatmap_png(grid)
    left, top, right, bottom = _cell_box(grid, png, 0, 0)
    blank = _pixels(png)[top:bottom, left:right]
    assert _mask(blank, BLANK_CELL_RGB).mean() > 0.98  # grey edge to edge


def test_row_and_column_labels_sit_beside_the_grid() -> None:
    grid = _grid(HEATMAPS["loja_count"], [[1, 2], [3, 4]])
    png = render_heatmap_png(grid)
    pixels = _pixels(png)
    left, top, _, _ = _cell_box(grid, png, 0, 0)
    _, _, right, bottom = _cell_box(grid, png, 1, 1)
    beside = pixels[top:bottom, max(0, left - 60) : left]
    below = pixels[bottom : bottom + 25, left:right]
    assert _near(beside, "#000000", 60).sum() > 20  # "r0", "r1"
    assert _near(below, "#000000", 60).sum() > 20  # "c0", "c1"


def test_many_dates_turn_the_column_labels_upright() -> None:
    spec = HEATMAPS["volume_transacoes_por_dia"]
    values: list[list[Value]] = [[j % 5 or None for j in range(60)] for _ in range(3)]
    columns = [f"{d:02d}/{m:02d}" for m in (10, 11) for d in range(1, 31)]
    grid = HeatmapGrid(spec, ["a", "b", "c"], columns, values, START, END)
    layout = module._layout(grid)
    assert layout.x_labels_rotated
    png = render_heatmap_png(grid)
    _, _, _, bottom = _cell_box(grid, png, 2, 0)
    # Upright labels reach further down than one line of text would.
    band = _pixels(png)[bottom + 30 : bottom + 45]
    assert _near(band, "#000000", 60).sum() > 50


def test_no_payments_says_so_inside_the_blank_grid() -> None:
    grid = _grid(HEATMAPS["pagamentos_por_dia"], [])
    png = render_heatmap_png(grid)
    left, top, right, bottom = _cell_box(grid, png, 0, 0)
    inside = _pixels(png)[top:bottom, left:right]
    assert right - left > 200  # wide enough for the sentence
    assert _near(inside, "#4b5563", 30).sum() > 100


def test_many_pictures_in_threads_are_the_same_bytes_in_order() -> None:
    grids = [
        _grid(HEATMAPS[name], [[1, None, 3], [4, 5, 6]], low_price_threshold=Decimal("2"))
        for name in ("semana_count", "precos_baixos_por_dia", "loja_max", "ociosidade_por_dia")
    ]
    serial = [render_heatmap_png(g, filter_text="loja x") for g in grids]
    assert module.render_heatmap_pngs(grids, filter_text="loja x", workers=1) == serial
    assert module.render_heatmap_pngs(grids, filter_text="loja x", workers=2) == serial
    assert module.render_heatmap_pngs(grids, filter_text="loja x", workers=8) == serial
    assert module.render_heatmap_pngs(grids, filter_text="loja x") == serial
    assert module.render_heatmap_pngs([], workers=2) == []


@pytest.mark.parametrize("workers", [0, -1])
def test_no_workers_is_refused(workers: int) -> None:
    grid = _grid(HEATMAPS["semana_count"], [[1]])
    with pytest.raises(ReportError, match="use 1 or more"):
        module.render_heatmap_pngs([grid], workers=workers)


def test_writing_many_pictures_uses_the_same_drawing(tmp_path: Path) -> None:
    grids = [_grid(HEATMAPS[name], [[1, 2]]) for name in ("semana_count", "dia_count")]
    paths = write_heatmap_pngs(grids, tmp_path, workers=1)
    assert [p.read_bytes() for p in paths] == [render_heatmap_png(g) for g in grids]
