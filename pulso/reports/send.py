"""Build a period's payment report and deliver it: what ``pulso report send`` and the
scheduler in ``pulso up`` both do."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from pulso.reports import ReportError
from pulso.reports.payments_report import PaymentsReport, Step, build_payments_report, report_folder
from pulso.reports.schedule import PeriodName, ReportJob, period_dates

if TYPE_CHECKING:
    from pulso.config import Settings
    from pulso.notify import DeliveryReport, Notifier
    from pulso.store.protocol import Store

log = logging.getLogger(__name__)

BACKOFF_S = 2.0
"""Seconds before a channel's second attempt; doubled before each next one."""


class NoChannelError(ReportError):
    """No delivery channel is configured."""


@dataclass(frozen=True, slots=True)
class SentReport:
    report: PaymentsReport
    delivery: DeliveryReport


def channels_from_setting(value: str) -> list[str] | None:
    """``PULSO_REPORT_CHANNELS`` / ``--channels`` as a list; empty means every configured one."""
    chosen = [c.strip().lower() for c in value.split(",") if c.strip()]
    return chosen or None


def report_notifiers(settings: Settings, channels: Sequence[str] | None) -> list[Notifier]:
    """The notifiers to send to; a clear error when there is none."""
    from pulso.notify import notifiers_from_settings

    notifiers = notifiers_from_settings(settings, channels)
    if not notifiers:
        raise NoChannelError(
            "no delivery channel is configured: set PULSO_SMTP_HOST, PULSO_EMAIL_FROM and "
            "PULSO_EMAIL_TO (e-mail), PULSO_TELEGRAM_BOT_TOKEN and PULSO_TELEGRAM_CHAT_ID, or "
            "PULSO_SLACK_WEBHOOK_URL (see docs/notifications.md)"
        )
    return notifiers


def send_report(
    store: Store,
    settings: Settings,
    *,
    start: date,
    end: date,
    channels: Sequence[str] | None = None,
    store_id: str | None = None,
    city: str | None = None,
    step: Step | None = None,
) -> SentReport:
    """Build the report of ``start``..``end`` under the data dir and deliver it.

    The channels are checked before any work is done, so a misconfigured channel fails fast.
    A failing channel is retried (``PULSO_NOTIFY_RETRIES``) and reported in the result; it
    never stops the others.
    """
    from pulso.notify import deliver

    notifiers = report_notifiers(settings, channels)
    folder = report_folder(settings.data_dir / "reports", start, end)
    report = build_payments_report(
        store, settings, start=start, end=end, folder=folder, store_id=store_id, city=city,
        step=step,
    )  # fmt: skip
    if step is not None:
        step("envio")
    delivery = deliver(
        report.notification(), notifiers, retries=settings.notify_retries, backoff=BACKOFF_S
    )
    return SentReport(report, delivery)


def scheduled_report_job(store: Store, settings: Settings) -> ReportJob:
    """The scheduler's job: build and send the period's report; log what happened.

    With no channel configured the report is still written under the data dir.
    """
    channels = channels_from_setting(settings.report_channels)

    def job(period: PeriodName, today: date) -> None:
        start, end = period_dates(period, today=today)
        try:
            sent = send_report(store, settings, start=start, end=end, channels=channels)
        except NoChannelError as e:
            folder = report_folder(settings.data_dir / "reports", start, end)
            build_payments_report(store, settings, start=start, end=end, folder=folder)
            log.warning("%s report written to %s; not sent: %s", period, folder, e)
            return
        level = logging.INFO if sent.delivery.ok else logging.WARNING
        log.log(level, "%s report %s: %s", period, sent.report.folder, sent.delivery.describe())

    return job
