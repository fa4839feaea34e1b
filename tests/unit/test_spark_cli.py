"""``pulso spark run``: clear errors when pyspark or Java is missing, or the input is wrong
(none of these start a JVM)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.cli import app
from pulso.spark import SparkUnavailableError, _java_major, check_available


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["spark", "run", *args])


def test_unknown_job_and_sink_are_refused() -> None:
    result = run("nope")
    assert result.exit_code == 1
    assert "unknown job 'nope'" in result.output
    assert "stream-payments, heatmaps, market-trends" in result.output
    result = run("stream-payments", "--sink", "csv")
    assert result.exit_code == 1 and "unknown --sink 'csv'" in result.output


def test_missing_pyspark_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(SparkUnavailableError, match=r"pip install 'pulso\[spark\]'"):
        check_available()
    result = run("heatmaps")
    assert result.exit_code == 1
    assert "pyspark is not installed" in result.output


def test_missing_java_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pulso[spark]')")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = run("market-trends")
    assert result.exit_code == 1
    assert "Java is not installed" in result.output


def test_java_versions_are_read_from_both_formats() -> None:
    assert _java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert _java_major('java version "1.8.0_392"') == 8
    assert _java_major("no version here") is None


def test_stream_payments_needs_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pulso[spark]')")
    result = run("stream-payments")  # the default bus is local://
    assert result.exit_code == 1
    assert "PULSO_BUS_URL=kafka://" in result.output


def test_bad_low_price_is_refused_before_spark_starts() -> None:
    result = run("heatmaps", "--low-price", "lots")
    assert result.exit_code == 1
    assert "not an amount in reais" in result.output
