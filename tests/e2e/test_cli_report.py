"""`pulso report heatmaps` over a store the real pipeline filled."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.analytics.heatmaps import HEATMAPS, heatmap
from pulso.bus import open_bus
from pulso.cli import app
from pulso.config import load_settings
from pulso.domain.events import Topic
from pulso.pipeline.factory import build_runner
from pulso.sources.payments_generator import PaymentsConfig, generate_payment_records
from pulso.store import open_store

START = date(2026, 11, 16)


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    bus, store = open_bus(settings), open_store(settings)
    config = PaymentsConfig(start=START, days=2, n_stores=4, n_cities=2, seed=7)
    bus.publish(Topic.PAYMENTS, list(generate_payment_records(config)))
    runner = build_runner(settings, bus, store)
    runner.run(stop=lambda _: True)
    runner.close()
    bus.close()
    store.close()
    return settings


def test_csv_grids_equal_the_engine(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["report", "heatmaps", "--from", "2026-11-16", "--to", "17/11/2026", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("mapa_calor_*.csv"))
    assert len(files) == len(HEATMAPS) == 34
    with (out / "mapa_calor_dia_count.csv").open() as f:
        rows = list(csv.reader(f))
    store = open_store(filled)
    grid = heatmap(store, "dia_count", start=START, end=date(2026, 11, 17))
    store.close()
    assert rows[0][1:] == list(grid.columns)
    assert [r[0] for r in rows[1:]] == list(grid.rows)
    assert [[int(c) if c else None for c in r[1:]] for r in rows[1:]] == grid.values


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "gif"], "unknown gif"),
        (["--from", "2026-11-20", "--to", "2026-11-16"], "after --to"),
    ],
)
def test_bad_options_are_clear_errors(
    filled: Any, tmp_path: Path, extra: list[str], message: str
) -> None:
    base = {"--from": "2026-11-16", "--to": "2026-11-17", "--out": str(tmp_path / "o")}
    for i in range(0, len(extra), 2):
        base[extra[i]] = extra[i + 1]
    args = ["report", "heatmaps", *[x for kv in base.items() for x in kv]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_png_pictures_carry_the_seed_names(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "png"
    args = ["report", "heatmaps", "--from", "2026-11-16", "--to", "2026-11-17"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "png"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(spec.file_name for spec in HEATMAPS.values())
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))
