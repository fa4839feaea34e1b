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

The formatting helpers (R$, dd/mm/aaaa in America/Sao_Paulo, counts, percentages, durations,
weekdays) live here so every report writes numbers and dates the same way.

Pictures are PNGs prepared once (``prepare_png``) and placed with ``image`` or on a page of
their own with ``figure_page``. An 8-bit RGB or grey PNG is embedded as it is: its compressed
rows become the PDF image stream, with the PNG predictors declared, so nothing is decoded or
compressed again. Any other PNG (RGBA, palette, 16-bit, interlaced) is decoded by Pillow,
painted on white and compressed at zlib level 1, in threads. The 34 heatmaps of a 200-store
week (``benchmarks/bench_report_pdf.py``, 2 busy cores): 0.11 s as RGB PNGs, 2.5 s as RGBA PNGs,
against 5.8 s through ReportLab's own ``drawImage`` (decode, zlib level 6, ASCII85).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import reportlab
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import PDFDictionary, PDFName, PDFObject, PDFStream
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from pulso.domain.money import format_brl
from pulso.domain.ptbr import (
    format_count,
    format_date,
    format_day_heading,
    format_decimal,
    format_duration_s,
    format_percent,
    format_period,
    local_day,
)
from pulso.domain.timefmt import format_local
from pulso.reports import ReportError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "PdfDocument",
    "PdfImage",
    "Stat",
    "TableColumn",
    "TableRow",
    "format_brl",
    "format_count",
    "format_date",
    "format_day_heading",
    "format_decimal",
    "format_duration_s",
    "format_local",
    "format_percent",
    "format_period",
    "local_day",
    "prepare_png",
    "prepare_pngs",
]

Align = Literal["left", "right", "center"]
ColorSpace = Literal["DeviceRGB", "DeviceGray"]
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
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_COPIED: Final[dict[int, ColorSpace]] = {0: "DeviceGray", 2: "DeviceRGB"}
"""PNG colour types whose 8-bit rows a PDF reads as they are, and their colour space."""
_IMAGE_ZLIB_LEVEL: Final = 1  # level 6: 3x the time for a stream 14 % smaller (heatmaps)
_POINTS_PER_METRE: Final = 72 / 0.0254
_MIN_FIT_SHARE: Final = 0.6  # a picture this much smaller than on a fresh page starts one
_MAX_IMAGE_THREADS: Final = 4

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

_fonts_lock = threading.Lock()
_fonts_ready = False


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


# --------------------------------------------------------------------------- pictures


@dataclass(frozen=True, slots=True)
class PdfImage:
    """A picture ready for a ``PdfDocument``: its pixels as a compressed PDF image stream.

    Make it with ``prepare_png``. The same picture drawn twice in a document is stored once.
    """

    width_px: int
    height_px: int
    width_pt: float
    """Natural size, from the PNG's resolution (``pHYs``), or 1 pixel per point without one."""
    height_pt: float
    color_space: ColorSpace
    stream: bytes
    """zlib data: the PNG's own rows, each led by its filter byte, when ``png_rows``; else the
    bare 8-bit samples."""
    png_rows: bool
    key: str
    """A digest of the source PNG."""


@dataclass(frozen=True, slots=True)
class _PngHeader:
    width_px: int
    height_px: int
    bit_depth: int
    color_type: int
    interlaced: bool
    width_pt: float
    height_pt: float
    transparent_colour: bool  # a tRNS chunk: some colour is to show as transparent
    idat: bytes


def prepare_png(png: bytes, *, name: str = "picture") -> PdfImage:
    """``png`` ready to embed; ``name`` says which picture in error messages.

    8-bit RGB or grey PNGs are copied as they are (no decoding); others are decoded, painted on
    white (the page's colour) and compressed again.
    """
    header = _png_header(png, name)
    key = hashlib.blake2b(png, digest_size=16).hexdigest()
    color_space = _PNG_COPIED.get(header.color_type)
    if (
        color_space is None
        or header.bit_depth != 8
        or header.interlaced
        or header.transparent_colour
    ):
        return _decoded_png(png, name, header, key)
    return PdfImage(
        header.width_px,
        header.height_px,
        header.width_pt,
        header.height_pt,
        color_space,
        header.idat,
        png_rows=True,
        key=key,
    )


def prepare_pngs(pngs: Sequence[bytes], *, names: Sequence[str] | None = None) -> list[PdfImage]:
    """``prepare_png`` for many pictures, in threads: Pillow and zlib release the GIL."""
    labels = list(names) if names is not None else [f"picture {i + 1}" for i in range(len(pngs))]
    if len(labels) != len(pngs):
        raise ReportError(f"{len(pngs)} pictures but {len(labels)} names; give one name each")
    workers = min(len(pngs), os.cpu_count() or 1, _MAX_IMAGE_THREADS)
    if workers <= 1:
        return [prepare_png(png, name=label) for png, label in zip(pngs, labels, strict=True)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pulso-pdf-image") as pool:
        return list(pool.map(lambda png, label: prepare_png(png, name=label), pngs, labels))


def _png_chunks(png: bytes, name: str) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk, checksums verified, up to and including IEND."""
    at = len(_PNG_SIGNATURE)
    while at + 12 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, at)
        end = at + 8 + length
        if end + 4 > len(png):
            break
        data = png[at + 8 : end]
        if zlib.crc32(data, zlib.crc32(kind)) != struct.unpack_from(">I", png, end)[0]:
            raise ReportError(
                f"{name} is damaged: its PNG chunk {kind.decode('latin-1')!r} fails its "
                "checksum; render the picture again"
            )
        yield kind, data
        if kind == b"IEND":
            return
        at = end + 4
    raise ReportError(f"{name} is cut short: the PNG ends before its IEND chunk; render it again")


def _png_header(png: bytes, name: str) -> _PngHeader:
    if not png.startswith(_PNG_SIGNATURE):
        raise ReportError(f"{name} is not a PNG (no PNG signature at its start); pass PNG bytes")
    ihdr = b""
    ppm = (0, 0)
    idat: list[bytes] = []
    transparent = False
    for kind, data in _png_chunks(png, name):
        if kind == b"IHDR" and len(data) == 13:
            ihdr = data
        elif kind == b"pHYs" and len(data) == 9 and data[8] == 1:  # unit 1: pixels per metre
            ppm = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"tRNS":
            transparent = True
    if not ihdr or not idat:
        raise ReportError(f"{name} has no PNG header or no pixel data; render it again")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if not width or not height:
        raise ReportError(f"{name} is {width}x{height} pixels: nothing to draw")
    per_px_x = _POINTS_PER_METRE / ppm[0] if ppm[0] and ppm[1] else 1.0
    per_px_y = _POINTS_PER_METRE / ppm[1] if ppm[0] and ppm[1] else 1.0
    return _PngHeader(
        width,
        height,
        depth,
        color_type,
        bool(interlace),
        width * per_px_x,
        height * per_px_y,
        transparent,
        b"".join(idat),
    )


def _decoded_png(png: bytes, name: str, header: _PngHeader, key: str) -> PdfImage:
    from PIL import Image  # only for the PNGs a PDF cannot take as they are

    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as picture:
            picture.load()
            flat = _on_white(picture)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ReportError(f"{name} cannot be decoded as a PNG ({e}); render it again") from e
    return PdfImage(
        flat.width,
        flat.height,
        header.width_pt,
        header.height_pt,
        "DeviceGray" if flat.mode == "L" else "DeviceRGB",
        zlib.compress(flat.tobytes(), _IMAGE_ZLIB_LEVEL),
        png_rows=False,
        key=key,
    )


def _on_white(picture: Image) -> Image:
    """8-bit grey or RGB pixels; transparent parts painted white, as on the page."""
    from PIL import Image as PilImage

    if picture.mode in ("L", "RGB") and "transparency" not in picture.info:
        return picture
    if picture.mode not in ("LA", "PA", "RGBA", "La", "RGBa") and (
        "transparency" not in picture.info
    ):
        return picture.convert("RGB")
    rgba = picture.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:  # opaque after all (matplotlib's white figures)
        return rgba.convert("RGB")
    page = PilImage.new("RGB", rgba.size, "white")
    page.paste(rgba, mask=alpha)
    return page


class _ImageXObject(PDFObject):
    """A ``PdfImage`` as a PDF image XObject; its stream is written as it is."""

    def __init__(self, picture: PdfImage) -> None:
        self._picture = picture

    def format(self, document: object) -> bytes:
        picture = self._picture
        stream = PDFStream(content=picture.stream)
        entries = stream.dictionary
        entries["Type"] = PDFName("XObject")
        entries["Subtype"] = PDFName("Image")
        entries["Width"] = picture.width_px
        entries["Height"] = picture.height_px
        entries["BitsPerComponent"] = 8
        entries["ColorSpace"] = PDFName(picture.color_space)
        entries["Filter"] = PDFName("FlateDecode")  # present, so ReportLab adds no filter
        if picture.png_rows:
            colors = 1 if picture.color_space == "DeviceGray" else 3
            entries["DecodeParms"] = PDFDictionary(
                {
                    "Predictor": 15,
                    "Colors": colors,
                    "BitsPerComponent": 8,
                    "Columns": picture.width_px,
                }
            )
        content: bytes = stream.format(document)
        return content


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

    def _start_page(self, size_pt: tuple[float, float] | None = None) -> None:
        if self._pages:
            self._canvas.showPage()
        if size_pt is not None:  # applies from this page on
            self.page_width_pt, self.page_height_pt = size_pt
            self._canvas.setPageSize(size_pt)
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

    def keep_together(self, height_pt: float) -> None:
        """Start a new page unless ``height_pt`` fits in what is left of this one; nothing when
        it would not fit a fresh page either."""
        if height_pt <= self._fresh_room_pt():
            self._room(height_pt)

    @staticmethod
    def table_height_pt(rows: int) -> float:
        """The height ``table`` takes for ``rows`` rows under its header."""
        return (rows + 1) * _TABLE_ROW_PT + 5

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

    def bullets(self, items: Iterable[str], *, size_pt: float = 10, tone: Tone = "neutral") -> None:
        """A bulleted list, each item wrapped under its own first word."""
        leading = size_pt * 1.35
        indent = size_pt * 1.3
        c = self._canvas
        for item in items:
            lines = simpleSplit(item, FONT, size_pt, self.content_width_pt - indent)
            for index, line in enumerate(lines):
                self._room(leading)
                self._y -= leading
                c.setFillColor(_TONES[tone])
                c.setFont(FONT, size_pt)
                if index == 0:
                    c.drawString(MARGIN_PT + size_pt * 0.2, self._y, "•")
                c.drawString(MARGIN_PT + indent, self._y, line)
            self._y -= size_pt * 0.45
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

    # ------------------------------------------------------------------ pages and pictures

    def new_page(self, *, wide: bool | None = None) -> None:
        """Go on on a new page: landscape from here when ``wide``, portrait when False."""
        size = None if wide is None else (landscape(A4) if wide else A4)
        self._start_page(size)

    def image(self, picture: PdfImage) -> None:
        """The picture centred, as large as the width and the room left allow, never past
        its natural size; on a new page when it would come out much smaller here."""
        fresh = _scale(picture, self.content_width_pt, self._fresh_room_pt())
        if _scale(picture, self.content_width_pt, self._room_left_pt()) < _MIN_FIT_SHARE * fresh:
            self._start_page()
        scale = _scale(picture, self.content_width_pt, self._room_left_pt())
        width, height = picture.width_pt * scale, picture.height_pt * scale
        name = self._embed(picture)
        c = self._canvas
        c.saveState()
        c.translate(MARGIN_PT + (self.content_width_pt - width) / 2, self._y - height)
        c.scale(width, height)  # an image XObject fills the unit square
        c.doForm(name)
        c.restoreState()
        self._y -= height + 4

    def figure_page(self, picture: PdfImage, title: str, *, note: str = "") -> None:
        """A page of its own for ``picture`` under ``title`` (and a one-line ``note``), in the
        orientation that shows the picture larger."""
        reserved = 12 + 9 + (9 * 1.35 + 3 if note else 0)  # heading and note, as drawn below
        self.new_page(wide=_wide_shows_larger(picture, reserved))
        self.heading(title)
        if note:
            self.paragraph(note)
        self.image(picture)

    def _room_left_pt(self) -> float:
        return max(0.0, self._y - MARGIN_PT - _FOOTER_PT)

    def _fresh_room_pt(self) -> float:
        return _frame_pt(self.page_width_pt, self.page_height_pt)[1]

    def _embed(self, picture: PdfImage) -> str:
        """The picture's XObject name, storing it in the document the first time."""
        name = f"pulso_image_{picture.key}"
        if not self._canvas.hasForm(name):
            # ReportLab has no public call to add a ready image stream; its own drawImage adds
            # images to the document object the same way.
            self._canvas._doc.addForm(name, _ImageXObject(picture))  # type: ignore[attr-defined]
        return name

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


def _frame_pt(page_width_pt: float, page_height_pt: float) -> tuple[float, float]:
    """Width and height between the margins, the header and the footer."""
    return (
        page_width_pt - 2 * MARGIN_PT,
        page_height_pt - 2 * MARGIN_PT - _HEADER_PT - _FOOTER_PT,
    )


def _scale(picture: PdfImage, width_pt: float, height_pt: float) -> float:
    """The scale that fits ``picture`` in the box, at most its natural size."""
    return max(0.0, min(1.0, width_pt / picture.width_pt, height_pt / picture.height_pt))


def _wide_shows_larger(picture: PdfImage, reserved_pt: float) -> bool:
    portrait_w, portrait_h = _frame_pt(*A4)
    wide_w, wide_h = _frame_pt(*landscape(A4))
    portrait = _scale(picture, portrait_w, portrait_h - reserved_pt)
    return _scale(picture, wide_w, wide_h - reserved_pt) > portrait
