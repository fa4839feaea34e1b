"""Times are stored in UTC and shown in America/Sao_Paulo as dd/mm/aaaa."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

DISPLAY_ZONE = ZoneInfo("America/Sao_Paulo")


def format_local(
    at: datetime | None, *, with_time: bool = True, zone: ZoneInfo = DISPLAY_ZONE
) -> str:
    """``20/11/2026 14:05`` in the display zone; ``—`` for None."""
    if at is None:
        return "—"
    local = at.astimezone(zone)
    return local.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def local_midnight(day: date, zone: ZoneInfo = DISPLAY_ZONE) -> datetime:
    """The UTC instant local ``day`` starts in ``zone``: the bound of a period of local days."""
    return datetime.combine(day, time(), zone).astimezone(UTC)
