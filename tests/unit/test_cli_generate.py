"""``pulso generate payments``: writes what the generator makes, to a file or the bus, and
refuses bad options with a clear message."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.cli import generate
from pulso.domain.events import decode_event
from pulso.sources.payments_generator import (
    LOCAL_TZ,
    PaymentsConfig,
    generate_payment_records,
)

ARGS = ["payments", "--days", "1", "--stores", "3", "--cities", "2", "--seed", "5"]
CONFIG = PaymentsConfig(start=date(2024, 5, 6), days=1, n_stores=3, n_cities=2, seed=5)


def _run(*args: str) -> Any:
    return CliRunner().invoke(generate.app, [*ARGS, *args])


def test_out_writes_one_record_per_line(tmp_path: Path) -> None:
    out = tmp_path / "payments.jsonl"
    result = _run("--start", "2024-05-06", "--malformed-rate", "0.02", "--out", str(out))
    assert result.exit_code == 0, result.output
    config = PaymentsConfig(
        start=date(2024, 5, 6), days=1, n_stores=3, n_cities=2, seed=5, malformed_rate=0.02
    )
    records = generate_payment_records(config)
    expected = [value for _, value in records]
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and lines[:-1] == expected
    stats = records.stats
    assert stats.malformed > 0
    assert f"{stats.charges:,}" in result.output
    assert f"{stats.malformed:,}" in result.output
    assert "2024-05-06" in result.output


def test_same_seed_writes_the_same_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _run("--start", "2024-05-06", "--out", str(first)).exit_code == 0
    assert _run("--start", "2024-05-06", "--out", str(second)).exit_code == 0
    assert first.read_bytes() == second.read_bytes()


def test_end_sets_the_last_day_of_the_period(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = _run("--days", "2", "--end", "2024-05-07", "--out", str(out))
    assert result.exit_code == 0, result.output
    created_days = {
        decode_event(line).occurred_at.astimezone(LOCAL_TZ).date()
        for line in out.read_bytes().splitlines()
        if b'"pix.charge.created"' in line
    }
    assert created_days == {date(2024, 5, 6), date(2024, 5, 7)}


def test_to_bus_publishes_every_record_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pulso.bus

    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    batch_sizes: list[int] = []
    real_open_bus = pulso.bus.open_bus

    def recording_open_bus(settings: Any) -> Any:
        bus = real_open_bus(settings)
        publish = bus.publish

        def record_publish(topic: str, records: Any) -> None:
            assert topic == "payments"
            batch_sizes.append(len(records))
            publish(topic, records)

        bus.publish = record_publish  # type: ignore[method-assign]
        return bus

    monkeypatch.setattr(pulso.bus, "open_bus", recording_open_bus)
    monkeypatch.setattr(generate, "BATCH_RECORDS", 1_000)
    result = _run("--start", "2024-05-06", "--to-bus")
    assert result.exit_code == 0, result.output
    expected = list(generate_payment_records(CONFIG))
    assert sum(batch_sizes) == len(expected)
    assert batch_sizes[:-1] == [1_000] * (len(batch_sizes) - 1) and batch_sizes[-1] <= 1_000
    assert "topic payments" in result.output
    assert sorted(_read_topic(real_open_bus, "payments")) == sorted(expected)


def _read_topic(open_bus: Any, topic: str) -> list[tuple[bytes | None, bytes]]:
    from pulso.config import load_settings

    bus = open_bus(load_settings())
    consumer = bus.consumer("check", [topic])
    read: list[tuple[bytes | None, bytes]] = []
    try:
        while batch := consumer.poll_batch(50_000, 0.2):
            read.extend((m.key, m.value) for m in batch)
    finally:
        consumer.close()
        bus.close()
    return read


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--out FILE.jsonl or --to-bus"),
        (["--out", "x.jsonl", "--to-bus"], "--out FILE.jsonl or --to-bus"),
        (["--out", "x.jsonl", "--days", "0"], "--days"),
        (["--out", "x.jsonl", "--days", "999999999"], "--days"),
        (["--out", "x.jsonl", "--start", "9999-12-31"], "--start"),
        (["--out", "x.jsonl", "--stores", "0"], "--stores"),
        (["--out", "x.jsonl", "--cities", "99"], "--cities"),
        (["--out", "x.jsonl", "--malformed-rate", "1.5"], "--malformed-rate"),
        (["--out", "x.jsonl", "--start", "2024-13-01"], "--start"),
        (["--out", "x.jsonl", "--start", "2024-05-01", "--end", "2024-05-07"], "not both"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert not Path("x.jsonl").exists()  # nothing half-written


def test_unwritable_out_exits_1_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "p.jsonl"
    result = _run("--out", str(target))
    assert result.exit_code == 1
    assert "cannot write" in result.output and "missing" in result.output
