"""UUIDv7 identifiers (RFC 9562): time-ordered, so keys sort by creation time."""

from __future__ import annotations

import os
import time
import uuid


def uuid7(timestamp_ms: int | None = None) -> uuid.UUID:
    """A new UUIDv7; ``timestamp_ms`` fixes the time part (generators replaying history)."""
    ms = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    return value.int >> 80
