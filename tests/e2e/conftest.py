"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pulso.bus import open_bus
from pulso.config import Settings, load_settings
from pulso.domain.events import Topic
from pulso.pipeline.factory import build_runner
from pulso.sources.payments_generator import PaymentsConfig, generate_payment_records
from pulso.store import open_store

FILLED_START = date(2026, 11, 16)
"""The first of the two generated days in :func:`filled` (a Monday)."""


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Two days of generated payments for 4 stores in 2 cities, through the real pipeline
    into the DuckDB store of ``PULSO_DATA_DIR=tmp_path/data``."""
    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    bus, store = open_bus(settings), open_store(settings)
    config = PaymentsConfig(start=FILLED_START, days=2, n_stores=4, n_cities=2, seed=7)
    bus.publish(Topic.PAYMENTS, list(generate_payment_records(config)))
    runner = build_runner(settings, bus, store)
    runner.run(stop=lambda _: True)
    runner.close()
    bus.close()
    store.close()
    return settings
