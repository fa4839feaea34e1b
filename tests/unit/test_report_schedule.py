from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from pulso.config import load_settings
from pulso.errors import ConfigError
from pulso.reports import ReportError
from pulso.reports.schedule import PeriodName, ReportSchedule, ReportScheduler, period_dates

SP = ZoneInfo("America/Sao_Paulo")
SCHEDULE = ReportSchedule(daily_at=time(7, 0), weekly_day=0, zone=SP)


def test_yesterday_is_the_last_complete_day() -> None:
    assert period_dates("yesterday", today=date(2026, 11, 24)) == (
        date(2026, 11, 23),
        date(2026, 11, 23),
    )
    assert period_dates("yesterday", today=date(2026, 3, 1)) == (
        date(2026, 2, 28),
        date(2026, 2, 28),
    )


@pytest.mark.parametrize(
    "today", [date(2026, 11, 23), date(2026, 11, 25), date(2026, 11, 29)]
)  # Monday, Wednesday, Sunday of the same week
def test_last_week_is_the_previous_monday_to_sunday(today: date) -> None:
    assert period_dates("last-week", today=today) == (date(2026, 11, 16), date(2026, 11, 22))


def test_unknown_period_names_the_valid_ones() -> None:
    with pytest.raises(ReportError, match="yesterday or last-week"):
        period_dates("last-month", today=date(2026, 11, 24))


def test_next_due_is_later_today_before_the_time_and_tomorrow_after_it() -> None:
    # 06:59 in São Paulo is 09:59 UTC (UTC-3, no daylight saving since 2019)
    due, periods = SCHEDULE.next_due(datetime(2026, 11, 24, 9, 59, tzinfo=UTC))
    assert due == datetime(2026, 11, 24, 7, 0, tzinfo=SP)
    assert periods == ["yesterday"]
    due, _ = SCHEDULE.next_due(datetime(2026, 11, 24, 7, 0, tzinfo=SP))
    assert due == datetime(2026, 11, 25, 7, 0, tzinfo=SP)


def test_the_weekly_report_goes_out_on_the_weekly_day_after_the_daily_one() -> None:
    due, periods = SCHEDULE.next_due(datetime(2026, 11, 29, 20, 0, tzinfo=SP))  # Sunday night
    assert due == datetime(2026, 11, 30, 7, 0, tzinfo=SP)  # Monday
    assert periods == ["yesterday", "last-week"]


def test_next_due_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SCHEDULE.next_due(datetime(2026, 11, 24, 7, 0))


def test_schedule_from_settings() -> None:
    settings = load_settings(report_daily_at="6:30", report_weekly_day="fri")
    schedule = ReportSchedule.from_settings(settings)
    assert schedule.daily_at == time(6, 30)
    assert schedule.weekly_day == 4
    assert schedule.zone.key == "America/Sao_Paulo"
    assert "06:30" in schedule.describe()


@pytest.mark.parametrize("value", ["25:00", "7", "07:5", "aa:bb", "07:60"])
def test_a_bad_daily_time_is_one_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"PULSO_REPORT_DAILY_AT.*HH:MM"):
        load_settings(report_daily_at=value)


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.at

    def set(self, at: datetime) -> None:
        with self.lock:
            self.at = at


def _wait_for(condition: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(1_000):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the scheduler did not run within 10 s")


def test_scheduler_runs_the_due_reports_and_survives_a_failing_job() -> None:
    clock = _Clock(datetime(2026, 11, 29, 23, 0, tzinfo=SP))  # Sunday night
    calls: list[tuple[PeriodName, date]] = []

    def job(period: PeriodName, day: date) -> None:
        calls.append((period, day))
        if period == "yesterday" and day == date(2026, 11, 30):
            raise RuntimeError("SMTP down")

    scheduler = ReportScheduler(SCHEDULE, job, now=clock, poll_s=0.01)
    scheduler.start()
    try:
        clock.set(datetime(2026, 11, 30, 7, 0, 1, tzinfo=SP))  # Monday 07:00:01
        _wait_for(lambda: len(calls) == 2)
        clock.set(datetime(2026, 12, 1, 7, 0, 1, tzinfo=SP))  # Tuesday
        _wait_for(lambda: len(calls) == 3)
    finally:
        scheduler.stop()
    assert calls == [
        ("yesterday", date(2026, 11, 30)),
        ("last-week", date(2026, 11, 30)),
        ("yesterday", date(2026, 12, 1)),
    ]
    assert scheduler.sent == [("last-week", date(2026, 11, 30)), ("yesterday", date(2026, 12, 1))]


def test_scheduler_does_not_send_a_moment_that_passed_before_it_started() -> None:
    calls: list[tuple[PeriodName, date]] = []
    clock = _Clock(datetime(2026, 11, 24, 7, 30, tzinfo=SP))
    scheduler = ReportScheduler(SCHEDULE, lambda p, d: calls.append((p, d)), now=clock, poll_s=0.01)
    scheduler.start()
    scheduler.stop()
    assert calls == []
