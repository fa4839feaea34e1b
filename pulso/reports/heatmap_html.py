"""All heatmaps in one self-contained HTML page (``relatorio_mapas_calor.html``).

The page needs no network: CSS and a small vanilla script are inline, and a Content Security
Policy forbids every fetch, so a label that came from data cannot load anything. Without
JavaScript the tables still read fine; the script only adds the filter, the values toggle and
the hover tooltips.

Choices, shared with the PNGs (``heatmap_png``) so both tell the same story:

- **Colour scale**: ``YlOrRd`` from 0 (or from the minimum when it is negative) to the grid's
  maximum, quantised to ``STEPS`` colours. The steps are CSS classes (``q0`` … ``q31``), so a
  cell costs about 25 bytes, not 60 with an inline style; the largest error is 1/62 of the
  range, below what the eye separates.
- **Blank cells** (no payment) are hatched grey and read "sem dados", never a pale colour.
- **Values** are written as the PNG writes them when they fit (``R$ 1.234,56``, ``1.234``,
  ``12,3 s``, minutes); the tooltip (row, column, value) is assembled by the script from the
  headers on hover instead of a ``title`` per cell, which would double the page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

from pulso.analytics.heatmap_defs import AXIS_TITLES, Axis
from pulso.analytics.heatmaps import HeatmapGrid
from pulso.reports import ReportError
from pulso.reports.heatmap_png import (
    BLANK_CELL_RGB,
    COLORMAP,
    _cell_formatters,
    _colorbar_title,
    _scale_formatter,
    _subtitle,
    _text_colour,
)

__all__ = [
    "HTML_FILE_NAME",
    "STEPS",
    "palette",
    "render_heatmaps_html",
    "write_heatmaps_html",
]

HTML_FILE_NAME: Final = "relatorio_mapas_calor.html"
STEPS: Final = 32
DEFAULT_TITLE: Final = "Mapas de calor dos pagamentos PIX"
EMPTY_TEXT: Final = "Sem pagamentos no período"
BLANK_TEXT: Final = "sem dados"

_esc = html.escape


def render_heatmaps_html(
    grids: Sequence[HeatmapGrid],
    *,
    title: str | None = None,
    generated_at: datetime | None = None,
    filter_text: str | None = None,
) -> str:
    """One HTML page with every grid as a coloured table, grouped by their axes.

    ``generated_at`` (tz-aware) is printed in the header when given; ``filter_text`` (e.g.
    ``"loja LJ-0001"``) says which store or city the grids were computed for.
    """
    _check_grids(grids, generated_at)
    groups = _groups(grids)
    page_title = title or DEFAULT_TITLE
    body = "\n".join(
        [
            _nav(groups),
            "<main>",
            _header(page_title, grids, generated_at, filter_text),
            *(_group_section(label, members) for label, members in groups),
            "</main>",
            '<div id="dica" role="tooltip" hidden></div>',
            f"<script>{_SCRIPT}</script>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="pt-BR">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">\n'
        f"<title>{_esc(page_title)}</title>\n<style>{_css()}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_heatmaps_html(
    grids: Sequence[HeatmapGrid],
    out_dir: Path,
    *,
    generated_at: datetime | None = None,
    filter_text: str | None = None,
) -> Path:
    """Write ``relatorio_mapas_calor.html`` into ``out_dir`` (created if missing)."""
    page = render_heatmaps_html(grids, generated_at=generated_at, filter_text=filter_text)
    path = out_dir / HTML_FILE_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise ReportError(
            f"cannot write the heatmap page {path}: {e.strerror}; choose a writable --out"
        ) from e
    return path


# --------------------------------------------------------------------------- checks and groups


def _check_grids(grids: Sequence[HeatmapGrid], generated_at: datetime | None) -> None:
    if not grids:
        raise ReportError("no heatmap to put in the HTML page: pass at least one grid")
    names = [grid.spec.name for grid in grids]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ReportError(f"heatmap {', '.join(repeated)} given twice: pass each grid once")
    if generated_at is not None and generated_at.utcoffset() is None:
        raise ReportError("generated_at has no time zone: pass an aware datetime")


def _groups(grids: Iterable[HeatmapGrid]) -> list[tuple[str, list[HeatmapGrid]]]:
    """Grids grouped by their axes ("Loja × hora"), in order of first appearance."""
    groups: dict[tuple[Axis, Axis], list[HeatmapGrid]] = {}
    for grid in grids:
        groups.setdefault((grid.spec.rows, grid.spec.columns), []).append(grid)
    return [
        (f"{AXIS_TITLES[rows]} × {AXIS_TITLES[columns].lower()}", members)
        for (rows, columns), members in groups.items()
    ]


# --------------------------------------------------------------------------- page parts


def _nav(groups: list[tuple[str, list[HeatmapGrid]]]) -> str:
    items = []
    for label, members in groups:
        links = "".join(
            f'<li><a href="#{_section_id(g)}">{_esc(g.spec.title)}</a></li>' for g in members
        )
        items.append(f'<li class="grupo"><span>{_esc(label)}</span><ul>{links}</ul></li>')
    count = sum(len(members) for _, members in groups)
    return (
        '<nav aria-label="Mapas de calor">\n<div id="controles" hidden>\n'
        '<label for="filtro">Buscar mapa</label>\n'
        '<input type="search" id="filtro" placeholder="nome ou título" autocomplete="off">\n'
        f'<p id="contagem" aria-live="polite">{count} de {count} mapas</p>\n'
        '<label class="chave"><input type="checkbox" id="valores" checked> '
        "Mostrar valores nas células</label>\n</div>\n"
        f"<ul>{''.join(items)}</ul>\n</nav>"
    )


def _header(
    title: str,
    grids: Sequence[HeatmapGrid],
    generated_at: datetime | None,
    filter_text: str | None,
) -> str:
    from pulso.domain.timefmt import format_local
    from pulso.reports.pdf import format_period

    start, end = min(g.start for g in grids), max(g.end for g in grids)
    facts = [f"Período: {format_period(start, end)}", "pagamentos confirmados"]
    if filter_text:
        facts.append(filter_text)
    if generated_at is not None:
        facts.append(f"gerado em {format_local(generated_at)}")
    return (
        f'<header>\n<h1>{_esc(title)}</h1>\n<p class="periodo">{_esc(" · ".join(facts))}</p>\n'
        f"<p>{len(grids)} mapas de calor. Cores mais escuras, valores maiores; "
        f'<span class="amostra b"></span> {BLANK_TEXT}.</p>\n</header>'
    )


def _group_section(label: str, members: list[HeatmapGrid]) -> str:
    sections = "\n".join(_heatmap_section(grid) for grid in members)
    return f'<section class="grupo">\n<h2>{_esc(label)}</h2>\n{sections}\n</section>'


def _heatmap_section(grid: HeatmapGrid) -> str:
    spec = grid.spec
    scale = _Scale.of(grid)
    search_key = _esc(f"{spec.name} {spec.title}")
    empty = "" if scale.maximum is not None else f'<p class="vazio">{EMPTY_TEXT}</p>\n'
    return (
        f'<section class="mapa" id="{_section_id(grid)}" data-k="{search_key}">\n'
        f"<h3>{_esc(spec.title)}</h3>\n"
        f'<p class="sub">{_esc(_subtitle(grid, None))} · <code>{_esc(spec.name)}</code></p>\n'
        f"{_legend(grid, scale)}\n{empty}"
        f'<div class="rolagem" tabindex="0" role="region" aria-label="{_esc(spec.title)}">\n'
        f"{_table(grid, scale)}\n</div>\n</section>"
    )


def _legend(grid: HeatmapGrid, scale: _Scale) -> str:
    blank = f'<span class="amostra b"></span> {BLANK_TEXT}'
    if scale.maximum is None:
        return f'<p class="legenda">{blank}</p>'
    end = _scale_formatter(grid.spec)
    # The dark end is the largest value itself, written as in its cell (exact, not rounded),
    # unless the scale had to be stretched past it (every value 0).
    top = (
        _cell_formatters(grid.spec)[0](scale.maximum)
        if float(scale.maximum) == scale.top
        else end(scale.top)
    )
    return (
        f'<p class="legenda"><span class="titulo">{_esc(_colorbar_title(grid.spec))}:</span> '
        f"<span>{_esc(end(scale.bottom))}</span>"
        f'<span class="barra" aria-hidden="true"></span>'
        f"<span>{_esc(top)}</span> {blank}</p>"
    )


def _table(grid: HeatmapGrid, scale: _Scale) -> str:
    spec = grid.spec
    rows_title, columns_title = AXIS_TITLES[spec.rows], AXIS_TITLES[spec.columns]
    caption = (
        f"{spec.title}. Linhas: {rows_title}; colunas: {columns_title}; "
        f"valores: {_colorbar_title(spec)}."
    )
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in grid.columns)
    return (
        f'<table class="hm" id="{_esc(spec.name)}" data-r="{_esc(rows_title)}" '
        f'data-c="{_esc(columns_title)}">\n<caption>{_esc(caption)}</caption>\n'
        f'<thead><tr><th scope="col">{_esc(rows_title)} \\ {_esc(columns_title)}</th>'
        f"{head}</tr></thead>\n<tbody>\n{_body_rows(grid, scale)}</tbody>\n</table>"
    )


def _body_rows(grid: HeatmapGrid, scale: _Scale) -> str:
    cell = _cell_writer(grid, scale)
    try:
        return "".join(
            f'<tr><th scope="row">{_esc(label)}</th>'
            f"{''.join(cell(v) for v in _strict_row(row, grid.columns))}</tr>\n"
            for label, row in zip(grid.rows, grid.values, strict=True)
        )
    except ValueError as e:
        raise ReportError(
            f"heatmap {grid.spec.name}: {e}; build the grid with one values row per row label"
            " and one value per column (None for blank)"
        ) from e


def _strict_row(row: Sequence[object], columns: Sequence[str]) -> Sequence[object]:
    if len(row) != len(columns):
        raise ValueError(f"a row has {len(row)} values for {len(columns)} columns")
    return row


def _cell_writer(grid: HeatmapGrid, scale: _Scale) -> Callable[[object], str]:
    formatter = _cell_formatters(grid.spec)[0]
    blank = f'<td class="b">{BLANK_TEXT}</td>'

    def cell(value: object) -> str:
        if value is None:
            return blank
        number = _number(value)
        return f'<td class="q{scale.step(number)}">{_esc(formatter(number))}</td>'

    return cell


def _number(value: object) -> float | Decimal:
    """``value`` as a finite number; anything else is a malformed grid."""
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    raise ReportError(f"heatmap cell value {value!r} is not a finite number: use None for blank")


def _section_id(grid: HeatmapGrid) -> str:
    return _esc(f"mapa_calor_{grid.spec.name}")


# --------------------------------------------------------------------------- colour scale


@dataclass(frozen=True, slots=True)
class _Scale:
    """Linear from ``bottom`` (0, or the minimum when negative) to ``top`` (the maximum)."""

    bottom: float
    top: float
    maximum: float | Decimal | None
    """The largest value as given; None when the grid has no value."""

    @classmethod
    def of(cls, grid: HeatmapGrid) -> _Scale:
        numbers = [_number(v) for row in grid.values for v in row if v is not None]
        if not numbers:
            return cls(0.0, 1.0, None)
        maximum = max(numbers)
        top, bottom = float(maximum), min(0.0, float(min(numbers)))
        return cls(bottom, top if top > bottom else bottom + 1.0, maximum)

    def step(self, value: float | Decimal) -> int:
        fraction = (float(value) - self.bottom) / (self.top - self.bottom)
        return min(STEPS - 1, max(0, round(fraction * (STEPS - 1))))


@cache
def palette() -> tuple[tuple[str, str], ...]:
    """(background, text) colours of the ``STEPS`` steps, palest first."""
    from matplotlib import colormaps

    cmap = colormaps[COLORMAP]
    steps = []
    for index in range(STEPS):
        rgb = cmap(index / (STEPS - 1))[:3]
        steps.append((_hex(rgb), _text_colour(rgb)))
    return tuple(steps)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(channel * 255):02x}" for channel in rgb)


# --------------------------------------------------------------------------- CSS, script, CSP


@cache
def _css() -> str:
    steps = palette()
    classes = "".join(f".q{i}{{background:{bg};color:{fg}}}" for i, (bg, fg) in enumerate(steps))
    gradient = ",".join(bg for bg, _ in steps)
    return _CSS.replace("BLANK", _hex(BLANK_CELL_RGB)).replace("GRADIENT", gradient) + classes


@cache
def _csp() -> str:
    """Nothing from the network; only this page's own style and script (by hash) may run."""
    return (
        "default-src 'none'; "
        f"style-src '{_sha256(_css())}'; script-src '{_sha256(_SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


_CSS: Final = """
:root{color:#111827;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;display:flex;align-items:flex-start}
nav{position:sticky;top:0;flex:none;box-sizing:border-box;width:19rem;height:100vh;
overflow:auto;padding:1rem;background:#f9fafb;border-right:1px solid #e5e7eb;font-size:.85rem}
nav ul{list-style:none;margin:0;padding:0}nav li.grupo{margin:.8rem 0}
nav li.grupo>span{font-weight:600}nav li li{margin:.15rem 0 .15rem .6rem}
nav a{color:#1d4ed8;text-decoration:none}nav a:hover,nav a:focus{text-decoration:underline}
#controles{display:grid;gap:.35rem;padding-bottom:.6rem;border-bottom:1px solid #e5e7eb}
[hidden]{display:none!important}
#filtro{font:inherit;padding:.3rem .4rem;border:1px solid #9ca3af;border-radius:4px}
#contagem{margin:0;color:#4b5563}
main{flex:1;min-width:0;padding:1rem 1.5rem 3rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:2px solid #e5e7eb}h3{font-size:1.05rem;margin:1.6rem 0 .2rem}
.periodo{font-weight:600}.sub,.vazio{color:#4b5563;margin:.1rem 0 .4rem;font-size:.85rem}
.legenda{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem;font-size:.8rem;margin:.3rem 0}
.legenda .titulo{color:#4b5563}
.barra{display:inline-block;width:12rem;height:.8rem;border:1px solid #9ca3af;
background:linear-gradient(to right,GRADIENT)}
.amostra{display:inline-block;width:1.4rem;height:.8rem;border:1px solid #9ca3af;
vertical-align:middle}
.rolagem{overflow:auto;width:fit-content;max-width:100%;max-height:80vh;
border:1px solid #e5e7eb}
.rolagem:focus{outline:2px solid #1d4ed8}
table.hm{border-collapse:separate;border-spacing:1px;font-size:.72rem;
font-variant-numeric:tabular-nums}
.hm caption{text-align:left;font-size:.75rem;color:#4b5563;padding:.2rem}
.hm th{position:sticky;background:#fff;font-weight:500;white-space:nowrap;padding:1px 4px}
.hm thead th{top:0;z-index:1}.hm tbody th{left:0;text-align:right}
.hm thead th:first-child{left:0;z-index:2;color:#4b5563}
.hm td{padding:2px 4px;text-align:right;white-space:nowrap;min-width:1.6rem}
.b{background:BLANK repeating-linear-gradient(45deg,transparent 0 3px,#bdbdbd 3px 5px);
color:#374151}
td.b{font-size:.6rem;font-style:italic;text-align:center}
.sem-valores .hm td{font-size:0;padding:0;min-width:.9rem;height:.9rem}
#dica{position:fixed;z-index:9;pointer-events:none;background:#111827;color:#fff;
padding:.3rem .5rem;border-radius:4px;font-size:.78rem;white-space:pre}
@media (max-width:52rem){body{display:block}nav{position:static;width:auto;height:auto}}
@media print{nav,#dica{display:none}.rolagem{max-height:none;overflow:visible}
.hm td,.b{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
"""

_SCRIPT: Final = """
(function () {
  "use strict";
  function fold(text) {
    return text.normalize("NFD").replace(/[\\u0300-\\u036f]/g, "").toLowerCase();
  }
  var controls = document.getElementById("controles");
  var search = document.getElementById("filtro");
  var count = document.getElementById("contagem");
  var tip = document.getElementById("dica");
  var maps = Array.prototype.slice.call(document.querySelectorAll("section.mapa"));
  var links = {};
  document.querySelectorAll("nav a").forEach(function (a) {
    links[a.getAttribute("href").slice(1)] = a.parentNode;
  });
  controls.hidden = false;
  search.addEventListener("input", function () {
    var query = fold(search.value.trim()), shown = 0;
    maps.forEach(function (map) {
      var hit = fold(map.getAttribute("data-k")).indexOf(query) >= 0;
      map.hidden = !hit;
      if (links[map.id]) { links[map.id].hidden = !hit; }
      if (hit) { shown += 1; }
    });
    document.querySelectorAll("section.grupo, nav li.grupo").forEach(function (group) {
      group.hidden = !group.querySelector("section.mapa:not([hidden]), li li:not([hidden])");
    });
    count.textContent = shown + " de " + maps.length + " mapas";
  });
  document.getElementById("valores").addEventListener("change", function (event) {
    document.body.classList.toggle("sem-valores", !event.target.checked);
  });
  document.addEventListener("mouseover", function (event) {
    var cell = event.target.closest ? event.target.closest("table.hm td") : null;
    if (!cell) { tip.hidden = true; return; }
    var table = cell.closest("table");
    var column = table.tHead.rows[0].cells[cell.cellIndex].textContent;
    var row = cell.parentNode.cells[0].textContent;
    tip.textContent = table.getAttribute("data-r") + ": " + row + "\\n" +
      table.getAttribute("data-c") + ": " + column + "\\n" + cell.textContent;
    tip.hidden = false;
    place(event);
  });
  document.addEventListener("mousemove", function (event) {
    if (!tip.hidden) { place(event); }
  });
  function place(event) {
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight) { y = event.clientY - tip.offsetHeight - 8; }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
})();
"""
