"""UUIDv7 identifiers (RFC 9562): time-ordered, so keys sort by creation time."""

from __future__ import annotations

import os
import time
import uuid
from typing import Final

import msgspec

_FIXED_BITS: Final = (0x7 << 76) | (0b10 << 62)  # version 7, RFC 4122 variant
_RANDOM_BITS: Final = ((1 << 80) - 1) & ~(0xF << 76) & ~(0b11 << 62)
# Building a UUID through msgspec's binary decoder skips uuid.UUID's Python __init__.
_FROM_BYTES: Final = msgspec.msgpack.Decoder(uuid.UUID)


def uuid7(timestamp_ms: int | None = None, random80: int | None = None) -> uuid.UUID:
    """A new UUIDv7. ``timestamp_ms`` fixes the time part (replaying history); ``random80``
    supplies the random bits (74 are kept), so a seeded generator gets the same ids."""
    ms = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    bits = int.from_bytes(os.urandom(10), "big") if random80 is None else random80
    value = ((ms & 0xFFFF_FFFF_FFFF) << 80) | (bits & _RANDOM_BITS) | _FIXED_BITS
    return _FROM_BYTES.decode(b"\xc4\x10" + value.to_bytes(16, "big"))


def uuid7_time_ms(value: uuid.UUID) -> int:
    return value.int >> 80
