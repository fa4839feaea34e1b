"""The report's KPIs for a period: the cover figures and the KPI tables, computed in SQL.

These are the types the PDF report, the written reading and the notifiers share. Money is
``Decimal`` reais (exact, from centavos); times are seconds or minutes as ``float``; dates are
local (America/Sao_Paulo) and the period is ``start``..``end`` inclusive, like the heatmaps.
Only **confirmed** payments count as transactions; ``failed`` and ``expired`` are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

DAY_PARTS: Final = (
    ("madrugada", 0, 6),
    ("manhã", 6, 12),
    ("tarde", 12, 18),
    ("noite", 18, 24),
)
"""Parts of the local day: (label, first hour, hour after the last)."""


@dataclass(frozen=True, slots=True)
class KpiRow:
    """One line of a KPI table: transactions and money for a label (hour, day, city, store)."""

    label: str
    payments: int
    revenue: Decimal
    average_ticket: Decimal | None
    """Revenue per payment, rounded to the centavo; None when there was no payment."""


@dataclass(frozen=True, slots=True)
class DayPartRow:
    """Mean price and idle time in one part of the day (madrugada, manhã, tarde, noite)."""

    label: str
    payments: int
    average_ticket: Decimal | None
    idle_minutes_per_store_day: float | None
    """Mean, over the (store, day) pairs with any sale that day, of the minutes of this part of
    the day with no payment at that store; None when no store sold anything in the period."""


@dataclass(frozen=True, slots=True)
class CityConfirmation:
    """How long payers took to confirm in a city."""

    city: str
    payments: int
    mean_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class SpreadRow:
    """Transactions in one hour of the day across the period's days: min, max and mean per day."""

    label: str
    minimum: int
    maximum: int
    mean: float


@dataclass(frozen=True, slots=True)
class PeriodKpis:
    """Everything the report says about one period, as numbers."""

    start: date
    end: date
    payments: int
    revenue: Decimal
    average_ticket: Decimal | None
    failed: int
    expired: int
    stores: int
    cities: int
    confirmation_mean_s: float | None
    confirmation_p95_s: float | None
    by_hour: list[KpiRow] = field(default_factory=list)
    """24 rows, "00h".."23h", hours with no payment included with zeros."""
    by_day: list[KpiRow] = field(default_factory=list)
    """One row per local date of the period ("dd/mm/aaaa"), days with no payment included."""
    by_city: list[KpiRow] = field(default_factory=list)
    """Cities by revenue, highest first."""
    by_store: list[KpiRow] = field(default_factory=list)
    """Stores by revenue, highest first."""
    by_day_part: list[DayPartRow] = field(default_factory=list)
    confirmation_by_city: list[CityConfirmation] = field(default_factory=list)
    """Slowest mean first."""
    hourly_spread: list[SpreadRow] = field(default_factory=list)
    """24 rows: per hour of the day, min/max/mean transactions over the period's days."""
    previous: PeriodKpis | None = None
    """The period of the same length just before, for week-over-week changes (no tables)."""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1
