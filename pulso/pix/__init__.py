"""PIX at the till: BR Codes (build, parse, CRC), PIX keys, QR images, providers, webhooks.

QR rendering (``pulso.pix.qr``) is imported on demand, so importing this package stays light.
"""

from __future__ import annotations

from pulso.pix.brcode import BRCode, build_dynamic, build_static, crc16_ccitt, crc_hex, parse_brcode
from pulso.pix.errors import (
    BRCodeError,
    ChargeNotFoundError,
    InvalidPixKeyError,
    PixError,
    PSPError,
    PSPUnavailableError,
    WebhookSignatureError,
)
from pulso.pix.keys import PixKey, PixKeyType, mask_pix_key, parse_pix_key

__all__ = [
    "BRCode",
    "BRCodeError",
    "ChargeNotFoundError",
    "InvalidPixKeyError",
    "PSPError",
    "PSPUnavailableError",
    "PixError",
    "PixKey",
    "PixKeyType",
    "WebhookSignatureError",
    "build_dynamic",
    "build_static",
    "crc16_ccitt",
    "crc_hex",
    "mask_pix_key",
    "parse_brcode",
    "parse_pix_key",
]
