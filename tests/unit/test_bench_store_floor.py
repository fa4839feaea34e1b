"""benchmarks/bench_store_floor.py on a few hundred payments: every part runs against a real
DuckDB store, the rows land where the pipeline puts them, and the report has its fields (no
timing is asserted). Also its automatic-checkpoint count and its recording transaction."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_store_floor import (
    PARTS,
    RecordingTx,
    automatic_checkpoints,
    fill,
    prepare,
    read_batches,
    report,
    run_baseline,
    run_floor,
)

from pulso.config import load_settings
from pulso.store import open_store


def test_a_small_run_stores_every_event_and_charge_and_reports_its_fields(
    tmp_path: Path,
) -> None:
    made = fill(tmp_path / "bus", 300, stores=5, sim_rate=2.0)  # 150 s: windows close
    messages = read_batches(tmp_path / "bus", 200)
    assert sum(len(b) for b in messages) == made["events"] and len(messages) > 1
    batches = prepare(tmp_path / "bus", messages, processors=True)
    assert sum(b.payments for b in batches) == 300
    assert {"windows", "fraud"} <= set(batches[0].processors)

    clock, commits, stored = run_floor(tmp_path / "floor", batches)
    assert stored == 300 and len(commits) == len(batches)
    assert all(clock.wall[p] >= 0 for p in PARTS) and clock.wall["raw_events"] > 0
    store = open_store(load_settings(data_dir=tmp_path / "floor"))
    try:
        [(raw,)] = store.query("SELECT count(*) FROM raw_events")
        [(minutes,)] = store.query("SELECT count(*) FROM payment_minutes")
        [(windows,)] = store.query("SELECT count(*) FROM stream_windows")
    finally:
        store.close()
    assert raw == made["events"] and minutes > 0 and windows > 0

    baseline = run_baseline(tmp_path / "baseline", batches)
    assert baseline[0] > 0
    lines: list[str] = []
    report(clock, commits, stored, baseline, batches, out=lines.append)
    text = "\n".join(lines)
    for field in (
        "raw_events",
        "payments upsert",
        "confirmation + minutes",
        "commit",
        "final CHECKPOINT",
    ):
        assert f"\n{field} " in f"\n{text}"
    for phrase in ("CPU/wall", "payments/s", "goal 50,000", "floor/baseline", "written twice"):
        assert phrase in text
    assert "automatic checkpoints" in text


def test_without_processors_only_the_payments_tables_are_written(tmp_path: Path) -> None:
    fill(tmp_path / "bus", 100, stores=3, sim_rate=20.0)
    batches = prepare(tmp_path / "bus", read_batches(tmp_path / "bus", 20_000), processors=False)
    assert len(batches) == 1 and batches[0].processors == {}
    clock, _, stored = run_floor(tmp_path / "floor", batches)
    assert stored == 100 and clock.wall["windows"] == clock.wall["fraud"] == 0


def test_only_commits_over_ten_times_the_median_count_as_checkpoints() -> None:
    assert automatic_checkpoints([0.01] * 9 + [0.5]) == (1, 0.5)
    assert automatic_checkpoints([0.01] * 9 + [0.1]) == (0, 0.0)  # exactly 10x: not over
    assert automatic_checkpoints([]) == (0, 0.0)


def test_the_recording_tx_refuses_writes_it_cannot_replay() -> None:
    tx = RecordingTx()
    with pytest.raises(NotImplementedError, match="fetch"):
        tx.fetch("SELECT 1")
    assert tx.writes == []
    tx.execute("DELETE FROM payments WHERE charge_id = ANY(%s)", (["ch_1"],))
    assert [(w.kind, w.sql, w.params) for w in tx.writes] == [
        ("execute", "DELETE FROM payments WHERE charge_id = ANY(%s)", (["ch_1"],))
    ]
