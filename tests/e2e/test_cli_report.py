"""`pulso report heatmaps` over a store the real pipeline filled."""

from __future__ import annotations

import csv
import html
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.analytics.heatmaps import HEATMAPS, heatmap
from pulso.cli import app
from pulso.store import open_store

START = date(2026, 11, 16)  # the first day of the `filled` fixture (conftest.py)


def test_csv_grids_equal_the_engine(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["report", "heatmaps", "--from", "2026-11-16", "--to", "17/11/2026", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("mapa_calor_*.csv"))
    assert len(files) == len(HEATMAPS) == 34
    with (out / "mapa_calor_dia_count.csv").open() as f:
        rows = list(csv.reader(f))
    store = open_store(filled)
    grid = heatmap(store, "dia_count", start=START, end=date(2026, 11, 17))
    store.close()
    assert rows[0][1:] == list(grid.columns)
    assert [r[0] for r in rows[1:]] == list(grid.rows)
    assert [[int(c) if c else None for c in r[1:]] for r in rows[1:]] == grid.values


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "gif"], "unknown gif"),
        (["--from", "2026-11-20", "--to", "2026-11-16"], "after --to"),
    ],
)
def test_bad_options_are_clear_errors(
    filled: Any, tmp_path: Path, extra: list[str], message: str
) -> None:
    base = {"--from": "2026-11-16", "--to": "2026-11-17", "--out": str(tmp_path / "o")}
    for i in range(0, len(extra), 2):
        base[extra[i]] = extra[i + 1]
    args = ["report", "heatmaps", *[x for kv in base.items() for x in kv]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_png_pictures_carry_the_seed_names(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "png"
    args = ["report", "heatmaps", "--from", "2026-11-16", "--to", "2026-11-17"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "png"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(spec.file_name for spec in HEATMAPS.values())
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))


def _table_html(page: str, table_id: str) -> str:
    start = page.index(f'<table class="hm" id="{table_id}"')
    return page[start : page.index("</table>", start)]


def _cell_texts(page: str, table_id: str) -> list[list[str]]:
    body = _table_html(page, table_id).split("<tbody>")[1]
    return [re.findall(r"<td [^>]*>([^<]*)</td>", row) for row in body.split("</tr>")[:-1]]


def test_html_page_shows_every_heatmap_with_the_engine_numbers(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "html"
    args = ["report", "heatmaps", "--from", "16/11/2026", "--to", "2026-11-17"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "csv,html"])
    assert result.exit_code == 0, result.output
    assert "wrote 35 files" in result.output
    page = (out / "relatorio_mapas_calor.html").read_text(encoding="utf-8")
    assert re.findall(r'<table class="hm" id="([^"]+)"', page) == list(HEATMAPS)
    assert "Período: 16/11/2026 a 17/11/2026" in page
    store = open_store(filled)
    grid = heatmap(store, "volume_transacoes_por_dia", start=START, end=date(2026, 11, 17))
    store.close()
    expected = [
        ["sem dados" if v is None else f"{v:,}".replace(",", ".") for v in row]
        for row in grid.values
    ]
    assert expected and _cell_texts(page, "volume_transacoes_por_dia") == expected


def test_html_page_names_the_city_filter(filled: Any, tmp_path: Path) -> None:
    store = open_store(filled)
    city = heatmap(store, "cidade_count", start=START, end=START).rows[0]
    store.close()
    out = tmp_path / "cidade"
    args = ["report", "heatmaps", "--from", "2026-11-16", "--to", "2026-11-16", "--city", city]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["relatorio_mapas_calor.html"]
    page = (out / "relatorio_mapas_calor.html").read_text(encoding="utf-8")
    assert f"cidade {html.escape(city)}" in page
    cities = re.findall(r'<th scope="row">([^<]*)</th>', _table_html(page, "cidade_count"))
    assert [html.unescape(c) for c in cities] == [city]
