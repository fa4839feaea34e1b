"""What a sales file's rows are checked against: the category catalogue and the window the
sale times must fall in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.etl.normalise import category_key

EARLIEST_SALE: Final = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_DAY_TOLERANCE: Final = timedelta(days=1)
DEFAULT_FUTURE_TOLERANCE: Final = timedelta(days=1)
_DAY_IN_NAME: Final = re.compile(r"(?<!\d)(20\d{2})-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True, slots=True)
class SaleRules:
    """The context a row is judged in.

    ``categories`` maps each category's matching key (see ``normalise.category_key``) to the
    catalogue's spelling; ``earliest``/``latest`` bound ``sold_at`` (inclusive, UTC).
    """

    categories: Mapping[str, str]
    earliest: datetime
    latest: datetime


def known_categories() -> tuple[str, ...]:
    """The catalogue's categories, as the sales generator draws them."""
    from pulso.sources.sales_generator import SALES_CATEGORIES

    return tuple(SALES_CATEGORIES)


def category_index(names: Iterable[str]) -> dict[str, str]:
    return {category_key(name): name for name in names}


def file_day(name: str) -> date | None:
    """The day a file's name carries (``vendas_2026-11-20.csv``, ``sales-20261120.csv``)."""
    match = _DAY_IN_NAME.search(name)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:  # 2026-02-30
        return None


def sale_rules(
    name: str,
    *,
    now: datetime,
    categories: Iterable[str],
    day_tolerance: timedelta = DEFAULT_DAY_TOLERANCE,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> SaleRules:
    """Rules for the file ``name``, read at ``now``.

    A sale is never later than ``now`` + ``future_tolerance`` (clocks and zones disagree) nor
    earlier than 2000; when the name carries a day, it falls on that day (São Paulo time)
    give or take ``day_tolerance``.
    """
    earliest, latest = EARLIEST_SALE, now.astimezone(UTC) + future_tolerance
    day = file_day(name)
    if day is not None:
        start = datetime.combine(day, time(), DISPLAY_ZONE).astimezone(UTC)
        earliest = max(earliest, start - day_tolerance)
        latest = min(latest, start + timedelta(days=1) + day_tolerance)
    return SaleRules(category_index(categories), earliest, latest)
