from __future__ import annotations

from pathlib import Path

import pytest

from pulso.config import load_settings, parse_bus_url, parse_store_url, redact_url
from pulso.errors import ConfigError


def test_defaults_are_embedded() -> None:
    settings = load_settings()
    assert settings.bus.kind == "local"
    assert settings.store.kind == "duckdb"
    assert settings.store.path == Path("data/pulso.duckdb")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSO_BUS_URL", "kafka://k1:9092,k2:9092")
    monkeypatch.setenv("PULSO_STORE_URL", "postgresql://app@db:5432/pulso")
    settings = load_settings()
    assert settings.bus.brokers == "k1:9092,k2:9092"
    assert settings.store.dsn == "postgresql://app@db:5432/pulso"


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PULSO_BATCH_SIZE=500\n")
    assert load_settings().batch_size == 500


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PULSO_BUS_URL", "redis://x", "PULSO_BUS_URL: expected local://"),
        ("PULSO_BUS_URL", "kafka://nohostport", "PULSO_BUS_URL: expected kafka://host:port"),
        ("PULSO_STORE_URL", "mysql://x", "PULSO_STORE_URL: expected duckdb:///path"),
        ("PULSO_BATCH_SIZE", "many", "PULSO_BATCH_SIZE: Input should be a valid integer"),
        ("PULSO_BATCH_SIZE", "0", "PULSO_BATCH_SIZE: Input should be greater than or equal to 1"),
        ("PULSO_TIMEZONE", "Mars/Olympus", "PULSO_TIMEZONE: unknown time zone"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_duckdb_urls_follow_sqlalchemy_slashes() -> None:
    assert parse_store_url("duckdb:///rel/x.duckdb", Path("d")).path == Path("rel/x.duckdb")
    assert parse_store_url("duckdb:////abs/x.duckdb", Path("d")).path == Path("/abs/x.duckdb")


def test_local_bus_url_with_path() -> None:
    assert parse_bus_url("local:///tmp/bus", Path("d")).path == Path("/tmp/bus")
    assert parse_bus_url("local://", Path("d")).path == Path("d/bus")


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSO_STORE_URL", "postgresql://app:s3cret@db:5432/pulso")
    monkeypatch.setenv("PULSO_API_TOKEN", "tok-123")
    shown = load_settings().redacted()
    assert "s3cret" not in str(shown) and "tok-123" not in str(shown)
    assert shown["store_url"] == "postgresql://app:********@db:5432/pulso"
    assert shown["api_token"] == "********"
    assert redact_url("postgresql://app@db/x") == "postgresql://app@db/x"
