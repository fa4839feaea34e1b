"""PDF documents for pulso's reports: the one module that knows the PDF library (ReportLab).

Pages are A4, drawn straight on a ReportLab canvas with a small layout of our own: a header
and footer on every page ("página N de M"), headings, paragraphs, stat cards, key/value lists
and tables that continue on the next page under their header. Measured on a 2,000-event log
(46 landscape pages): 0.60 s here, 0.96 s when ReportLab's C accelerator ``rl-accel`` is
missing, against 1.2 s for the same rows as fpdf2 cells in the same run; ReportLab's platypus
tables cost 1.8× the bare canvas and fpdf2's table API 18×.

Text is set in Bitstream Vera, the TrueType family shipped inside the ReportLab wheel: it
covers Latin-1 (every Portuguese accent, ç, º, ª) plus dashes, curly quotes and the ellipsis,
so no font of the machine is needed, and only the glyphs used are embedded.

The formatting helpers (R$, dd/mm/aaaa in America/Sao_Paulo, counts, durations, weekdays)
live here so every report writes numbers and dates the same way.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, Literal

import reportlab
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from pulso.domain.money import format_brl
from pulso.domain.timefmt import DISPLAY_ZONE, format_local
from pulso.reports import ReportError

__all__ = [
    "PdfDocument",
    "Stat",
    "TableColumn",
    "TableRow",
    "format_brl",
    "format_count",
    "format_date",
    "format_day_heading",
    "format_duration_s",
    "format_local",
    "format_period",
    "local_day",
]

Align = Literal["left", "right", "center"]
Tone = Literal["neutral", "good", "bad", "warning", "muted", "brand"]

FONT: Final = "PulsoSans"
FONT_BOLD: Final = "PulsoSans-Bold"
_FONT_FILES: Final = ((FONT, "Vera.ttf"), (FONT_BOLD, "VeraBd.ttf"))

MARGIN_PT: Final = 16 * mm
_HEADER_PT: Final = 17 * mm
_FOOTER_PT: Final = 11 * mm
_TABLE_FONT_PT: Final = 7.5
_TABLE_MIN_FONT_PT: Final = 6.0  # cells shrink to this size before they are cut with "…"
_TABLE_ROW_PT: Final = 10.5
_CELL_PAD_PT: Final = 2.5
_WIDEST_GLYPH_EM: Final = 1.0  # no Vera glyph is wider than 1 em: shorter text surely fits
_PAGE_TOTAL_FORM: Final = "pulso_page_total"

_TONES: Final[dict[str, Color]] = {
    "neutral": HexColor("#1f2937"),
    "good": HexColor("#15803d"),
    "bad": HexColor("#b91c1c"),
    "warning": HexColor("#b45309"),
    "muted": HexColor("#6b7280"),
    "brand": HexColor("#0f766e"),
}
_RULE: Final = HexColor("#d1d5db")
_CARD: Final = HexColor("#f1f5f9")
_ZEBRA: Final = HexColor("#f8fafc")
_TABLE_HEAD: Final = HexColor("#e2e8f0")
_SUBTOTAL: Final = HexColor("#ccfbf1")
_WHITE: Final = HexColor("#ffffff")

_WEEKDAYS_PT: Final = (
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
)

_fonts_lock = threading.Lock()
_fonts_ready = False


# --------------------------------------------------------------------------- formatting


def format_count(n: int) -> str:
    """``1.234``: thousands with a dot, as Brazilians write them."""
    return f"{n:,}".replace(",", ".")


def format_date(day: date | datetime) -> str:
    """``20/11/2026``; a datetime is first moved to America/Sao_Paulo."""
    if isinstance(day, datetime):
        return format_local(day, with_time=False)
    return day.strftime("%d/%m/%Y")


def format_period(first: date, last: date) -> str:
    """``20/11/2026 a 26/11/2026`` (both days included), or one date."""
    if first == last:
        return format_date(first)
    return f"{format_date(first)} a {format_date(last)}"


def format_day_heading(day: date) -> str:
    """``Sexta-feira, 20/11/2026``."""
    return f"{_WEEKDAYS_PT[day.weekday()].capitalize()}, {format_date(day)}"


def format_duration_s(seconds: float | None) -> str:
    """``14 s``, ``2 min 05 s``, ``1 h 02 min``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --------------------------------------------------------------------------- building blocks


@dataclass(frozen=True, slots=True)
class TableColumn:
    title: str
    width_mm: float
    align: Align = "left"


@dataclass(frozen=True, slots=True)
class TableRow:
    """A row of cells; ``emphasis`` rows (subtotals) are bold on a tinted band."""

    cells: Sequence[str]
    emphasis: bool = False


@dataclass(frozen=True, slots=True)
class Stat:
    """One figure on a card: what it is, its value, an optional note under it."""

    label: str
    value: str
    note: str = ""
    tone: Tone = "neutral"


def _register_fonts() -> None:
    """Register Vera once per process (ReportLab's font registry is global)."""
    global _fonts_ready
    with _fonts_lock:
        if _fonts_ready:
            return
        folder = Path(reportlab.__file__).parent / "fonts"
        for name, file_name in _FONT_FILES:
            path = folder / file_name
            if not path.is_file():
                raise ReportError(
                    f"the font {path} that ships with ReportLab is missing; "
                    "reinstall it: pip install --force-reinstall reportlab"
                )
            pdfmetrics.registerFont(TTFont(name, str(path)))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)
        _fonts_ready = True


def _fit(
    text: str, font: str, size_pt: float, width_pt: float, min_size_pt: float
) -> tuple[str, float]:
    """The text and font size that fit ``width_pt``: shrink down to ``min_size_pt``, then
    cut the end with "…"."""
    if len(text) * size_pt * _WIDEST_GLYPH_EM <= width_pt:
        return text, size_pt
    natural = pdfmetrics.stringWidth(text, font, size_pt)
    if natural <= width_pt:
        return text, size_pt
    shrunk = max(min_size_pt, size_pt * width_pt / natural)
    if pdfmetrics.stringWidth(text, font, shrunk) <= width_pt:
        return text, shrunk
    while text and pdfmetrics.stringWidth(text + "…", font, shrunk) > width_pt:
        text = text[:-1]
    return text + "…", shrunk


class PdfDocument:
    """One A4 document, filled top to bottom; ``to_bytes()`` finishes it.

    Every page gets the header (title, subtitle, the pulso mark) and the footer (when it was
    generated, in Brasília time, and "página N de M").
    """

    def __init__(
        self,
        title: str,
        *,
        subtitle: str = "",
        generated_at: datetime | None = None,
        wide: bool = False,
    ) -> None:
        _register_fonts()
        self._title = title
        self._subtitle = subtitle
        self._generated_at = generated_at or datetime.now(UTC)
        self.page_width_pt, self.page_height_pt = landscape(A4) if wide else A4
        self._buffer = io.BytesIO()
        self._canvas = Canvas(
            self._buffer,
            pagesize=(self.page_width_pt, self.page_height_pt),
            # Without it every page names Helvetica, unused and not embedded. (types-reportlab
            # types this parameter as a float by mistake.)
            initialFontName=FONT,  # type: ignore[arg-type]
            lang="pt-BR",
        )
        self._canvas.setTitle(title)
        self._canvas.setSubject(subtitle)
        self._canvas.setAuthor("pulso")
        self._canvas.setCreator("pulso")
        self._pages = 0
        self._y = 0.0
        self._finished = False
        self._start_page()

    @property
    def content_width_pt(self) -> float:
        return self.page_width_pt - 2 * MARGIN_PT

    @property
    def pages(self) -> int:
        return self._pages

    # ------------------------------------------------------------------ page frame

    def _start_page(self) -> None:
        if self._pages:
            self._canvas.showPage()
        self._pages += 1
        self._draw_header()
        self._draw_footer()
        self._y = self.page_height_pt - MARGIN_PT - _HEADER_PT

    def _room(self, height_pt: float) -> None:
        """Start a new page unless ``height_pt`` still fits on this one."""
        if self._y - height_pt < MARGIN_PT + _FOOTER_PT:
            self._start_page()

    def _draw_header(self) -> None:
        c, left = self._canvas, MARGIN_PT
        right = self.page_width_pt - MARGIN_PT
        top = self.page_height_pt - MARGIN_PT
        c.setFillColor(_TONES["neutral"])
        title, size = _fit(self._title, FONT_BOLD, 15, right - left - 60, 10)
        c.setFont(FONT_BOLD, size)
        c.drawString(left, top - 12, title)
        if self._subtitle:
            subtitle, size = _fit(self._subtitle, FONT, 9, right - left, 6)
            c.setFillColor(_TONES["muted"])
            c.setFont(FONT, size)
            c.drawString(left, top - 26, subtitle)
        c.setFillColor(_TONES["brand"])
        c.setFont(FONT_BOLD, 13)
        c.drawRightString(right, top - 12, "pulso")
        c.setStrokeColor(_TONES["brand"])
        c.setLineWidth(1.2)
        c.line(left, top - 34, right, top - 34)

    def _draw_footer(self) -> None:
        c, left = self._canvas, MARGIN_PT
        right = self.page_width_pt - MARGIN_PT
        baseline = MARGIN_PT
        c.setStrokeColor(_RULE)
        c.setLineWidth(0.5)
        c.line(left, baseline + 10, right, baseline + 10)
        c.setFillColor(_TONES["muted"])
        c.setFont(FONT, 7)
        generated = format_local(self._generated_at)
        c.drawString(left, baseline, f"Gerado por pulso em {generated} (horário de Brasília)")
        # The total is not known yet: a form drawn on every page is filled in at the end.
        label = f"página {self._pages} de "
        x = right - pdfmetrics.stringWidth(f"{label}0000", FONT, 7)
        c.drawString(x, baseline, label)
        c.saveState()
        c.translate(x + pdfmetrics.stringWidth(label, FONT, 7), baseline)
        c.doForm(_PAGE_TOTAL_FORM)
        c.restoreState()

    # ------------------------------------------------------------------ content

    def space(self, height_mm: float) -> None:
        self._y -= height_mm * mm

    def heading(self, text: str, *, size_pt: float = 12) -> None:
        """A section title, kept with at least a few lines of what follows it."""
        self._room(size_pt + 4 * _TABLE_ROW_PT)
        self._y -= size_pt + 4
        self._canvas.setFillColor(_TONES["neutral"])
        self._canvas.setFont(FONT_BOLD, size_pt)
        self._canvas.drawString(MARGIN_PT, self._y, text)
        self._y -= 5

    def paragraph(self, text: str, *, size_pt: float = 9, tone: Tone = "muted") -> None:
        """Text wrapped to the page width."""
        leading = size_pt * 1.35
        for line in simpleSplit(text, FONT, size_pt, self.content_width_pt):
            self._room(leading)
            self._y -= leading
            self._canvas.setFillColor(_TONES[tone])
            self._canvas.setFont(FONT, size_pt)
            self._canvas.drawString(MARGIN_PT, self._y, line)
        self._y -= 3

    def headline(self, label: str, value: str, *, badge: str = "", tone: Tone = "neutral") -> None:
        """A large centred figure (a receipt's amount) with its label and a status badge."""
        self._room(80)
        c, centre = self._canvas, self.page_width_pt / 2
        c.setFillColor(_TONES["muted"])
        c.setFont(FONT, 10)
        c.drawCentredString(centre, self._y - 14, label)
        c.setFillColor(_TONES["neutral"])
        text, size = _fit(value, FONT_BOLD, 30, self.content_width_pt, 14)
        c.setFont(FONT_BOLD, size)
        c.drawCentredString(centre, self._y - 46, text)
        self._y -= 56
        if badge:
            self._badge(centre, badge, tone)
        self._y -= 8

    def _badge(self, centre_x: float, text: str, tone: Tone) -> None:
        c = self._canvas
        width = pdfmetrics.stringWidth(text, FONT_BOLD, 10) + 20
        c.setFillColor(_TONES[tone])
        c.roundRect(centre_x - width / 2, self._y - 20, width, 18, 9, stroke=0, fill=1)
        c.setFillColor(_WHITE)
        c.setFont(FONT_BOLD, 10)
        c.drawCentredString(centre_x, self._y - 14.5, text)
        self._y -= 24

    def stats(self, items: Sequence[Stat], *, per_row: int = 3) -> None:
        """Figures on cards, ``per_row`` to a row."""
        gap = 4 * mm
        width = (self.content_width_pt - gap * (per_row - 1)) / per_row
        height = 44.0
        for start in range(0, len(items), per_row):
            self._room(height + gap)
            for i, item in enumerate(items[start : start + per_row]):
                self._card(MARGIN_PT + i * (width + gap), width, height, item)
            self._y -= height + gap

    def _card(self, x: float, width: float, height: float, item: Stat) -> None:
        c, top = self._canvas, self._y
        c.setFillColor(_CARD)
        c.roundRect(x, top - height, width, height, 4, stroke=0, fill=1)
        inner = width - 16
        c.setFillColor(_TONES["muted"])
        label, size = _fit(item.label, FONT, 7.5, inner, 6)
        c.setFont(FONT, size)
        c.drawString(x + 8, top - 12, label)
        c.setFillColor(_TONES[item.tone])
        value, size = _fit(item.value, FONT_BOLD, 13, inner, 8)
        c.setFont(FONT_BOLD, size)
        c.drawString(x + 8, top - 28, value)
        if item.note:
            c.setFillColor(_TONES["muted"])
            note, size = _fit(item.note, FONT, 7, inner, 5.5)
            c.setFont(FONT, size)
            c.drawString(x + 8, top - 39, note)

    def key_values(self, pairs: Sequence[tuple[str, str]], *, label_width_mm: float = 52) -> None:
        """Label/value lines with a hairline between them (a receipt's details)."""
        label_width = label_width_mm * mm
        value_width = self.content_width_pt - label_width
        row_height = 19.0
        c = self._canvas
        for label, value in pairs:
            self._room(row_height)
            baseline = self._y - 13
            c.setFillColor(_TONES["muted"])
            c.setFont(FONT, 9)
            c.drawString(MARGIN_PT, baseline, label)
            text, size = _fit(value, FONT_BOLD, 10, value_width, 7)
            c.setFillColor(_TONES["neutral"])
            c.setFont(FONT_BOLD, size)
            c.drawString(MARGIN_PT + label_width, baseline, text)
            self._y -= row_height
            c.setStrokeColor(_RULE)
            c.setLineWidth(0.4)
            c.line(MARGIN_PT, self._y, MARGIN_PT + self.content_width_pt, self._y)

    def table(self, columns: Sequence[TableColumn], rows: Iterable[TableRow]) -> int:
        """Rows under a header that is drawn again on each new page; returns the row count.

        Columns wider than the page are an error; cells too long for their column shrink,
        then end in "…".
        """
        widths = [col.width_mm * mm for col in columns]
        if sum(widths) > self.content_width_pt + 0.5:
            raise ReportError(
                f"table columns add up to {sum(widths) / mm:.0f} mm but the page has "
                f"{self.content_width_pt / mm:.0f} mm; narrow the columns"
            )
        self._room(2 * _TABLE_ROW_PT)
        self._table_header(columns, widths)
        count = 0
        for row in rows:
            if self._y - _TABLE_ROW_PT < MARGIN_PT + _FOOTER_PT:
                self._start_page()
                self._table_header(columns, widths)
            self._table_row(columns, widths, row, shaded=count % 2 == 1)
            count += 1
        self._y -= 4
        return count

    def _table_header(self, columns: Sequence[TableColumn], widths: Sequence[float]) -> None:
        c = self._canvas
        c.setFillColor(_TABLE_HEAD)
        c.rect(MARGIN_PT, self._y - _TABLE_ROW_PT - 1, sum(widths), _TABLE_ROW_PT + 1, 0, 1)
        cells = [col.title for col in columns]
        self._cells(columns, widths, cells, FONT_BOLD, _TONES["neutral"], offset_pt=1)

    def _table_row(
        self,
        columns: Sequence[TableColumn],
        widths: Sequence[float],
        row: TableRow,
        *,
        shaded: bool,
    ) -> None:
        band = _SUBTOTAL if row.emphasis else (_ZEBRA if shaded else None)
        if band is not None:
            self._canvas.setFillColor(band)
            self._canvas.rect(MARGIN_PT, self._y - _TABLE_ROW_PT, sum(widths), _TABLE_ROW_PT, 0, 1)
        font = FONT_BOLD if row.emphasis else FONT
        self._cells(columns, widths, row.cells, font, _TONES["neutral"])

    def _cells(
        self,
        columns: Sequence[TableColumn],
        widths: Sequence[float],
        cells: Sequence[str],
        font: str,
        color: Color,
        offset_pt: float = 0.0,
    ) -> None:
        c, x = self._canvas, MARGIN_PT
        baseline = self._y - _TABLE_ROW_PT + 3 - offset_pt
        c.setFillColor(color)
        for col, width, cell in zip(columns, widths, cells, strict=True):
            inner = width - 2 * _CELL_PAD_PT
            text, size = _fit(cell, font, _TABLE_FONT_PT, inner, _TABLE_MIN_FONT_PT)
            c.setFont(font, size)
            if col.align == "right":
                c.drawRightString(x + width - _CELL_PAD_PT, baseline, text)
            elif col.align == "center":
                c.drawCentredString(x + width / 2, baseline, text)
            else:
                c.drawString(x + _CELL_PAD_PT, baseline, text)
            x += width
        self._y -= _TABLE_ROW_PT + offset_pt

    # ------------------------------------------------------------------ output

    def to_bytes(self) -> bytes:
        """Finish the document (page totals, trailer) and return the PDF."""
        if self._finished:
            raise ReportError("this PDF document was already finished; build a new one")
        self._finished = True
        c = self._canvas
        c.beginForm(_PAGE_TOTAL_FORM)
        c.setFillColor(_TONES["muted"])
        c.setFont(FONT, 7)
        c.drawString(0, 0, str(self._pages))
        c.endForm()
        c.save()
        return self._buffer.getvalue()


def local_day(at: datetime) -> date:
    """The calendar day of ``at`` in America/Sao_Paulo."""
    return at.astimezone(DISPLAY_ZONE).date()
