"""deliver(): retries, backoff, reports; notifiers_from_settings(): which channels, which errors.

The notifiers here are scripted stand-ins for the Notifier protocol (a seam pulso owns); the
channels themselves are tested against real or wire-faithful servers in tests/integration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from pulso.errors import ConfigError
from pulso.notify import (
    ChannelNotConfiguredError,
    Notification,
    Notifier,
    NotifyError,
    NotifyRejectedError,
    NotifyUnavailableError,
    SendResult,
    configured_channels,
    deliver,
    notifiers_from_settings,
)
from pulso.notify.delivery import backoff_s
from pulso.notify.email import EmailNotifier
from pulso.notify.slack import SlackNotifier
from pulso.notify.telegram import TelegramNotifier

NOTE = Notification(subject="Alerta de fraude", text="Pagamento suspeito de R$ 9.999,00")


class Scripted:
    """A notifier whose successive sends raise the scripted errors, then succeed."""

    def __init__(
        self, name: str, outcomes: Iterable[Exception | SendResult] = (), barrier: Any = None
    ) -> None:
        self.name = name
        self._outcomes = list(outcomes)
        self.sent: list[Notification] = []
        self._barrier = barrier

    def send(self, notification: Notification) -> SendResult:
        if self._barrier is not None:
            self._barrier.wait(timeout=10)
        outcome = self._outcomes.pop(0) if self._outcomes else SendResult()
        if isinstance(outcome, Exception):
            raise outcome
        self.sent.append(notification)
        return outcome


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _down(name: str, retry_after_s: float | None = None) -> NotifyUnavailableError:
    return NotifyUnavailableError(name, "HTTP 503", retry_after_s=retry_after_s)


def test_every_channel_sent_once() -> None:
    channels = [Scripted("email"), Scripted("telegram"), Scripted("slack")]

    report = deliver(NOTE, channels, retries=3, backoff=1.0, sleep=Waits())

    assert report.ok and report.notification_id == NOTE.notification_id
    assert [(r.channel, r.ok, r.attempts) for r in report.results] == [
        ("email", True, 1),
        ("telegram", True, 1),
        ("slack", True, 1),
    ]
    assert all(c.sent == [NOTE] for c in channels)
    assert report.describe().splitlines()[0] == "email: sent (1 attempt)"


def test_passing_failures_are_retried_with_doubling_backoff() -> None:
    flaky = Scripted("telegram", [_down("telegram"), _down("telegram")])
    waits = Waits()

    report = deliver(NOTE, [flaky], retries=3, backoff=1.5, sleep=waits)

    assert report.ok and report.result("telegram").attempts == 3
    assert waits == [1.5, 3.0]


def test_gives_up_after_the_attempts_and_says_why() -> None:
    dead = Scripted("slack", [_down("slack")] * 5)
    waits = Waits()

    report = deliver(NOTE, [dead], retries=4, backoff=1.0, sleep=waits)

    outcome = report.result("slack")
    assert (outcome.ok, outcome.attempts) == (False, 4)
    assert outcome.error == "HTTP 503 (gave up)"
    assert waits == [1.0, 2.0, 4.0]
    assert report.describe() == "slack: failed after 4 attempts: HTTP 503 (gave up)"


def test_the_service_wait_wins_over_backoff() -> None:
    limited = Scripted("telegram", [_down("telegram", retry_after_s=12.0)])
    waits = Waits()

    deliver(NOTE, [limited], retries=2, backoff=1.0, sleep=waits)

    assert waits == [12.0]


def test_backoff_is_capped() -> None:
    assert backoff_s(10, 1.0, _down("x")) == 60.0
    assert backoff_s(1, 0.0, _down("x")) == 0.0


def test_a_refusal_is_not_retried() -> None:
    refused = Scripted("email", [NotifyRejectedError("email", "535 login refused")])
    waits = Waits()

    report = deliver(NOTE, [refused], retries=3, backoff=1.0, sleep=waits)

    assert report.result("email").attempts == 1 and not report.ok
    assert report.result("email").error == "535 login refused"
    assert waits == []


def test_one_failure_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    # All three run at once: the barrier only opens when every channel is sending.
    barrier = threading.Barrier(3)
    broken = Scripted("email", [RuntimeError("bug")], barrier=barrier)
    refused = Scripted("telegram", [NotifyRejectedError("telegram", "chat not found")], barrier)
    fine = Scripted("slack", [SendResult(("1 attachment(s) not sent",))], barrier)

    report = deliver(NOTE, [broken, refused, fine], retries=2, backoff=0.0, sleep=Waits())

    assert [r.ok for r in report.results] == [False, False, True]
    assert report.result("email").error == "unexpected error (RuntimeError)"
    assert report.result("slack").warnings == ("1 attachment(s) not sent",)
    assert [r.channel for r in report.failed] == ["email", "telegram"]
    assert "email failed unexpectedly" in caplog.text


def test_no_channel_is_not_ok() -> None:
    report = deliver(NOTE, [], retries=3, backoff=1.0)
    assert not report.ok and report.describe() == "no channel to send to"


@pytest.mark.parametrize("retries, backoff", [(0, 1.0), (3, -1.0)])
def test_bad_retry_settings(retries: int, backoff: float) -> None:
    with pytest.raises(ValueError):
        deliver(NOTE, [Scripted("email")], retries=retries, backoff=backoff)


def test_missing_result_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        deliver(NOTE, [Scripted("email")], retries=1, backoff=0.0).result("slack")


def test_errors_name_the_channel() -> None:
    error: NotifyError = NotifyRejectedError("slack", "invalid_auth")
    assert str(error) == "slack: invalid_auth" and error.channel == "slack"


def test_scripted_notifier_meets_the_protocol() -> None:
    assert isinstance(Scripted("x"), Notifier)
    assert isinstance(TelegramNotifier("1:a", "1"), Notifier)


# ------------------------------------------------------------------ notifiers_from_settings

EVERYTHING: dict[str, Any] = {
    "smtp_host": "smtp.example.com",
    "email_from": "pulso@example.com",
    "email_to": "a@example.com,b@example.com",
    "telegram_bot_token": "1234:token-de-teste",
    "telegram_chat_id": "-100123",
    "slack_webhook_url": "https://hooks.slack.com/services/T/B/secret",
}


def test_nothing_configured_means_no_notifier(settings_factory: Any) -> None:
    assert notifiers_from_settings(settings_factory()) == []


def test_every_configured_channel_in_order(settings_factory: Any) -> None:
    notifiers = notifiers_from_settings(settings_factory(**EVERYTHING))

    assert [type(n) for n in notifiers] == [EmailNotifier, TelegramNotifier, SlackNotifier]
    assert [n.name for n in notifiers] == ["email", "telegram", "slack"]


def test_only_the_channels_asked_for(settings_factory: Any) -> None:
    settings = settings_factory(**EVERYTHING)
    notifiers = notifiers_from_settings(settings, [" Slack", "telegram", "slack"])
    assert [n.name for n in notifiers] == ["slack", "telegram"]


def test_asking_for_an_unconfigured_channel_names_the_settings(settings_factory: Any) -> None:
    settings = settings_factory(telegram_chat_id="-100123")

    with pytest.raises(ChannelNotConfiguredError) as raised:
        notifiers_from_settings(settings, ["telegram"])
    assert raised.value.missing == ("PULSO_TELEGRAM_BOT_TOKEN",)
    assert isinstance(raised.value, ConfigError)
    assert str(raised.value) == ("PULSO_TELEGRAM_BOT_TOKEN: not set; the telegram channel needs it")

    with pytest.raises(ChannelNotConfiguredError, match="PULSO_SMTP_HOST, PULSO_EMAIL_FROM"):
        notifiers_from_settings(settings, ["email"])
    with pytest.raises(ChannelNotConfiguredError, match="PULSO_SLACK_WEBHOOK_URL \\(or"):
        notifiers_from_settings(settings, ["slack"])


def test_unknown_channel(settings_factory: Any) -> None:
    with pytest.raises(ConfigError, match="unknown channel 'sms'"):
        notifiers_from_settings(settings_factory(**EVERYTHING), ["sms"])


def test_smtp_user_needs_a_password_and_tls(settings_factory: Any) -> None:
    with pytest.raises(ChannelNotConfiguredError, match="PULSO_SMTP_PASSWORD"):
        notifiers_from_settings(settings_factory(**EVERYTHING, smtp_user="bot"), ["email"])

    clear = settings_factory(**EVERYTHING, smtp_user="bot", smtp_password="x",
                             smtp_security="none")  # fmt: skip
    with pytest.raises(ConfigError, match="PULSO_SMTP_SECURITY"):
        notifiers_from_settings(clear, ["email"])


def test_slack_bot_token_needs_a_channel(settings_factory: Any) -> None:
    settings = settings_factory(slack_bot_token="xoxb-1-2-abc")
    assert configured_channels(settings) == []
    with pytest.raises(ChannelNotConfiguredError, match="PULSO_SLACK_CHANNEL"):
        notifiers_from_settings(settings, ["slack"])
    with_channel = settings_factory(slack_bot_token="xoxb-1-2-abc", slack_channel="C0123")
    assert configured_channels(with_channel) == ["slack"]


def test_half_configured_channel_is_skipped_with_a_warning(
    settings_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = settings_factory(telegram_bot_token="1234:segredo-do-bot")

    assert notifiers_from_settings(settings) == []
    assert "telegram is not sent to: PULSO_TELEGRAM_CHAT_ID not set" in caplog.text
    assert "segredo-do-bot" not in caplog.text
