"""QR images of a BR Code: PNG, SVG and a terminal drawing.

segno is pure Python and writes PNG and SVG without Pillow. Error correction is fixed at M
(segno would otherwise "boost" it when the version allows), and the payload is encoded as
UTF-8, the bytes its CRC was computed over.
"""

from __future__ import annotations

import io

import segno

from pulso.pix.errors import PixError

QUIET_ZONE_MODULES = 4  # the margin ISO/IEC 18004 asks for; scanners fail without it
# Explicit black on bright white, so the code scans on dark and light terminals alike.
_ANSI_BLACK_ON_WHITE = "\x1b[30;107m"
_ANSI_RESET = "\x1b[0m"
# Half blocks: one character holds two module rows (upper, lower); True is a dark module.
_HALF_BLOCKS = {
    (True, True): "█",
    (True, False): "▀",
    (False, True): "▄",
    (False, False): " ",
}


def _qr(payload: str) -> segno.QRCode:
    if not payload:
        raise PixError("cannot draw a QR code of an empty payload; build a BR Code first")
    return segno.make(payload, error="m", boost_error=False, encoding="utf-8", micro=False)


def qr_png(payload: str, *, box_size: int = 8) -> bytes:
    """A PNG of ``payload`` with ``box_size`` pixels per module and a 4-module margin."""
    if box_size < 1:
        raise PixError(f"box_size must be at least 1 pixel per module, got {box_size}")
    buffer = io.BytesIO()
    _qr(payload).save(buffer, kind="png", scale=box_size, border=QUIET_ZONE_MODULES)
    return buffer.getvalue()


def qr_svg(payload: str) -> str:
    """An SVG document of ``payload`` (8 px per module, 4-module margin)."""
    buffer = io.BytesIO()
    _qr(payload).save(buffer, kind="svg", scale=8, border=QUIET_ZONE_MODULES, title="PIX BR Code")
    return buffer.getvalue().decode("utf-8")


def qr_terminal(payload: str) -> str:
    """``payload`` drawn with half-block characters, two module rows per line, in ANSI colours.

    Where colours are stripped (output not to a terminal), the blocks stand for dark modules.
    """
    rows = [list(map(bool, row)) for row in _qr(payload).matrix_iter(border=QUIET_ZONE_MODULES)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    lines = []
    for upper, lower in zip(rows[::2], rows[1::2], strict=True):
        cells = "".join(_HALF_BLOCKS[pair] for pair in zip(upper, lower, strict=True))
        lines.append(f"{_ANSI_BLACK_ON_WHITE}{cells}{_ANSI_RESET}")
    return "\n".join(lines)
