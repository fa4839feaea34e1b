"""benchmarks/bench_stream_budget.py on a few hundred payments: every part runs on the same
traffic, the minimal writes store each event and each charge once, and the report adds the
parts up as it says (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_stream_budget import (
    ARCHIVE,
    DECODE,
    NO_EVENTS,
    PARSE,
    PROCESSORS,
    Budget,
    measure,
    report,
)


def test_every_part_runs_on_the_same_traffic_and_the_minimal_writes_store_each_row_once(
    tmp_path: Path,
) -> None:
    budget, counts = measure(tmp_path, 300, stores=5, sim_rate=2.0, batch_size=200)

    assert budget.payments == 300 and counts["pipeline payments"] == 300
    assert counts["parsed"] == counts["events"]  # the parse floor read every event
    assert counts["charges written once"] == counts["stored once"] == 300
    assert counts["stored today"] == 300
    assert counts["stored overlapped (payments + events)"] == 300  # charges once, no event
    assert budget.overlapped_wall_s > 0 and budget.overlapped_cpu_s > 0
    for part in (
        "bus read",
        DECODE,
        PARSE,
        *PROCESSORS,
        "writes today",
        "writes minimal",
        ARCHIVE,
        NO_EVENTS,
    ):
        assert budget.cpu[part] > 0, part
    assert budget.pipeline_cpu_s > 0 and budget.pipeline_wall_s > 0


def test_the_report_sums_the_parts_into_the_bounds() -> None:
    budget = Budget(payments=1_000_000, cores=2)
    per_payment_us = {
        "bus read": 4.0,
        DECODE: 16.0,
        PARSE: 6.0,
        "payments fold": 2.0,
        "windows": 2.0,
        "fraud score (created only)": 10.0,
        "writes today": 30.0,
        "writes minimal": 20.0,
        ARCHIVE: 3.0,
        NO_EVENTS: 12.0,
    }
    budget.cpu = {part: us for part, us in per_payment_us.items()}  # 1e6 payments: s == us
    budget.pipeline_cpu_s, budget.pipeline_wall_s = 100.0, 80.0
    budget.overlapped_cpu_s, budget.overlapped_wall_s = 60.0, 40.0
    lines: list[str] = []
    report(budget, out=lines.append)
    text = "\n".join(lines)

    assert "budget: 50,000 payments/s on 2 cores = 40.0 us CPU a payment" in text
    # today: 4 + 16 + (2 + 2 + 10) + 30 = 64 us -> 2 cores / 64 us = 31,250 payments/s
    assert "summed (bus + decode + processors + writes): 64.0 us = 1.60x" in text
    assert "at most 31,250 payments/s" in text
    # lower bound: 4 + 6 + 20 = 30 us -> 66,667 payments/s; with processors 44 us -> 45,455
    assert "30.0 us = 0.75x the budget -> at most 66,667 payments/s" in text
    assert "(14.0 us): 44.0 us = 1.10x the budget -> at most 45,455 payments/s" in text
    # archive only: 4 + 6 + 12 + 3 = 25 us, + 14 us processors = 39 us -> 51,282 payments/s
    assert "processors: 39.0 us = 0.97x the budget -> at most 51,282 payments/s" in text
    assert "100.0 us CPU a payment, 12,500 payments/s (1.25 cores busy)" in text
    # overlapped: 1e6 payments in 40 s = 25,000/s, 1.5 cores, 60 us; 2x the pipeline's 12,500
    assert "25,000 payments/s, 1.50 cores busy, 60.0 us CPU a payment = 0.50 of the goal" in text
    assert "2.00x the pipeline" in text
    assert budget.rate(0) == pytest.approx(0.0)
