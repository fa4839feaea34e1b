"""Numbers, dates and durations as Brazilians write them: ``1.234,5``, ``20/11/2026``, ``12,3%``.

Money is :func:`pulso.domain.money.format_brl`; dates and times shown in America/Sao_Paulo.
Every report, message and page uses these, so the same figure reads the same everywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from pulso.domain.timefmt import DISPLAY_ZONE, format_local

_WEEKDAYS_PT: Final = (
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
)


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


def format_decimal(value: float, *, places: int = 1, signed: bool = False) -> str:
    """``1.234,5``; with ``signed``, ``+1,5`` / ``-0,4``, and ``0,0`` when it rounds to zero."""
    rounded = round(value, places)
    if rounded == 0:
        rounded = 0.0  # no "-0,0"
    text = f"{rounded:{'+' if signed and rounded else ''},.{places}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def format_percent(value: float, *, places: int = 1, signed: bool = False) -> str:
    """``12,3%``; with ``signed`` a change: ``+12,3%``, ``-4,0%``."""
    return format_decimal(value, places=places, signed=signed) + "%"


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


def local_day(at: datetime) -> date:
    """The calendar day of ``at`` in America/Sao_Paulo."""
    return at.astimezone(DISPLAY_ZONE).date()
