"""The alert dispatcher over a real DuckDB store and the local bus, with hand-made alert rows
and a clock the test moves: bursts become one alert with a count, a channel that is down
loses nothing and delays no other, the alerts topic gets one event per notice, and no CPF
leaves the process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from alert_rows import (
    CPF,
    CPF_DIGITS,
    T0,
    Clock,
    Recorder,
    alert,
    burst,
    insert_alerts,
    register_stores,
)

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.alerts.query import list_alerts
from pulso.alerts.service import alert_notifiers
from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.alerts import Alert
from pulso.domain.events import Topic, decode_event
from pulso.errors import ConfigError
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS

WINDOW_S = 300.0


@dataclass
class Rig:
    store: Store
    bus: Bus
    clock: Clock
    settings: Settings

    def dispatcher(self, *notifiers: Recorder, **config: Any) -> AlertDispatcher:
        config.setdefault("throttle_s", WINDOW_S)
        return AlertDispatcher(
            self.store, self.bus, list(notifiers), DispatchConfig(**config), clock=self.clock
        )

    def events(self, group: str = "test") -> list[Alert]:
        consumer = self.bus.consumer(group, [Topic.ALERTS])
        try:
            messages = consumer.poll_batch(1000, 0.5)
        finally:
            consumer.close()
        out = []
        for m in messages:
            event = decode_event(m.value)
            assert event.type == "alert.raised" and isinstance(event.data, Alert)
            out.append(event.data)
        return out


@pytest.fixture
def rig(settings_factory: Callable[..., Settings]) -> Iterator[Rig]:
    settings = settings_factory()
    store, bus = open_store(settings), open_bus(settings)
    yield Rig(store, bus, Clock(T0 + timedelta(seconds=1)), settings)
    bus.close()
    store.close()


def test_a_burst_of_50_is_one_delivery_with_count_50(rig: Rig) -> None:
    insert_alerts(rig.store, burst(50, step_s=2))
    email = Recorder()
    rig.clock.now = T0 + timedelta(seconds=100)
    report = rig.dispatcher(email).dispatch_once()
    assert (report.new_alerts, report.opened, report.sent, report.published) == (50, 1, 1, 1)
    assert len(email.sent) == 1
    note = email.sent[0]
    assert "50×" in note.subject and "50 ocorrências" in note.text
    # the window closes with nothing new: no summary, nothing more
    rig.clock.advance(WINDOW_S * 2)
    assert rig.dispatcher(email).dispatch_once().idle
    assert len(email.sent) == 1
    [listed] = list_alerts(rig.store)
    assert (listed.count, listed.status, listed.alert_id) == (50, "delivered", "b0000")
    [event] = rig.events()
    assert (event.count, event.alert_id, event.kind) == (50, "b0000", "fraud.card_testing")


def test_a_burst_over_several_passes_is_one_alert_and_one_summary(rig: Rig) -> None:
    email = Recorder()
    dispatcher = rig.dispatcher(email)
    rows = burst(50, step_s=3)
    insert_alerts(rig.store, rows[:1])
    assert dispatcher.dispatch_once().sent == 1  # the first one goes out at once
    for start in range(1, 50, 7):  # the rest trickle in within the window
        rig.clock.advance(20)
        insert_alerts(rig.store, rows[start : start + 7])
        report = dispatcher.dispatch_once()
        assert (report.opened, report.sent, report.published) == (0, 0, 0)
    assert len(email.sent) == 1 and "1 ocorrência em" in email.sent[0].text
    [listed] = list_alerts(rig.store)
    assert (listed.count, listed.status) == (50, "pending")  # the count grew, summary due
    rig.clock.now = T0 + timedelta(seconds=WINDOW_S)
    assert dispatcher.dispatch_once().sent == 1
    summary = email.sent[1]
    assert "Resumo: mais 49 ocorrências" in summary.text and "50 no total" in summary.text
    rig.clock.advance(3600)
    assert dispatcher.dispatch_once().idle and len(email.sent) == 2
    assert [e.count for e in rig.events()] == [1, 50]
    [listed] = list_alerts(rig.store)
    assert (listed.count, listed.status) == (50, "delivered")


def test_kind_subject_and_window_separate_alerts(rig: Rig) -> None:
    insert_alerts(
        rig.store,
        [
            alert("a1"),
            alert("a2", at=T0 + timedelta(seconds=10)),  # same kind and subject: folded
            alert("a3", subject="LJ-0002"),
            alert("a4", kind="fraud.velocity"),
            alert("a5", at=T0 + timedelta(seconds=WINDOW_S)),  # the window has closed
        ],
    )
    email = Recorder()
    report = rig.dispatcher(email).dispatch_once()
    assert (report.new_alerts, report.opened, report.sent) == (5, 4, 4)
    counts = {(v.alert_id, v.count) for v in list_alerts(rig.store)}
    assert counts == {("a1", 2), ("a3", 1), ("a4", 1), ("a5", 1)}


def test_a_throttle_of_zero_sends_every_alert(rig: Rig) -> None:
    insert_alerts(rig.store, burst(5, step_s=0))
    email = Recorder()
    assert rig.dispatcher(email, throttle_s=0).dispatch_once().sent == 5


def test_alerts_below_the_minimum_severity_are_kept_not_sent(rig: Rig) -> None:
    email = Recorder()
    dispatcher = rig.dispatcher(email, min_severity="critical")
    insert_alerts(rig.store, [alert("w1", severity="warning")])
    assert dispatcher.dispatch_once().sent == 0 and not email.sent
    [listed] = list_alerts(rig.store)
    assert listed.status == "not_sent"
    # the same kind and subject turns critical within the window: now it is sent, count 2
    insert_alerts(rig.store, [alert("w2", severity="critical", at=T0 + timedelta(seconds=5))])
    assert dispatcher.dispatch_once().sent == 1
    assert "(crítico)" in email.sent[0].subject and "2×" in email.sent[0].subject


def test_a_channel_that_is_down_loses_nothing_and_blocks_no_other(rig: Rig) -> None:
    email, telegram = Recorder("email", down=True), Recorder("telegram")
    dispatcher = rig.dispatcher(email, telegram, retry_base_s=10, retry_max_s=60)
    insert_alerts(rig.store, [alert("x1"), alert("x2", subject="LJ-0002")])
    report = dispatcher.dispatch_once()
    assert (report.sent, report.retrying) == (2, 2)  # telegram got both
    assert len(telegram.sent) == 2
    assert email.attempts == 1  # tried once for the first alert, skipped for the second
    listed = {v.alert_id: v for v in list_alerts(rig.store)}
    failing = next(d for d in listed["x1"].deliveries if d.channel == "email")
    assert failing.status == "pending" and failing.last_error == "connection refused (gave up)"
    assert failing.next_attempt_at == rig.clock.now + timedelta(seconds=10)
    assert listed["x1"].status == "pending"
    skipped = next(d for d in listed["x2"].deliveries if d.channel == "email")
    assert (skipped.attempts, skipped.next_attempt_at) == (0, failing.next_attempt_at)
    rig.clock.advance(5)  # before the retry time: nothing
    assert dispatcher.dispatch_once().idle
    rig.clock.advance(5)  # still down: the wait doubles
    assert dispatcher.dispatch_once().retrying == 2
    assert email.attempts == 2
    email.down = False
    rig.clock.advance(19)
    assert dispatcher.dispatch_once().sent == 0
    rig.clock.advance(1)
    assert dispatcher.dispatch_once().sent == 2
    assert len(email.sent) == 2 and len(telegram.sent) == 2
    rig.clock.advance(3600)
    assert dispatcher.dispatch_once().idle
    assert all(v.status == "delivered" for v in list_alerts(rig.store))
    assert len(email.sent) == 2  # delivered once each


def test_a_refusal_waits_for_retry_failed(rig: Rig) -> None:
    slack = Recorder("slack", refuse=True)
    dispatcher = rig.dispatcher(slack)
    insert_alerts(rig.store, [alert("r1")])
    assert dispatcher.dispatch_once().failed == 1
    [listed] = list_alerts(rig.store)
    assert listed.status == "failed" and "401" in (listed.deliveries[0].last_error or "")
    rig.clock.advance(3600)
    assert dispatcher.dispatch_once().idle  # refused is final...
    slack.refuse = False
    assert dispatcher.retry_failed() == 1  # ...until someone fixed the token
    assert dispatcher.dispatch_once().sent == 1 and len(slack.sent) == 1


def test_a_second_dispatcher_repeats_nothing(rig: Rig) -> None:
    insert_alerts(rig.store, burst(10))
    email = Recorder()
    rig.dispatcher(email).dispatch_once()
    again = rig.dispatcher(email).dispatch_once()  # e.g. after a restart
    assert again.idle and len(email.sent) == 1
    assert len(rig.events()) == 1


def test_the_text_is_brazilian_and_shows_no_cpf(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    register_stores(rig.store, [("LJ-0001", "Padaria Central", "Recife", "PE")])
    payment: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
    payment.update(
        charge_id="ch-big",
        store_id="LJ-0001",
        city="Recife",
        uf="PE",
        amount_cents=123_456,
        status="pending",
        status_rank=0,
        created_at=T0,
        updated_at=T0,
    )
    with rig.store.transaction() as tx:
        tx.upsert(PAYMENTS, {k: [v] for k, v in payment.items()})
    insert_alerts(
        rig.store,
        [
            alert(
                "t1",
                kind="fraud.amount_spike",
                message=f"Valor 40× a média da loja; pagador CPF {CPF} ({CPF_DIGITS})",
                charge_id="ch-big",
            ),
            alert("t2", kind="fraud.velocity", subject=CPF_DIGITS, message="7 lojas em 3 min"),
        ],
    )
    email = Recorder()
    caplog.set_level(logging.DEBUG)
    rig.dispatcher(email).dispatch_once()
    first = next(n for n in email.sent if "Valor muito acima" in n.subject)
    assert "loja LJ-0001 (Padaria Central, Recife/PE)" in first.subject
    assert "valor R$ 1.234,56" in first.text and "Recife/PE" in first.text
    assert "risco 0,97" in first.text
    assert "24/11/2026 10:00 (horário de Brasília)" in first.text  # 13:00 UTC
    everything = [n.subject + n.text for n in email.sent]
    everything += [a.message + a.subject + str(a.details) for a in rig.events()]
    everything += [v.message + v.subject + str(v.details) for v in list_alerts(rig.store)]
    everything.append(caplog.text)
    for text in everything:
        assert CPF not in text and CPF_DIGITS not in text, text


def test_a_bus_that_is_down_does_not_stop_delivery(rig: Rig) -> None:
    class DownBus:
        """The real bus, except that publishing fails as a broker that cannot be reached."""

        def publish(self, topic: str, records: Any) -> None:
            raise ConnectionError("broker unreachable")

        def consumer(self, group: str, topics: Any) -> Any:
            return rig.bus.consumer(group, topics)

        def close(self) -> None:
            pass

    insert_alerts(rig.store, [alert("d1")])
    email = Recorder()
    dispatcher = AlertDispatcher(
        rig.store, DownBus(), [email], DispatchConfig(throttle_s=WINDOW_S), clock=rig.clock
    )
    report = dispatcher.dispatch_once()
    assert report.sent == 1 and report.errors == ("bus: ConnectionError",)
    # once the bus is back the notice is published
    back = rig.dispatcher(email).dispatch_once()
    assert back.published == 1 and back.sent == 0


def test_settings_choose_the_channels(settings_factory: Callable[..., Settings]) -> None:
    assert alert_notifiers(settings_factory(alert_channels="none")) == []
    assert alert_notifiers(settings_factory()) == []  # nothing configured
    with pytest.raises(ConfigError, match="PULSO_TELEGRAM_BOT_TOKEN"):
        alert_notifiers(settings_factory(alert_channels="telegram"))
    with pytest.raises(ConfigError, match="PULSO_ALERT_CHANNELS"):
        settings_factory(alert_channels="email,pombo")
    with pytest.raises(ConfigError, match="PULSO_ALERT_MIN_SEVERITY"):
        settings_factory(alert_min_severity="urgent")
    with pytest.raises(ValueError):
        DispatchConfig(retry_base_s=10, retry_max_s=5)
    config = DispatchConfig.from_settings(settings_factory(alert_throttle_s=60))
    assert config.throttle_s == 60 and config.min_severity == "warning"


def test_rows_older_than_the_lookback_are_listed_not_sent(rig: Rig) -> None:
    insert_alerts(rig.store, [alert("old", at=T0 - timedelta(days=8)), alert("fresh")])
    email = Recorder()
    report = rig.dispatcher(email).dispatch_once()
    assert (report.new_alerts, report.sent) == (1, 1)
    statuses = {v.alert_id: v.status for v in list_alerts(rig.store)}
    assert statuses == {"old": "new", "fresh": "delivered"}
    longer = rig.dispatcher(email, lookback_s=9 * 86_400).dispatch_once()
    assert longer.new_alerts == 1


def test_odd_hand_made_rows_are_delivered_not_stuck(rig: Rig) -> None:
    rows = [
        alert("o1", kind="custom\nkind", severity="urgent", message="linha 1\nlinha 2"),
        {**alert("o2", subject="LJ-0005"), "details": None},
        {**alert("o3", subject="LJ-0006"), "details": {"nested": {"a": [1, 2]}, "n": 3}},
    ]
    insert_alerts(rig.store, rows)
    email = Recorder()
    report = rig.dispatcher(email).dispatch_once()
    assert (report.new_alerts, report.sent, report.published) == (3, 3, 3)
    assert all("\n" not in n.subject for n in email.sent)
    events = {e.alert_id: e for e in rig.events()}
    assert events["o1"].severity == "warning"  # an unknown word counts as a warning
    assert events["o3"].details["nested"] == '{"a":[1,2]}'
