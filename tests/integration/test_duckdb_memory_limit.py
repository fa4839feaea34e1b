"""PULSO_DUCKDB_MEMORY_LIMIT: the embedded store's DuckDB gets a memory_limit when it
connects (default 512MB), an empty value leaves DuckDB's own, a malformed one is refused with
the variable's name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pulso.config import Settings, load_settings
from pulso.errors import ConfigError
from pulso.store import open_store
from pulso.store.duckdb import DEFAULT_MEMORY_LIMIT, DuckDBStore


def _limit_bytes(store: DuckDBStore) -> int:
    # current_setting() shows a rounded text ("953.6 MiB"); the bytes are exact here.
    [(limit,)] = store.query("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'")
    number, unit = str(limit).split()
    return round(float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit])


def test_the_default_limit_is_applied(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    assert settings.duckdb_memory_limit == DEFAULT_MEMORY_LIMIT == "512MB"
    store = open_store(settings)
    try:
        assert isinstance(store, DuckDBStore)
        assert abs(_limit_bytes(store) - 512 * 10**6) < 2**20  # DuckDB's MB is 1000^2
    finally:
        store.close()


def test_the_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PULSO_DUCKDB_MEMORY_LIMIT", "256MiB")
    store = open_store(load_settings(data_dir=tmp_path / "data"))
    try:
        assert isinstance(store, DuckDBStore)
        assert _limit_bytes(store) == 256 * 2**20
    finally:
        store.close()


def test_empty_leaves_duckdbs_own_limit(settings_factory: Callable[..., Settings]) -> None:
    store = open_store(settings_factory(duckdb_memory_limit=""))
    try:
        assert isinstance(store, DuckDBStore)
        assert _limit_bytes(store) > 10**9  # 80 % of the machine's RAM
    finally:
        store.close()


@pytest.mark.parametrize("value", ["lots", "1 GBs", "-5MB", "512"])
def test_a_malformed_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PULSO_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ConfigError, match="PULSO_DUCKDB_MEMORY_LIMIT"):
        load_settings()


def test_a_query_bigger_than_the_limit_spills_instead_of_failing(tmp_path: Path) -> None:
    """A sort of ~100 MB of rows under a 64 MB limit completes (DuckDB spills to
    <file>.tmp): the limit bounds memory, not what the store can answer. (Far lower limits
    fail: DuckDB needs some tens of MB to work at all; the default is 512MB.)"""
    with DuckDBStore(tmp_path / "pulso.duckdb", memory_limit="64MB") as store:
        [(n, first)] = store.query(
            "SELECT count(*), min(s) FROM (SELECT md5(i::VARCHAR) || md5((i * 7)::VARCHAR) "
            "AS s FROM range(1500000) t(i) ORDER BY s)"
        )
        assert n == 1_500_000 and len(first) == 64
