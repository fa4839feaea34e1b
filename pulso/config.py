"""Settings: one pydantic-settings object, read from ``PULSO_*`` variables and ``.env``.

Backends are chosen by URL:

- ``PULSO_BUS_URL``: ``local://`` (durable log under the data dir) or
  ``kafka://host:port[,host:port...]``
- ``PULSO_STORE_URL``: ``duckdb:///path/file.duckdb`` or ``postgresql://user@host:port/db``
- ``PULSO_DATA_DIR``: where the embedded profile keeps its files (default ``./data``)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulso.errors import ConfigError

ENV_PREFIX = "PULSO_"
BUS_SCHEMES = ("local", "kafka")
STORE_SCHEMES = ("duckdb", "postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class BusTarget:
    """A parsed ``PULSO_BUS_URL``."""

    kind: Literal["local", "kafka"]
    brokers: str = ""
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A parsed ``PULSO_STORE_URL``."""

    kind: Literal["duckdb", "postgresql"]
    dsn: str = ""
    path: Path | None = None


class Settings(BaseSettings):
    """Every setting pulso reads. Built once at start and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default=Path("data"), description="Folder for embedded-profile files")
    bus_url: str = Field(default="local://", description="local:// or kafka://host:port,...")
    store_url: str = Field(
        default="", description="duckdb:///path or postgresql://...; default: DuckDB in data dir"
    )
    batch_size: int = Field(default=20_000, ge=1, le=1_000_000, description="Events per batch")
    batch_timeout_ms: int = Field(default=200, ge=1, le=60_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    timezone: str = Field(default="America/Sao_Paulo", description="Zone used on screen")
    kafka_partitions: int = Field(default=4, ge=1, le=1024)
    kafka_session_timeout_s: float = Field(
        default=45.0, ge=1, le=3600, description="How long before a silent worker's partitions move"
    )
    local_bus_fsync: bool = Field(
        default=False, description="fsync the local log on publish (survives power loss too)"
    )
    api_token: SecretStr | None = Field(default=None, description="Bearer token for the API")
    psp: Literal["sandbox", "mercadopago"] = Field(
        default="sandbox", description="Payment service provider for PIX charges"
    )
    mercadopago_access_token: SecretStr | None = Field(
        default=None, description="Mercado Pago access token (APP_USR-...)"
    )
    mercadopago_base_url: str = Field(default="https://api.mercadopago.com")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret that signs PSP webhooks (x-signature)"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Where PSPs reach pulso (webhooks)"
    )
    sandbox_pay_after_s: float = Field(
        default=8.0, ge=0, le=3600, description="Sandbox: seconds until the payer pays; 0 = never"
    )
    pii_key: SecretStr | None = Field(
        default=None,
        description="Key for hashing payer documents; default: a random key kept in the data dir",
    )

    @field_validator("bus_url")
    @classmethod
    def _check_bus_url(cls, value: str) -> str:
        parse_bus_url(value, Path("data"))
        return value

    @field_validator("store_url")
    @classmethod
    def _check_store_url(cls, value: str) -> str:
        if value:
            parse_store_url(value, Path("data"))
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}, expected e.g. America/Sao_Paulo") from e
        return value

    @property
    def bus(self) -> BusTarget:
        return parse_bus_url(self.bus_url, self.data_dir)

    @property
    def store(self) -> StoreTarget:
        return parse_store_url(
            self.store_url or duckdb_url(self.data_dir / "pulso.duckdb"), self.data_dir
        )

    def redacted(self) -> dict[str, Any]:
        """The effective settings with every secret hidden, for display."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                shown[name] = redact_url(value)
            else:
                shown[name] = str(value) if isinstance(value, Path) else value
        if not self.store_url:
            shown["store_url"] = duckdb_url(self.data_dir / "pulso.duckdb")
        return shown


def parse_bus_url(url: str, data_dir: Path) -> BusTarget:
    parts = urlsplit(url)
    if parts.scheme == "local":
        path = parts.netloc + parts.path
        return BusTarget("local", path=Path(path) if path else data_dir / "bus")
    if parts.scheme == "kafka":
        brokers = parts.netloc
        if not brokers or any(":" not in b for b in brokers.split(",")):
            raise ValueError(f"expected kafka://host:port[,host:port...], got {url!r}")
        return BusTarget("kafka", brokers=brokers)
    raise ValueError(f"expected local:// or kafka://host:port,..., got {url!r}")


def parse_store_url(url: str, data_dir: Path) -> StoreTarget:
    parts = urlsplit(url)
    if parts.scheme == "duckdb":
        # As in SQLAlchemy: duckdb:///relative/file.duckdb, duckdb:////absolute/file.duckdb
        raw = parts.netloc + parts.path if parts.netloc else parts.path.removeprefix("/")
        if not raw:
            return StoreTarget("duckdb", path=data_dir / "pulso.duckdb")
        return StoreTarget("duckdb", path=Path(raw))
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and not parts.path.strip("/"):
            raise ValueError(f"expected postgresql://user@host:port/database, got {url!r}")
        return StoreTarget("postgresql", dsn=urlunsplit(("postgresql", *parts[1:])))
    raise ValueError(f"expected duckdb:///path or postgresql://user@host:port/db, got {url!r}")


def duckdb_url(path: Path) -> str:
    """The store URL of a DuckDB file (absolute paths get the fourth slash)."""
    return f"duckdb:///{path.as_posix()}"


def redact_url(url: str) -> str:
    """Hide the password of a URL such as postgresql://user:secret@host/db."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:********@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning a validation failure into one clear ConfigError line."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}", message) from e
