"""The live traffic generator: deterministic per seed on a simulated clock, every anomaly kind
present and labelled, paced by the clock it is given, bad options refused."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.cli import generate
from pulso.domain.events import decode_event, encode_event
from pulso.domain.fraud import ANOMALY_KINDS, IMPOSSIBLE_TRAVEL, NIGHT_HIGH_VALUE
from pulso.domain.payments import ChargeCreated
from pulso.domain.rules import check_document
from pulso.domain.validators import complete_cpf
from pulso.sources import GeneratorConfigError
from pulso.sources.payments_generator import LOCAL_TZ
from pulso.sources.stream_generator import (
    Pacer,
    SimulatedClock,
    StreamConfig,
    fast_cpf,
    generate_stream,
    parse_duration_s,
    parse_rate,
    parse_share,
)

MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 06:00 in São Paulo


def day_of_traffic(seed: int = 5, anomaly_rate: float = 0.05) -> list[bytes]:
    config = StreamConfig(
        rate=8_000 / 86_400,
        duration_s=None,
        payments=8_000,
        anomaly_rate=anomaly_rate,
        n_stores=40,
        seed=seed,
    )
    return [encode_event(e) for e in generate_stream(config, SimulatedClock(MORNING))]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert day_of_traffic(5) == day_of_traffic(5)
    assert day_of_traffic(5) != day_of_traffic(6)


def test_every_anomaly_kind_is_present_and_labelled() -> None:
    charges = [
        e.data for e in map(decode_event, day_of_traffic()) if isinstance(e.data, ChargeCreated)
    ]
    labels = Counter(c.label for c in charges)
    assert set(labels) == {None, *ANOMALY_KINDS}
    anomalous = sum(n for label, n in labels.items() if label is not None)
    assert 0.03 < anomalous / len(charges) < 0.07  # asked for 5%
    assert all(n >= 10 for label, n in labels.items())
    night = [c for c in charges if c.label == NIGHT_HIGH_VALUE]
    assert all(c.created_at.astimezone(LOCAL_TZ).hour < 6 for c in night)  # night or just after
    for c in charges:  # every payer document passes the domain's own check
        assert c.payer_document is not None
        check_document(c.payer_document)


def test_event_times_follow_the_clock_and_terminals_follow_their_charge() -> None:
    config = StreamConfig(rate=100.0, duration_s=10.0, anomaly_rate=0.0, n_stores=5)
    events = list(generate_stream(config, SimulatedClock(MORNING)))
    created = [e for e in events if isinstance(e.data, ChargeCreated)]
    assert len(created) == 1_000
    assert created[0].occurred_at == MORNING
    assert created[-1].occurred_at == datetime(2026, 3, 2, 9, 0, 9, 990_000, tzinfo=UTC)
    assert len(events) == 2_000  # every charge ends once
    at = {e.key: e.occurred_at for e in created}
    assert all(e.occurred_at >= at[e.key] for e in events)


def test_impossible_travel_sets_the_scene_without_a_label() -> None:
    charges = [
        e.data for e in map(decode_event, day_of_traffic()) if isinstance(e.data, ChargeCreated)
    ]
    travellers = {c.payer_document for c in charges if c.label == IMPOSSIBLE_TRAVEL}
    firsts = [c for c in charges if c.payer_document in travellers and c.label is None]
    assert firsts  # the first charge of each trip looks ordinary


class FakeClock:
    """Records every sleep; time moves only when slept or told to."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_pacer_sleeps_until_charges_fall_due() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, clock)
    assert pacer.next_times(1_000) == [1_000.0]  # the first is due at once
    times = pacer.next_times(1_000)
    assert clock.sleeps == [pytest.approx(0.05)]  # woke when 5 more (50 ms) were due
    assert times == [pytest.approx(1_000.0 + i / 100) for i in range(1, 6)]
    assert pacer.issued == 6 and pacer.lag_s() == 0.0


def test_pacer_catches_up_in_bigger_chunks_when_behind() -> None:
    clock = FakeClock()
    pacer = Pacer(1_000.0, clock, chunk_max=300)
    clock.t += 1.0  # the consumer stalled for a second
    assert pacer.lag_s() == pytest.approx(1.0)
    assert len(pacer.next_times(10_000)) == 300
    assert len(pacer.next_times(10_000)) == 300
    assert clock.sleeps == []
    assert len(pacer.next_times(50)) == 50  # never more than asked


def test_unpaced_stamps_the_current_time() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock)
    assert pacer.next_times(3) == [1_000.0] * 3
    assert clock.sleeps == []


def test_fast_cpf_matches_the_validator() -> None:
    for n in (1, 123_456_789, 999_999_998, 100_000_000):
        assert fast_cpf(n) == complete_cpf(f"{n:09d}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5000/s", 5000.0), ("5k/s", 5000.0), ("300/min", 5.0), ("12", 12.0), ("max", None)],
)
def test_parse_rate(text: str, expected: float | None) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["fast", "5000/d", "-5/s", "0/s", "nan", "/s", "9e9/s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(GeneratorConfigError, match="rate"):
        parse_rate(text)


def test_parse_duration_and_share() -> None:
    assert [parse_duration_s(t) for t in ("60s", "90", "5m", "5min", "1h")] == [
        60.0,
        90.0,
        300.0,
        300.0,
        3600.0,
    ]
    assert parse_share("0.5%") == pytest.approx(0.005) and parse_share("0.005") == 0.005
    for bad in ("1 week", "0s", "-3m"):
        with pytest.raises(GeneratorConfigError, match="duration"):
            parse_duration_s(bad)
    with pytest.raises(GeneratorConfigError, match="anomaly-rate"):
        parse_share("150%")


def test_config_is_checked() -> None:
    with pytest.raises(GeneratorConfigError, match="anomaly-rate"):
        StreamConfig(anomaly_rate=0.9)
    with pytest.raises(GeneratorConfigError, match="duration"):
        StreamConfig(duration_s=None, payments=None)


# ---------------------------------------------------------------------------- the CLI


def _live(*args: str) -> Any:
    return CliRunner().invoke(generate.app, ["payments", *args])


def test_cli_live_mode_on_a_simulated_clock_writes_labelled_events(tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    args = [
        "--rate",
        "50/s",
        "--duration",
        "10m",
        "--anomaly-rate",
        "5%",
        "--stores",
        "20",
        "--clock-start",
        "2026-03-02T12:00",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    result = _live(*args)
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    charges = [e.data for e in map(decode_event, lines) if isinstance(e.data, ChargeCreated)]
    assert len(charges) == 30_000
    assert "30,000" in result.output and "asked 50/s; achieved 50 payments/s" in result.output
    labels = Counter(c.label for c in charges if c.label)
    text = " ".join(result.output.replace("│", " ").split())  # the table wraps its cells
    for kind, n in labels.items():
        assert f"{kind} {n:,} (" in text
    first = out.read_bytes()
    assert _live(*args).exit_code == 0 and out.read_bytes() == first  # same seed, same bytes


def test_cli_live_summary_explains_a_short_run_s_lower_anomaly_share(tmp_path: Path) -> None:
    """Anomalies unfold over minutes: a one-minute run carries fewer labelled payments than
    asked and the summary says why; an hour-long run comes close and needs no note."""
    common = ["--anomaly-rate", "5%", "--clock-start", "2026-03-02T12:00", "--seed", "3"]
    out = str(tmp_path / "live.jsonl")
    short = _live("--rate", "200/s", "--duration", "60s", *common, "--out", out)
    assert short.exit_code == 0, short.output
    text = " ".join(short.output.replace("│", " ").split())
    assert "asked 5.00%" in text and "incidents started" in text
    assert "were cut short, so a run of minutes carries fewer labelled payments" in text

    long = _live("--rate", "20/s", "--duration", "1h", *common, "--out", out)
    assert long.exit_code == 0, long.output
    text = " ".join(long.output.replace("│", " ").split())
    assert "asked 5.00%" in text and "cut short" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "fast"], "--rate: expected e.g. 5000/s"),
        (["--rate", "0/s"], "--rate"),
        (["--duration", "forever"], "--duration"),
        (["--anomaly-rate", "70%"], "--anomaly-rate"),
        (["--rate", "max", "--clock-start", "2026-03-02T12:00"], "needs a numeric --rate"),
        (["--rate", "10/s", "--days", "2"], "--days belong to the day-based mode"),
        (["--rate", "10/s", "--stores", "0"], "--stores"),
    ],
)
def test_cli_bad_live_options_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = _live(*args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_payers_never_meet_by_chance() -> None:
    """A payer is new, or a regular of one store, or part of an anomaly: random draws would
    repeat payers across stores and invent trips nobody made."""
    charges = [
        e.data
        for e in map(decode_event, day_of_traffic(anomaly_rate=0.02))
        if isinstance(e.data, ChargeCreated)
    ]
    in_anomalies = {c.payer_document for c in charges if c.label}
    stores_of: dict[str | None, set[str]] = {}
    for c in charges:
        if c.payer_document not in in_anomalies:
            stores_of.setdefault(c.payer_document, set()).add(c.store_id)
    assert all(len(stores) == 1 for stores in stores_of.values())
