"""The alert dispatcher through the real notifiers, built from the settings: e-mail to a real
SMTP server on loopback (aiosmtpd), Telegram and Slack to the fakes that speak their wire
formats. Every channel down, then back: nothing lost, each delivered once. And the alerts
topic on librdkafka's mock cluster."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from alert_rows import CPF, T0, Clock, alert, burst, insert_alerts
from test_notify_email import Handler, Received, _free_port
from test_notify_slack import FakeSlack
from test_notify_telegram import CHAT_ID, TOKEN, FakeTelegram

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.alerts.query import list_alerts
from pulso.alerts.service import alert_notifiers
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.domain.alerts import Alert
from pulso.domain.events import Topic, decode_event
from pulso.store import open_store

WAIT_S = 30.0  # a guard against hanging, not a speed assertion


@dataclass
class Channels:
    smtp_port: int
    received: Received
    telegram: FakeTelegram
    slack: FakeSlack
    controllers: list[Controller]

    def start_smtp(self) -> None:
        controller = Controller(Handler(self.received), hostname="127.0.0.1", port=self.smtp_port)
        controller.start()
        self.controllers.append(controller)

    def settings(self, settings_factory: Callable[..., Settings], **extra: Any) -> Settings:
        return settings_factory(
            smtp_host="127.0.0.1",
            smtp_port=self.smtp_port,
            smtp_security="none",
            email_from="alertas@pulso.example.com",
            email_to="seguranca@loja.example.com",
            telegram_bot_token=TOKEN,
            telegram_chat_id=CHAT_ID,
            telegram_api_url=self.telegram.url,
            slack_webhook_url=self.slack.webhook_url,
            alert_throttle_s=300,
            **extra,
        )


@pytest.fixture
def channels() -> Iterator[Channels]:
    with FakeTelegram() as telegram, FakeSlack() as slack:
        rig = Channels(_free_port(), Received(), telegram, slack, [])
        yield rig
        for controller in rig.controllers:
            controller.stop()


def test_every_channel_down_then_back_delivers_once(
    channels: Channels, settings_factory: Callable[..., Settings]
) -> None:
    settings = channels.settings(settings_factory)
    store = open_store(settings)
    clock = Clock(T0 + timedelta(seconds=120))
    try:
        notifiers = alert_notifiers(settings)
        assert [n.name for n in notifiers] == ["email", "telegram", "slack"]
        dispatcher = AlertDispatcher(
            store, None, notifiers, DispatchConfig.from_settings(settings), clock=clock
        )
        insert_alerts(store, burst(50, message=f"teste de cartão; CPF {CPF}"))
        # SMTP: nothing listens yet; Telegram and Slack answer 5xx once
        channels.telegram.fail_next(502, "Bad Gateway")
        channels.slack.fail_next("/services/", 503, "service_unavailable")
        report = dispatcher.dispatch_once()
        assert (report.new_alerts, report.opened, report.sent, report.retrying) == (50, 1, 0, 3)
        [listed] = list_alerts(store)
        assert listed.status == "pending" and listed.count == 50
        errors = {d.channel: d.last_error for d in listed.deliveries}
        assert set(errors) == {"email", "telegram", "slack"} and all(errors.values())

        channels.start_smtp()  # the channels are back
        clock.advance(1)
        report = dispatcher.dispatch_once()
        assert (report.sent, report.retrying) == (3, 0)
        clock.advance(3600)
        assert dispatcher.dispatch_once().idle
    finally:
        store.close()
    [mail] = channels.received.messages()
    assert "50×" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None and "50 ocorrências" in body.get_content()
    assert channels.telegram.methods() == ["sendMessage"]
    text = channels.telegram.calls[0].fields["text"]
    assert "50 ocorrências" in text and CPF not in text
    [posted] = channels.slack.webhook_messages
    assert "50 ocorrências" in str(posted) and CPF not in str(posted)
    assert CPF not in mail.as_string()


def test_one_channel_down_does_not_hold_the_others(
    channels: Channels, settings_factory: Callable[..., Settings]
) -> None:
    settings = channels.settings(settings_factory)
    store = open_store(settings)
    clock = Clock(T0 + timedelta(seconds=5))
    try:
        dispatcher = AlertDispatcher(
            store, None, alert_notifiers(settings), DispatchConfig(), clock=clock
        )
        insert_alerts(store, [alert("k1"), alert("k2", subject="LJ-0009")])
        report = dispatcher.dispatch_once()  # e-mail is down: the others get both alerts
        assert (report.sent, report.retrying) == (4, 2)
        assert channels.telegram.methods() == ["sendMessage", "sendMessage"]
        assert len(channels.slack.webhook_messages) == 2
        channels.start_smtp()
        clock.advance(DispatchConfig().retry_base_s)
        assert dispatcher.dispatch_once().sent == 2
        assert len(channels.received.messages()) == 2
        assert dispatcher.dispatch_once().idle
    finally:
        store.close()


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_the_alerts_topic_on_kafka_gets_one_event_per_notice(
    kafka_cluster: str, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(bus_url=f"kafka://{kafka_cluster}", kafka_partitions=2)
    store, bus = open_store(settings), open_bus(settings)
    clock = Clock(T0 + timedelta(seconds=200))
    try:
        insert_alerts(store, [*burst(30), alert("v1", kind="fraud.velocity")])
        dispatcher = AlertDispatcher(store, bus, [], DispatchConfig(), clock=clock)
        assert dispatcher.dispatch_once().published == 2
        assert dispatcher.dispatch_once().published == 0
        consumer = bus.consumer("alert-readers", [Topic.ALERTS])
        got: list[Alert] = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < 2 and time.monotonic() < deadline:
            for message in consumer.poll_batch(100, 1.0):
                event = decode_event(message.value)
                assert event.type == "alert.raised" and isinstance(event.data, Alert)
                got.append(event.data)
        consumer.close()
    finally:
        bus.close()
        store.close()
    assert sorted((a.kind, a.count) for a in got) == [
        ("fraud.card_testing", 30),
        ("fraud.velocity", 1),
    ]
    assert all("ocorrência" in a.message for a in got)
