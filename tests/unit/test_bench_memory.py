"""The verdict of benchmarks/bench_memory.py on made-up RSS samples: a sawtooth (DuckDB's
checkpoints) around a flat line is steady, the same sawtooth on a rising line is not, and a
lag that grows is reported as a backlog, not judged as memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_memory import Sample, fit, judge


def _samples(rss: list[float], lag: list[float] | None = None) -> list[Sample]:
    lags = lag or [1.0] * len(rss)
    return [
        Sample(t_s=10.0 * i, rss_mib=r, duckdb_mib=0.0, index_mib=0.0, arrow_mib=0.0,
               consumed=1000 * i, lag_s=lags[i])
        for i, r in enumerate(rss)
    ]  # fmt: skip


def _sawtooth(n: int, base: float, rise_per_sample: float = 0.0) -> list[float]:
    # up 60 MiB a sample for five samples, then back down: a checkpoint every 50 s
    return [base + rise_per_sample * i + 60.0 * (i % 5) for i in range(n)]


def test_a_straight_line_has_its_slope_and_no_noise() -> None:
    slope, error, noise = fit([(float(x), 3.0 * x + 5.0) for x in range(10)])
    assert slope == pytest.approx(3.0) and error == pytest.approx(0.0, abs=1e-9)
    assert noise == pytest.approx(0.0, abs=1e-9)


def test_a_sawtooth_around_a_flat_line_is_steady() -> None:
    verdict = judge(_samples([300.0] * 6 + _sawtooth(55, 600.0)), minutes=10)
    assert verdict.steady
    assert verdict.span_min == pytest.approx(5.0)
    assert verdict.first_min_mib < verdict.last_min_mib  # the start-up ramp is shown, not judged
    assert not verdict.backlog_growing


def test_a_sawtooth_on_a_rising_line_is_not_steady() -> None:
    # +5 MiB every 10 s: +30 MiB/min, +150 MiB over the last 5 minutes
    verdict = judge(_samples(_sawtooth(61, 600.0, rise_per_sample=5.0)), minutes=10)
    assert not verdict.steady
    assert verdict.slope_mib_per_min == pytest.approx(30.0, abs=8.0)


def test_a_small_drift_within_two_percent_is_steady() -> None:
    rss = [800.0 + 0.1 * i for i in range(61)]  # +0.6 MiB/min, exact line
    verdict = judge(_samples(rss), minutes=10)
    assert verdict.steady and verdict.slope_mib_per_min == pytest.approx(0.6)


def test_a_growing_lag_is_a_backlog() -> None:
    lag = [1.0 + 2.0 * i for i in range(61)]
    verdict = judge(_samples([700.0] * 61, lag), minutes=10)
    assert verdict.backlog_growing and verdict.steady
    assert verdict.lag_end_s is not None and verdict.lag_start_s is not None
    assert verdict.lag_end_s - verdict.lag_start_s == pytest.approx(60.0)


def test_a_short_run_judges_its_last_half() -> None:
    verdict = judge(_samples([500.0] * 13), minutes=2)
    assert verdict.span_min == pytest.approx(1.0) and verdict.steady
