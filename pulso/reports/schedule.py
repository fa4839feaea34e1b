"""When the payment report goes out: the periods it covers and the scheduler in ``pulso up``.

A report covers whole local days (America/Sao_Paulo by default). ``yesterday`` is the last
complete day; ``last-week`` the last complete Monday-to-Sunday week. The daily report is sent
every day at ``PULSO_REPORT_DAILY_AT`` (default 07:00) for yesterday; on
``PULSO_REPORT_WEEKLY_DAY`` (default Monday) the weekly one for last week goes out at the same
moment, after the daily one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final, Literal, get_args
from zoneinfo import ZoneInfo

from pulso.reports import ReportError

if TYPE_CHECKING:
    from pulso.config import Settings

log = logging.getLogger(__name__)

PeriodName = Literal["yesterday", "last-week"]
PERIOD_NAMES: Final[tuple[PeriodName, ...]] = get_args(PeriodName)
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def period_dates(name: str, *, today: date) -> tuple[date, date]:
    """The first and last local day (inclusive) of period ``name`` seen from ``today``."""
    if name == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if name == "last-week":
        this_monday = today - timedelta(days=today.weekday())
        return this_monday - timedelta(days=7), this_monday - timedelta(days=1)
    raise ReportError(f"unknown period {name!r}: use {' or '.join(PERIOD_NAMES)}")


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """The daily report at ``daily_at`` local time; the weekly one too on ``weekly_day``."""

    daily_at: time
    weekly_day: int
    """0 = Monday ... 6 = Sunday (``date.weekday()``)."""
    zone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportSchedule:
        hour, minute = settings.report_daily_at.split(":")
        return cls(
            daily_at=time(int(hour), int(minute)),
            weekly_day=WEEKDAYS.index(settings.report_weekly_day),
            zone=ZoneInfo(settings.timezone),
        )

    def next_due(self, after: datetime) -> tuple[datetime, list[PeriodName]]:
        """The first send moment strictly after ``after`` (tz-aware) and the periods it sends."""
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        local = after.astimezone(self.zone)
        day = local.date()
        due = datetime.combine(day, self.daily_at, self.zone)
        if due <= local:
            day += timedelta(days=1)
            due = datetime.combine(day, self.daily_at, self.zone)
        periods: list[PeriodName] = ["yesterday"]
        if day.weekday() == self.weekly_day:
            periods.append("last-week")
        return due, periods

    def describe(self) -> str:
        """One line for the console: when the reports go out."""
        weekday = WEEKDAYS[self.weekly_day]
        return (
            f"daily report at {self.daily_at:%H:%M} {self.zone.key}, "
            f"weekly on {weekday} at the same time"
        )


ReportJob = Callable[[PeriodName, date], None]
"""Builds and sends the report for a period name, seen from the given local date."""


class ReportScheduler:
    """Runs ``job`` at every due moment of ``schedule`` on a background thread until stopped.

    Only future moments count: starting at 07:30 does not send 07:00's report (``pulso report
    send`` does that by hand). A failing job is logged and the next moment still comes.
    """

    def __init__(
        self,
        schedule: ReportSchedule,
        job: ReportJob,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_s: float = 60.0,
    ) -> None:
        self._schedule = schedule
        self._job = job
        self._now = now
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pulso-reports", daemon=True)
        self.sent: list[tuple[PeriodName, date]] = []
        """What ran, in order (for status and tests)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        last = self._now()
        while not self._stop.is_set():
            due, periods = self._schedule.next_due(last)
            wait_s = (due - self._now()).total_seconds()
            if wait_s > 0 and self._stop.wait(min(wait_s, self._poll_s)):
                return
            if self._now() < due:
                continue  # woke early to notice a changed clock; wait again
            local_day = due.astimezone(self._schedule.zone).date()
            for period in periods:
                self._run_job(period, local_day)
            last = due

    def _run_job(self, period: PeriodName, local_day: date) -> None:
        try:
            self._job(period, local_day)
            self.sent.append((period, local_day))
        except Exception:
            log.exception("the %s report due on %s failed", period, local_day)
