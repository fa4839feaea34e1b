"""QR images: every rendering is read back by a real decoder (OpenCV's QRCodeDetector)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest

from pulso.pix.brcode import build_dynamic, build_static
from pulso.pix.errors import PixError
from pulso.pix.qr import QUIET_ZONE_MODULES, qr_png, qr_svg, qr_terminal

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is a dev dependency")
np = pytest.importorskip("numpy")

# Banco Central, "Manual de Padrões para Iniciação do Pix", §2.6.3 (static QR example).
BCB_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
LONG_STATIC = build_static(
    key=f"{'a' * 40}@example.com",
    name="Supermercado Bom Preco Ltda",
    city="Sao Paulo",
    amount=Decimal("1234567.89"),
    txid="A" * 25,
    info="Pedido 123456 caixa 7",
)
DYNAMIC = build_dynamic(
    url="pix.example.com/qr/v2/cobv/9d36b84fc70b478fb95c12729b90ca25", name="Loja", city="Recife"
)
# Field lengths count characters, the QR carries UTF-8 bytes: the accented name must survive.
ACCENTED = "00020126330014br.gov.bcb.pix0111529982247255204000053039865802BR5909José Açaí6009São Paulo62070503***6304ABCD"  # noqa: E501
FORMAT_MASK = 0b101010000010010
EC_LEVEL_OF_FORMAT_BITS = {0b01: "L", 0b00: "M", 0b11: "Q", 0b10: "H"}


def decode_image(pixels: Any) -> str:
    """Decode with OpenCV. Its classic detector misses some large, sharp images (version 11
    at 8 px per module) that its ArUco-based detector reads, so both are tried."""
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        text, points, _ = detector.detectAndDecode(pixels)
        if points is not None and text:
            return str(text)
    pytest.fail("OpenCV found no readable QR code in the image")


def png_pixels(png: bytes) -> Any:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)


def modules_of_png(png: bytes, box_size: int) -> list[list[bool]]:
    """The module matrix (True = dark), sampled at each module's centre, margin removed."""
    pixels = png_pixels(png)
    size = pixels.shape[0] // box_size - 2 * QUIET_ZONE_MODULES
    offset = QUIET_ZONE_MODULES * box_size + box_size // 2
    return [
        [bool(pixels[offset + r * box_size, offset + c * box_size] < 128) for c in range(size)]
        for r in range(size)
    ]


def image_of_modules(modules: list[list[bool]], box_size: int = 8) -> Any:
    """Render a module matrix as a grayscale image with the standard quiet zone."""
    grid = np.array(modules, dtype=np.uint8)
    grid = np.pad(grid, QUIET_ZONE_MODULES)
    pixels = np.where(grid == 1, 0, 255).astype(np.uint8)
    return np.kron(pixels, np.ones((box_size, box_size), dtype=np.uint8))


def error_correction_level(modules: list[list[bool]]) -> str:
    """Read the format information next to the top-left finder (ISO/IEC 18004 §7.9)."""
    cells = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (7, 5, 4, 3, 2, 1, 0)]
    bits = 0
    for r, c in cells:
        bits = (bits << 1) | modules[r][c]
    return EC_LEVEL_OF_FORMAT_BITS[((bits ^ FORMAT_MASK) >> 13) & 0b11]


@pytest.mark.parametrize("payload", [BCB_STATIC, LONG_STATIC, DYNAMIC, ACCENTED])
def test_png_decodes_back_to_the_payload(payload: str) -> None:
    png = qr_png(payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_image(png_pixels(png)) == payload


@pytest.mark.parametrize("box_size", [2, 4, 10])
def test_png_box_size_scales_the_image(box_size: int) -> None:
    png = qr_png(BCB_STATIC, box_size=box_size)
    pixels = png_pixels(png)
    modules = 49  # version 8: 136 bytes at level M
    assert pixels.shape == ((modules + 8) * box_size, (modules + 8) * box_size)
    assert decode_image(pixels) == BCB_STATIC


@pytest.mark.parametrize("payload", [BCB_STATIC, LONG_STATIC, DYNAMIC])
def test_error_correction_is_level_m(payload: str) -> None:
    assert error_correction_level(modules_of_png(qr_png(payload), box_size=8)) == "M"


def svg_modules(svg: str) -> list[list[bool]]:
    """Rasterise segno's SVG path (absolute M, relative m and h, stroke 1 module) to modules."""
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    path = root.find("{http://www.w3.org/2000/svg}path")
    assert path is not None
    scale = int(re.fullmatch(r"scale\((\d+)\)", path.attrib["transform"]).group(1))  # type: ignore[union-attr]
    size = int(root.attrib["width"]) // scale
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, args in re.findall(r"([A-Za-z])([^A-Za-z]*)", path.attrib["d"]):
        numbers = [float(n) for n in args.split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            for column in range(int(x), int(x + numbers[0])):
                grid[int(y)][column] = True
            x += numbers[0]
        else:
            pytest.fail(f"unexpected SVG path command {command!r}")
    border = QUIET_ZONE_MODULES
    return [row[border : size - border] for row in grid[border : size - border]]


@pytest.mark.parametrize("payload", [BCB_STATIC, DYNAMIC])
def test_svg_holds_the_same_modules_and_decodes(payload: str) -> None:
    svg = qr_svg(payload)
    modules = svg_modules(svg)
    assert modules == modules_of_png(qr_png(payload), box_size=8)
    assert decode_image(image_of_modules(modules)) == payload
    assert "<title>PIX BR Code</title>" in svg


def terminal_modules(drawing: str) -> list[list[bool]]:
    """Undo the half-block drawing: each character is two module rows."""
    halves = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}
    rows: list[list[bool]] = []
    for line in drawing.splitlines():
        assert line.startswith("\x1b[30;107m") and line.endswith("\x1b[0m")
        cells = line.removeprefix("\x1b[30;107m").removesuffix("\x1b[0m")
        rows.append([halves[ch][0] for ch in cells])
        rows.append([halves[ch][1] for ch in cells])
    border = QUIET_ZONE_MODULES
    size = len(rows[0]) - 2 * border
    return [row[border : border + size] for row in rows[border : border + size]]


@pytest.mark.parametrize("payload", [BCB_STATIC, LONG_STATIC, DYNAMIC])
def test_terminal_drawing_holds_the_same_modules_and_decodes(payload: str) -> None:
    drawing = qr_terminal(payload)
    lines = drawing.splitlines()
    assert len({len(line) for line in lines}) == 1
    modules = terminal_modules(drawing)
    assert modules == modules_of_png(qr_png(payload), box_size=8)
    assert decode_image(image_of_modules(modules)) == payload


def test_terminal_drawing_uses_two_module_rows_per_line() -> None:
    size = 49 + 2 * QUIET_ZONE_MODULES  # version 8 plus margins
    assert len(qr_terminal(BCB_STATIC).splitlines()) == (size + 1) // 2


def test_empty_payload_and_bad_box_size_are_refused() -> None:
    with pytest.raises(PixError, match="empty payload"):
        qr_png("")
    with pytest.raises(PixError, match="empty payload"):
        qr_svg("")
    with pytest.raises(PixError, match="empty payload"):
        qr_terminal("")
    with pytest.raises(PixError, match="box_size must be at least 1"):
        qr_png(BCB_STATIC, box_size=0)


def test_every_dynamic_code_of_random_charges_reads_back() -> None:
    """Random charge URLs and amounts (what the API draws): every PNG decodes to its payload."""
    import random
    import string

    zxingcpp = pytest.importorskip("zxingcpp")
    rng = random.Random(3)
    for _ in range(150):
        charge = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(25))
        payload = build_dynamic(
            url=f"pix.pulso.local/v1/pix/charges/ch_{charge}",
            name="Loja Centro",
            city="Sao Paulo",
            amount=Decimal(rng.randint(1, 9_999_999)) / 100,
            txid=charge,
        )
        pixels = png_pixels(qr_png(payload))
        qr_only = zxingcpp.BarcodeFormat.QRCode  # other formats may "see" a stray code
        decoded = [b.text for b in zxingcpp.read_barcodes(pixels, formats=qr_only)]
        assert decoded == [payload]
