"""The analytic PDF report: read back with pypdf (a real PDF parser) and drawn by poppler's
pdftoppm, page by page. KPIs are built by hand; heatmaps are real small grids drawn by
``render_heatmap_png``."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pypdf
import pytest
from PIL import Image

from pulso.analytics.heatmaps import HEATMAPS, HeatmapGrid, Value
from pulso.analytics.kpis import (
    DAY_PARTS,
    CityConfirmation,
    DayPartRow,
    KpiRow,
    PeriodKpis,
    SpreadRow,
)
from pulso.reports import ReportError
from pulso.reports.heatmap_png import render_heatmap_png
from pulso.reports.pdf import PdfDocument, format_percent, prepare_png
from pulso.reports.report_pdf import READING_NOTES, reading_items, render_report_pdf

START, END = date(2026, 11, 16), date(2026, 11, 22)  # Monday to Sunday
GENERATED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Pictures = list[tuple[HeatmapGrid, bytes]]


# --------------------------------------------------------------------------- building inputs


def _row(label: str, payments: int, revenue: str) -> KpiRow:
    amount = Decimal(revenue)
    ticket = (amount / payments).quantize(Decimal("0.01")) if payments else None
    return KpiRow(label, payments, amount, ticket)


def _stores(count: int) -> list[KpiRow]:
    """``loja-000`` first (highest revenue), each 10 reais less than the one before."""
    return [_row(f"loja-{i:03d}", 10, f"{5000 - 10 * i}.00") for i in range(count)]


def _kpis(**changes: object) -> PeriodKpis:
    previous = PeriodKpis(
        START - timedelta(days=7), END - timedelta(days=7),
        1000, Decimal("100000.00"), Decimal("95.00"), 10, 30, 5, 2, 12.5, 60.0,
    )  # fmt: skip
    kpis = PeriodKpis(
        start=START,
        end=END,
        payments=1234,
        revenue=Decimal("123456.78"),
        average_ticket=Decimal("100.05"),
        failed=12,
        expired=34,
        stores=5,
        cities=2,
        confirmation_mean_s=14.2,
        confirmation_p95_s=65.0,
        by_hour=[_row(f"{h:02d}h", 10 + h, f"{1000 + h}.50") for h in range(24)],
        by_day=[
            _row(f"{START + timedelta(days=i):%d/%m/%Y}", 100 + i, f"{9000 + i}.00")
            for i in range(7)
        ],
        by_city=[_row("Campinas", 700, "70000.00"), _row("São Paulo", 534, "53456.78")],
        by_store=_stores(5),
        by_day_part=[
            DayPartRow(label, 100 * (i + 1), Decimal("87.65"), 90.0 + i)
            for i, (label, _, _) in enumerate(DAY_PARTS)
        ],
        confirmation_by_city=[
            CityConfirmation("São Paulo", 534, 20.4, 75.0),
            CityConfirmation("Campinas", 700, 9.6, 31.0),
        ],
        hourly_spread=[SpreadRow(f"{h:02d}h", 3, 40 + h, 12.26) for h in range(24)],
        previous=previous,
    )
    return dataclasses.replace(kpis, **changes)  # type: ignore[arg-type]


def _empty_kpis() -> PeriodKpis:
    return PeriodKpis(START, END, 0, Decimal("0.00"), None, 3, 2, 0, 0, None, None)


def _grid(name: str, rows: Sequence[str], columns: Sequence[str]) -> HeatmapGrid:
    values: list[list[Value]] = [
        [(i * 7 + j * 3) % 11 or None for j in range(len(columns))] for i in range(len(rows))
    ]
    return HeatmapGrid(HEATMAPS[name], list(rows), list(columns), values, START, END)


@pytest.fixture(scope="module")
def pictures() -> Pictures:
    """Three real heatmaps: a wide one, a tall one and a small one, out of HEATMAPS order."""
    grids = [
        _grid("volume_transacoes_por_hora_cidade", ["Campinas", "São Paulo"], ["8", "9", "10"]),
        _grid("loja_count", [f"loja-{i:03d}" for i in range(60)], ["seg", "ter", "qua"]),
        _grid("semana_count", ["seg", "ter", "qua"], [str(h) for h in range(24)]),
    ]
    return [(grid, render_heatmap_png(grid, dpi=72)) for grid in grids]


# --------------------------------------------------------------------------- reading back


def _pages(content: bytes) -> list[str]:
    """Each page's text, whitespace collapsed."""
    assert content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [re.sub(r"\s+", " ", page.extract_text()) for page in reader.pages]


def _page_sizes(content: bytes) -> list[tuple[float, float]]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def _rendered_pages(content: bytes, folder: Path) -> int:
    """How many pages poppler's pdftoppm draws (it fails on a page it cannot draw)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail(
            "pdftoppm (poppler-utils) is not installed: the PDF report is checked by drawing "
            "every page; install it with `apt-get install poppler-utils` (scripts/test.sh does)"
        )
    source = folder / "report.pdf"
    source.write_bytes(content)
    result = subprocess.run(
        [pdftoppm, "-r", "30", "-png", str(source), str(folder / "page")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"pdftoppm failed: {result.stderr}"
    assert "Error" not in result.stderr, result.stderr
    return len(list(folder.glob("page*.png")))


def _render(
    kpis: PeriodKpis,
    pictures: Sequence[tuple[HeatmapGrid, bytes]] = (),
    *,
    reading: Sequence[str] = ("O movimento subiu na semana.",),
    reading_source: str = "deterministic",
    top_stores: int = 30,
) -> bytes:
    return render_report_pdf(
        kpis,
        pictures=pictures,
        reading=reading,
        reading_source=reading_source,
        generated_at=GENERATED_AT,
        top_stores=top_stores,
    )


# --------------------------------------------------------------------------- cover


def test_cover_shows_the_period_and_its_kpis_in_brazilian_format() -> None:
    cover = _pages(_render(_kpis()))[0]

    for expected in (
        "Relatório de pagamentos PIX",
        "Período: 16/11/2026 a 22/11/2026 · horários de Brasília",
        "Período analisado 16/11/2026 a 22/11/2026 7 dias",
        "Pagamentos confirmados 1.234 +23,4% vs semana anterior",
        "Receita R$ 123.456,78 +23,5% vs semana anterior",
        "Ticket médio R$ 100,05 +5,3% vs semana anterior",
        "Tempo médio de confirmação 14 s p95 1 min 05 s · +13,6% vs semana anterior",
        "Recusados / expirados 12 / 34 3,6% das cobranças · semana anterior: 3,8%",
        "Lojas / cidades com vendas 5 / 2",
        "Gerado por pulso em 23/11/2026 06:00",
        "página 1 de",
    ):
        assert expected in cover, expected


def test_the_header_names_the_filter_on_every_page() -> None:
    content = render_report_pdf(
        _kpis(by_store=_stores(120)),
        pictures=[],
        reading=[],
        top_stores=200,
        filter_text="cidade Campinas",
        generated_at=GENERATED_AT,
    )
    pages = _pages(content)
    assert len(pages) > 1
    for page in pages:
        assert "Período: 16/11/2026 a 22/11/2026 · cidade Campinas · horários de Brasília" in page


def test_no_change_is_shown_when_the_previous_period_has_no_payment() -> None:
    for previous in (None, _empty_kpis()):
        cover = _pages(_render(_kpis(previous=previous)))[0]
        assert "Pagamentos confirmados 1.234" in cover
        assert "anterior" not in cover


def test_a_period_of_other_length_compares_with_as_many_days_before() -> None:
    one_day = _kpis(end=START, by_day=[], hourly_spread=[])
    assert "vs dia anterior" in _pages(_render(one_day))[0]
    month = _kpis(end=START + timedelta(days=29))
    assert "vs 30 dias anteriores" in _pages(_render(month))[0]


def test_percentages_are_written_the_brazilian_way() -> None:
    assert format_percent(1234.56) == "1.234,6%"
    assert format_percent(-4.04, signed=True) == "-4,0%"
    assert format_percent(-0.04, signed=True) == "0,0%"
    assert format_percent(12.3, signed=True) == "+12,3%"


# --------------------------------------------------------------------------- reading


def test_the_reading_appears_with_a_note_on_who_wrote_it() -> None:
    reading = ["O movimento subiu **12%** na semana.", "", "- Loja 7 vendeu mais\n  que as outras."]
    llm = " ".join(_pages(_render(_kpis(), reading=reading, reading_source="llm")))
    rules = " ".join(_pages(_render(_kpis(), reading=reading)))

    assert (
        "Leitura do período • O movimento subiu 12% na semana. • Loja 7 vendeu mais que as outras."
        in llm
    )
    assert "modelo de linguagem (LLM)" in llm
    assert "modelo de linguagem" not in rules
    assert re.sub(r"\s+", " ", READING_NOTES["deterministic"]) in rules


def test_reading_items_split_bullets_and_join_wrapped_lines() -> None:
    texts = ["Primeiro parágrafo\ncontinua aqui.", "  ", "• um\n• dois\n\n* três", "**forte**"]
    assert reading_items(texts) == [
        "Primeiro parágrafo continua aqui.",
        "um",
        "dois",
        "três",
        "forte",
    ]


def test_no_reading_means_no_reading_section() -> None:
    text = " ".join(_pages(_render(_kpis(), reading=[" ", ""])))
    assert "Leitura do período" not in text
    assert "Pagamentos por hora do dia" in text


def test_an_unknown_reading_source_is_refused() -> None:
    with pytest.raises(ReportError, match=r"reading_source 'gpt'.*deterministic, llm"):
        _render(_kpis(), reading_source="gpt")


# --------------------------------------------------------------------------- tables


def test_kpi_tables_have_their_rows() -> None:
    text = " ".join(_pages(_render(_kpis())))

    for expected in (
        "Pagamentos por hora do dia",
        "00h 10 0,8% R$ 1.000,50 R$ 100,05",
        "23h 33 2,7% R$ 1.023,50 R$ 31,02",
        "Total 1.234 100,0% R$ 123.456,78 R$ 100,05",
        "Pagamentos por dia",
        "Segunda-feira, 16/11/2026 100 8,1% R$ 9.000,00 R$ 90,00",
        "Domingo, 22/11/2026 106",
        "Pagamentos por cidade",
        "1 Campinas 700 56,7% R$ 70.000,00 R$ 100,00",
        "2 São Paulo 534 43,3% R$ 53.456,78 R$ 100,11",
        "Pagamentos por loja",
        "1 loja-000 10 4,1% R$ 5.000,00 R$ 500,00",
        "Ticket médio e ociosidade por período do dia",
        "Madrugada 00h às 06h 100 R$ 87,65 1 h 30 min",
        "Noite 18h às 24h 400 R$ 87,65 1 h 33 min",
        "Tempo de confirmação por cidade",
        "São Paulo 534 20 s 1 min 15 s",
        "Campinas 700 10 s 31 s",
        "Pagamentos por hora ao longo do período",
        "00h 3 40 12,3",
        "23h 3 63 12,3",
    ):
        assert expected in text, expected


def test_many_stores_end_in_one_line_for_the_rest() -> None:
    stores = _stores(45)
    text = " ".join(_pages(_render(_kpis(by_store=stores), top_stores=30)))

    assert "Pagamentos por loja (as 30 de maior receita, de 45)" in text
    assert "30 loja-029 10" in text
    assert "loja-030" not in text
    rest = sum(row.revenue for row in stores[30:])
    assert rest == Decimal("69450.00")
    assert "Demais 15 lojas 150 56,3% R$ 69.450,00 R$ 463,00" in text


def test_a_table_longer_than_a_page_goes_on_under_its_header(tmp_path: Path) -> None:
    stores = _stores(150)
    content = _render(_kpis(by_store=stores), top_stores=200)
    pages = _pages(content)
    with_stores = [i for i, page in enumerate(pages) if "loja-" in page]

    assert len(with_stores) >= 3
    for index in with_stores[1:]:
        assert "# Loja Pagamentos % da receita Receita Ticket médio" in pages[index]
    text = " ".join(pages)
    for row in stores:
        assert f" {row.label} 10 " in text, row.label
    assert "150 loja-149 10" in text
    assert _rendered_pages(content, tmp_path) == len(pages)


# --------------------------------------------------------------------------- heatmaps


def test_heatmaps_follow_on_a_page_each_in_heatmaps_order(
    pictures: Pictures, tmp_path: Path
) -> None:
    without = _render(_kpis())
    content = _render(_kpis(), pictures)
    pages = _pages(content)

    assert len(pages) == len(_pages(without)) + len(pictures)
    order = sorted(pictures, key=lambda pair: list(HEATMAPS).index(pair[0].spec.name))
    heatmap_pages = pages[-len(pictures) :]
    for index, ((grid, _), page) in enumerate(zip(order, heatmap_pages, strict=True), start=1):
        assert grid.spec.title in page
        assert f"Mapa de calor {index} de 3 · 16/11/2026 a 22/11/2026" in page
    sizes = _page_sizes(content)[-len(pictures) :]
    wide, tall, _small = sizes  # semana_count, loja_count, volume por hora e cidade
    assert wide[0] > wide[1], "a wide heatmap gets a landscape page"
    assert tall[0] < tall[1], "a tall heatmap gets a portrait page"
    assert f"página {len(pages)} de" in pages[-1]
    assert _rendered_pages(content, tmp_path) == len(pages)


def test_each_heatmap_is_embedded_once_with_its_pixels(pictures: Pictures) -> None:
    reader = pypdf.PdfReader(io.BytesIO(_render(_kpis(), pictures)))
    images = [image for page in reader.pages for image in page.images]

    assert len(images) == len(pictures)
    expected = {
        Image.open(io.BytesIO(png)).size: np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        for _, png in pictures
    }
    for image in images:
        pixels = np.asarray(image.image.convert("RGB"))
        assert np.array_equal(pixels, expected[image.image.size])


# --------------------------------------------------------------------------- empty period


def test_an_empty_period_is_a_valid_pdf_that_says_so(pictures: Pictures, tmp_path: Path) -> None:
    content = _render(_empty_kpis(), pictures)
    pages = _pages(content)

    assert len(pages) == 1
    cover = pages[0]
    for expected in (
        "16/11/2026 a 22/11/2026 SEM PAGAMENTOS NO PERÍODO",
        "Pagamentos confirmados 0",
        "Receita R$ 0,00",
        "Ticket médio —",
        "Tempo médio de confirmação — p95 —",
        "Recusados / expirados 3 / 2 100,0% das cobranças",
        "Sem pagamentos no período: nenhuma cobrança PIX foi paga",
        "página 1 de 1",
    ):
        assert expected in cover, expected
    assert "Pagamentos por hora" not in cover
    assert "Mapa de calor" not in cover
    assert _rendered_pages(content, tmp_path) == 1


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ReportError, match="after it ends"):
        _render(_kpis(start=END, end=START))


# --------------------------------------------------------------------------- pictures in pdf.py


def _png(pixels: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", **options)
    return buffer.getvalue()


def _embedded_pixels(png: bytes) -> np.ndarray:
    doc = PdfDocument("Figura", generated_at=GENERATED_AT)
    doc.image(prepare_png(png))
    [image] = pypdf.PdfReader(io.BytesIO(doc.to_bytes())).pages[0].images
    return np.asarray(image.image.convert("RGB"))


def test_png_pixels_reach_the_pdf_unchanged_in_every_colour_mode() -> None:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)
    grey = rgb[..., 0]
    half_clear = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    half_clear[:, 20:, 3] = 0  # transparent: shows white, as on the page
    on_white = rgb.copy()
    on_white[:, 20:] = 255
    palette = Image.fromarray(rgb).quantize(8)

    assert np.array_equal(_embedded_pixels(_png(rgb)), rgb)  # copied as it is
    assert np.array_equal(_embedded_pixels(_png(grey)), np.dstack([grey] * 3))
    assert np.array_equal(_embedded_pixels(_png(half_clear)), on_white)
    palette_png = io.BytesIO()
    palette.save(palette_png, "PNG")
    expected = np.asarray(palette.convert("RGB"))
    assert np.array_equal(_embedded_pixels(palette_png.getvalue()), expected)


def test_png_resolution_sets_the_natural_size() -> None:
    picture = prepare_png(_png(np.zeros((20, 144, 3), np.uint8), dpi=(144, 144)))
    assert (picture.width_px, picture.height_px) == (144, 20)
    assert picture.width_pt == pytest.approx(72, abs=0.1)
    assert picture.png_rows


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda png: b"GIF89a" + png[6:], "is not a PNG"),
        (lambda png: png[: len(png) // 2], "cut short"),
        (lambda png: png[:20] + bytes([png[20] ^ 0xFF]) + png[21:], "fails its checksum"),
    ],
)
def test_a_damaged_png_is_refused_with_its_name(damage: object, message: str) -> None:
    png = _png(np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ReportError, match=f"heatmap x.*{message}"):
        prepare_png(damage(png), name="heatmap x")  # type: ignore[operator]


def test_a_damaged_heatmap_picture_names_the_heatmap() -> None:
    grid = _grid("semana_count", ["seg"], ["0"])
    broken = zlib.compress(b"not a png")
    with pytest.raises(ReportError, match="'semana_count' is not a PNG"):
        _render(_kpis(), [(grid, broken)])


def test_poppler_draws_a_copied_png_with_its_colours(tmp_path: Path) -> None:
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:] = (0, 0, 255)
    picture = prepare_png(_png(pixels))
    assert picture.png_rows  # the PNG's own rows, with its predictors declared
    doc = PdfDocument("Figura", generated_at=GENERATED_AT)
    doc.image(picture)
    doc.image(picture)  # the same picture again: stored once
    content = doc.to_bytes()

    assert content.count(b"/Subtype /Image") == 1
    assert _rendered_pages(content, tmp_path) == 1
    page = np.asarray(Image.open(tmp_path / "page-1.png").convert("RGB")).astype(int)
    red = np.all(np.abs(page - (255, 0, 0)) < 40, axis=2).sum()
    blue = np.all(np.abs(page - (0, 0, 255)) < 40, axis=2).sum()
    # 30 x 20 points of each colour at 30 dpi: over 100 pixels a copy, two copies
    assert red > 180
    assert blue > 180
