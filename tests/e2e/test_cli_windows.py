"""``pulso windows show|late`` over a store the real pipeline filled."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pulso.bus import open_bus
from pulso.config import Settings, load_settings
from pulso.domain.events import Topic, encode_event
from pulso.pipeline.factory import build_runner
from pulso.store import open_store
from tests.unit.fraud_helpers import created


def pulso(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(PULSO_DATA_DIR=str(data_dir), COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_windows_show_prints_the_newest_windows_in_reais(filled: Settings) -> None:
    done = pulso("windows", "show", "--limit", "3", data_dir=filled.data_dir)
    assert done.returncode == 0, done.stderr
    assert "janela" in done.stdout and "R$ " in done.stdout
    assert done.stdout.count("LJ-") == 3

    done = pulso(
        "windows", "show", "--kind", "sliding_5m", "--dimension", "city", data_dir=filled.data_dir
    )
    assert done.returncode == 0, done.stderr
    assert "/" in done.stdout  # cities are Name/UF


def test_windows_late_counts_by_reason(filled: Settings) -> None:
    done = pulso("windows", "late", data_dir=filled.data_dir)
    assert done.returncode == 0, done.stderr
    assert "by reason:" in done.stdout


def test_a_bad_kind_is_a_clear_error(filled: Settings) -> None:
    done = pulso("windows", "show", "--kind", "hourly", data_dir=filled.data_dir)
    assert done.returncode != 0
    assert "tumbling_1m or sliding_5m" in done.stdout + done.stderr


def test_no_window_yet_says_why(tmp_path: Path) -> None:
    """Nothing stored; a few seconds of payments (no window has passed its end yet); a key
    with no window: each says so, with exit code 0 (an empty answer is not an error)."""
    empty = pulso("windows", "show", data_dir=tmp_path / "empty")
    assert empty.returncode == 0, empty.stderr
    assert "no payments stored; run `pulso run`" in empty.stdout

    data_dir = tmp_path / "short"
    settings = load_settings(data_dir=data_dir)
    bus, store = open_bus(settings), open_store(settings)
    start = datetime(2026, 11, 20, 13, 0, 10, tzinfo=UTC)
    events = [created(i, start + timedelta(seconds=i)) for i in range(20)]
    bus.publish(Topic.PAYMENTS, [(e.key.encode(), encode_event(e)) for e in events])
    runner = build_runner(settings, bus, store)
    runner.run(stop=lambda _: True)
    runner.close()
    bus.close()
    store.close()

    short = pulso("windows", "show", data_dir=data_dir)
    assert short.returncode == 0, short.stderr
    text = " ".join(short.stdout.split())
    assert "no window emitted yet: 20 payments stored, created 20/11/2026 10:00" in text
    assert "passes its end by 5 s (PULSO_WINDOW_OUT_OF_ORDERNESS_S)" in text

    keyed = pulso("windows", "show", "--key", "LJ-9999", data_dir=data_dir)
    assert keyed.returncode == 0, keyed.stderr
    assert "no window for 'LJ-9999'" in keyed.stdout
