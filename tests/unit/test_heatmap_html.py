"""The heatmap HTML page: parsed back with html.parser to check tables, labels, values, safety."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib import colormaps

from pulso.analytics.heatmap_defs import HEATMAPS, HeatmapSpec
from pulso.analytics.heatmaps import HeatmapGrid, Value
from pulso.reports import ReportError
from pulso.reports.heatmap_html import (
    HTML_FILE_NAME,
    STEPS,
    palette,
    render_heatmaps_html,
    write_heatmaps_html,
)
from pulso.reports.heatmap_png import COLORMAP

START, END = date(2026, 11, 16), date(2026, 11, 22)
HOSTILE_STORE = '<script>alert("x")</script>'
HOSTILE_CITY = "São \"Paulo\" & <img src='http://evil.example/x.png'>"


@dataclass
class Cell:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class Table:
    id: str | None
    attrs: dict[str, str | None]
    caption: str = ""
    rows: list[list[Cell]] = field(default_factory=list)

    def body(self) -> list[list[Cell]]:
        return self.rows[1:]

    def values(self) -> list[list[str]]:
        return [[c.text for c in row[1:]] for row in self.body()]

    def classes(self) -> list[list[str | None]]:
        return [[c.attrs.get("class") for c in row[1:]] for row in self.body()]


class PageParser(HTMLParser):
    """Tables with their cells, every start tag, and the text of a few elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {"h1": [], "h3": [], "style": [], "script": []}
        self._cell: Cell | None = None
        self._in: str | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self.tables.append(Table(attributes.get("id"), attributes))
        elif tag == "tr":
            self.tables[-1].rows.append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = Cell(tag, attributes)
            self.tables[-1].rows[-1].append(self._cell)
        elif tag == "caption":
            self._in_caption = True
        elif tag in self.texts:
            self._in = tag
            self.texts[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "caption":
            self._in_caption = False
        elif tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text += data
        if self._in_caption:
            self.tables[-1].caption += data
        if self._in is not None:
            self.texts[self._in][-1] += data


def _parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def _grid(
    spec: HeatmapSpec,
    values: list[list[Value]],
    rows: list[str] | None = None,
    columns: list[str] | None = None,
    **kwargs: object,
) -> HeatmapGrid:
    rows = rows or [f"r{i}" for i in range(len(values))]
    columns = columns or [f"c{j}" for j in range(len(values[0]) if values else 0)]
    return HeatmapGrid(spec, rows, columns, values, START, END, **kwargs)  # type: ignore[arg-type]


def _table(grid: HeatmapGrid) -> Table:
    [table] = _parse(render_heatmaps_html([grid])).tables
    return table


def _sample_value(spec: HeatmapSpec, i: int, j: int) -> Value:
    if (i + j) % 3 == 0:
        return None
    if spec.unit == "brl":
        return Decimal(100 * i + j).scaleb(-2) + Decimal("1000")
    if spec.unit == "count" and spec.statistic != "payments_per_day":
        return 1000 * i + j
    return 1.5 * i + j


def _all_grids() -> list[HeatmapGrid]:
    return [
        _grid(spec, [[_sample_value(spec, i, j) for j in range(4)] for i in range(3)])
        for spec in HEATMAPS.values()
    ]


# --------------------------------------------------------------------------- structure


def test_every_heatmap_is_a_table_with_its_seed_name() -> None:
    page = render_heatmaps_html(_all_grids())
    parsed = _parse(page)
    assert [t.id for t in parsed.tables] == list(HEATMAPS) and len(parsed.tables) == 34
    for table in parsed.tables:
        spec = HEATMAPS[str(table.id)]
        assert table.caption.startswith(spec.title)
        head, *body = table.rows
        assert [c.attrs.get("scope") for c in head] == ["col"] * 5
        assert [c.text for c in head[1:]] == ["c0", "c1", "c2", "c3"]
        assert [(row[0].tag, row[0].attrs.get("scope")) for row in body] == [("th", "row")] * 3
        assert all(c.tag == "td" for row in body for c in row[1:])
    assert parsed.texts["h3"] == [spec.title for spec in HEATMAPS.values()]


def test_navigation_links_every_heatmap_under_its_axes() -> None:
    page = render_heatmaps_html(_all_grids())
    parsed = _parse(page)
    links = [a["href"] for tag, a in parsed.tags if tag == "a"]
    assert links == [f"#mapa_calor_{name}" for name in HEATMAPS]
    section_ids = {a.get("id") for tag, a in parsed.tags if tag == "section"}
    assert {link[1:] for link in links} <= section_ids
    nav = page[page.index("<nav") : page.index("</nav>")]
    groups = re.findall(r'<li class="grupo"><span>([^<]+)</span>', nav)
    assert groups == [
        "Dia da semana × hora",
        "Data × hora",
        "Loja × dia da semana",
        "Cidade × dia da semana",
        "Loja × hora",
        "Cidade × hora",
        "Loja × data",
    ]


def test_page_is_portuguese_with_period_and_generation_time() -> None:
    generated = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
    page = render_heatmaps_html(
        _all_grids()[:2], generated_at=generated, filter_text="cidade Recife"
    )
    assert '<html lang="pt-BR">' in page
    header = page[page.index("<header>") : page.index("</header>")]
    assert "Período: 16/11/2026 a 22/11/2026" in header
    assert "gerado em 23/11/2026 09:30" in header  # shown in America/Sao_Paulo
    assert "cidade Recife" in header
    parsed = _parse(page)
    assert parsed.texts["h1"] == ["Mapas de calor dos pagamentos PIX"]
    assert "gerado" not in render_heatmaps_html(_all_grids()[:2])  # reproducible without it
    assert _parse(render_heatmaps_html(_all_grids()[:1], title="Março")).texts["h1"] == ["Março"]


def test_controls_filter_and_values_toggle_are_present() -> None:
    page = render_heatmaps_html(_all_grids())
    parsed = _parse(page)
    inputs = {a.get("id"): a for tag, a in parsed.tags if tag == "input"}
    assert inputs["filtro"]["type"] == "search"
    assert inputs["valores"]["type"] == "checkbox" and "checked" in inputs["valores"]
    keys = [a["data-k"] for tag, a in parsed.tags if tag == "section" and "data-k" in a]
    assert keys[0] == f"semana_count {HEATMAPS['semana_count'].title}"
    assert len(keys) == 34
    [script] = parsed.texts["script"]
    assert "filtro" in script and "sem-valores" in script and "mouseover" in script


# --------------------------------------------------------------------------- safety


def test_labels_from_data_are_escaped() -> None:
    grid = _grid(HEATMAPS["loja_count"], [[1, 2], [3, None]], rows=[HOSTILE_STORE, HOSTILE_CITY])
    page = render_heatmaps_html([grid], title="<b>x</b>", filter_text=f"loja {HOSTILE_STORE}")
    parsed = _parse(page)
    [table] = parsed.tables
    assert [row[0].text for row in table.body()] == [HOSTILE_STORE, HOSTILE_CITY]
    assert [tag for tag, _ in parsed.tags].count("script") == 1  # only the page's own
    assert not [a for tag, a in parsed.tags if tag in ("img", "b")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_page_loads_nothing_from_anywhere() -> None:
    page = render_heatmaps_html(_all_grids())
    assert not re.search(r"(?i)\b(https?|ftp|file|data):", page.replace("http-equiv", ""))
    assert not re.search(r"(?i)url\(|@import|//[a-z]", page)
    # A URL inside a label stays text: no attribute of any element points anywhere.
    grid = _grid(HEATMAPS["cidade_sum"], [[Decimal("1.00")]], rows=[HOSTILE_CITY])
    for tag, attributes in _parse(render_heatmaps_html([grid])).tags:
        assert "src" not in attributes, tag
        assert (attributes.get("href") or "#").startswith("#"), tag
        assert not [name for name in attributes if name.startswith("on")], tag


def test_content_security_policy_allows_exactly_the_inline_style_and_script() -> None:
    parsed = _parse(render_heatmaps_html(_all_grids()[:1]))
    [policy] = [
        a["content"] for tag, a in parsed.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy is not None and "default-src 'none'" in policy
    [style], [script] = parsed.texts["style"], parsed.texts["script"]
    for kind, text in (("style-src", style), ("script-src", script)):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in policy


# --------------------------------------------------------------------------- values and colours


def test_values_are_written_the_brazilian_way() -> None:
    cases: list[tuple[str, Value, str]] = [
        ("loja_sum", Decimal("1234.56"), "R$ 1.234,56"),
        ("dia_mean", Decimal("0.50"), "R$ 0,50"),
        ("semana_count", 12345, "12.345"),
        ("media_transacoes_por_hora_loja", 0.4, "0,4"),
        ("tempo_medio_por_dia", 12.34, "12,3 s"),
        ("ociosidade_por_dia", 1234.4, "1.234"),
    ]
    for name, value, text in cases:
        assert _table(_grid(HEATMAPS[name], [[value]])).values() == [[text]], name


def test_blank_cells_are_marked_and_zero_is_not_blank() -> None:
    table = _table(_grid(HEATMAPS["precos_baixos_por_dia"], [[0, None], [None, 4]]))
    assert table.values() == [["0", "sem dados"], ["sem dados", "4"]]
    assert table.classes() == [["q0", "b"], ["b", f"q{STEPS - 1}"]]


def test_scale_starts_at_zero_and_darkest_is_the_maximum() -> None:
    table = _table(_grid(HEATMAPS["semana_count"], [[2, 10], [5, None]]))
    # 2 of 10 sits a fifth up the scale: the scale starts at 0, not at the minimum 2.
    assert table.classes() == [[f"q{round(0.2 * 31)}", "q31"], [f"q{round(0.5 * 31)}", "b"]]
    cmap = colormaps[COLORMAP]
    hexes = ["#" + "".join(f"{round(c * 255):02x}" for c in cmap(x)[:3]) for x in (0.0, 1.0)]
    assert (palette()[0][0], palette()[-1][0]) == (hexes[0], hexes[1])
    assert len(palette()) == STEPS
    assert palette()[0][1] != palette()[-1][1]  # dark text on pale, light text on dark


def test_legend_shows_both_ends_of_the_scale() -> None:
    page = render_heatmaps_html([_grid(HEATMAPS["loja_max"], [[Decimal("12.5"), None]])])
    legend = re.search(r'<p class="legenda">(.*?)</p>', page)
    assert legend is not None
    assert "R$ 0" in legend[1] and "R$ 12,50" in legend[1] and "sem dados" in legend[1]


def test_low_price_threshold_is_in_the_subtitle() -> None:
    grid = _grid(HEATMAPS["precos_baixos_por_hora_loja"], [[1]], low_price_threshold=Decimal("5"))
    assert "valor baixo: abaixo de R$ 5,00" in render_heatmaps_html([grid])


@pytest.mark.parametrize("values", [[], [[None, None]]])
def test_grid_without_payments_says_so(values: list[list[Value]]) -> None:
    grid = _grid(HEATMAPS["loja_count"], values, columns=["seg", "ter"])
    page = render_heatmaps_html([grid])
    assert "Sem pagamentos no período" in page
    [table] = _parse(page).tables
    assert len(table.body()) == len(values)


def test_two_hundred_stores_stay_a_few_megabytes() -> None:
    stores = [f"LJ-{i:04d}" for i in range(200)]
    hours = [str(h) for h in range(24)]
    grids = [
        _grid(
            spec,
            [[_sample_value(spec, i, j) for j in range(24)] for i in range(200)],
            rows=stores,
            columns=hours,
        )
        for spec in HEATMAPS.values()
    ]
    size = len(render_heatmaps_html(grids).encode())
    assert size < 34 * 200 * 24 * 40  # under 40 bytes a cell: about 6.5 MB at most


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("grids", "message"),
    [
        ([], "at least one grid"),
        ([_grid(HEATMAPS["semana_sum"], [[Decimal(1), None], [Decimal(2)]])], "semana_sum"),
        ([_grid(HEATMAPS["semana_sum"], [[Decimal(1)]], rows=["a", "b"])], "one values row"),
        ([_grid(HEATMAPS["dia_max"], [[Decimal("NaN")]])], "not a finite number"),
        ([_grid(HEATMAPS["dia_count"], [["7"]])], "not a finite number"),
        ([_grid(HEATMAPS["dia_count"], [[1]]), _grid(HEATMAPS["dia_count"], [[2]])], "twice"),
    ],
)
def test_malformed_grids_are_report_errors(grids: list[HeatmapGrid], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        render_heatmaps_html(grids)


def test_naive_generation_time_is_refused() -> None:
    with pytest.raises(ReportError, match="time zone"):
        render_heatmaps_html(_all_grids()[:1], generated_at=datetime(2026, 11, 23, 12))


def test_write_puts_the_page_in_the_folder(tmp_path: Path) -> None:
    path = write_heatmaps_html(_all_grids(), tmp_path / "novo")
    assert path == tmp_path / "novo" / HTML_FILE_NAME
    assert len(_parse(path.read_text(encoding="utf-8")).tables) == 34


def test_unwritable_folder_is_a_report_error(tmp_path: Path) -> None:
    blocker = tmp_path / "arquivo"
    blocker.write_text("not a folder")
    with pytest.raises(ReportError, match="writable --out"):
        write_heatmaps_html(_all_grids()[:1], blocker)


def test_importing_the_module_does_not_load_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pulso.reports.heatmap_html; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
