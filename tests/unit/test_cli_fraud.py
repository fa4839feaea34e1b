"""``pulso fraud evaluate``: prints precision, recall and F1 per kind and overall, false alarms
and latency; refuses unknown thresholds and bad numbers with a clear message."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.cli import app
from pulso.domain.fraud import ANOMALY_KINDS


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["fraud", "evaluate", *args], terminal_width=200)


def test_evaluate_prints_every_kind_overall_false_alarms_and_latency() -> None:
    result = _run("--payments", "6000", "--anomaly-rate", "5%", "--seed", "3", "--stores", "40")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "6,000 payments, seed 3, anomaly rate 5.00%" in out
    for kind in ANOMALY_KINDS:
        assert re.search(rf"{kind}\s.*\d\.\d{{3}}\s.*\d\.\d{{3}}\s.*\d\.\d{{3}}", out), kind
    overall = re.search(r"overall.*?(\d\.\d{3})\D+(\d\.\d{3})\D+(\d\.\d{3})", out)
    assert overall is not None
    precision, recall, f1 = map(float, overall.groups())
    assert f1 >= 0.9 and precision >= 0.9 and recall >= 0.8  # a small run: less history
    assert re.search(r"false alarms: \d+ of [\d,]+ normal payments = \d+\.\d\d per 10,000", out)
    assert "detection delay (event time" in out and "processing latency" in out


def test_a_threshold_override_changes_the_result() -> None:
    strict = _run(
        "--payments", "3000", "--anomaly-rate", "5%", "--stores", "30", "--set", "alert_score=1.0"
    )
    assert strict.exit_code == 0, strict.output
    assert re.search(r"overall\s.*\s0\.000\s", strict.output)  # nothing reaches risk 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "card_testing_limit=3"], "unknown threshold; known ones:"),
        (["--set", "card_testing_count"], "expected NAME=VALUE"),
        (["--set", "card_testing_count=lots"], "expected a whole number"),
        (["--set", "alert_score=7"], "must be 0..1"),
        (["--anomaly-rate", "lots"], "--anomaly-rate"),
        (["--payments", "10"], "--payments"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output
