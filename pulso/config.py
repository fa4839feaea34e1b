"""Settings: one pydantic-settings object, read from ``PULSO_*`` variables and ``.env``.

Backends are chosen by URL:

- ``PULSO_BUS_URL``: ``local://`` (durable log under the data dir) or
  ``kafka://host:port[,host:port...]``
- ``PULSO_STORE_URL``: ``duckdb:///path/file.duckdb`` or ``postgresql://user@host:port/db``
- ``PULSO_DATA_DIR``: where the embedded profile keeps its files (default ``./data``)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
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

    llm_url: str = Field(
        default="",
        description="OpenAI-compatible API base for rewriting the report text, e.g. "
        "http://127.0.0.1:11434/v1; empty = the deterministic text only",
    )
    llm_model: str = Field(default="", description="Model name sent to the LLM endpoint")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the LLM")
    llm_timeout_s: float = Field(
        default=20.0, gt=0, le=600, description="Give up on the LLM after this; text falls back"
    )
    smtp_host: str = Field(default="", description="SMTP server for e-mailed reports")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (port 587), ssl (port 465) or none"
    )
    smtp_user: str = Field(default="", description="SMTP login; empty = no authentication")
    smtp_password: SecretStr | None = Field(default=None)
    email_from: str = Field(default="", description="Sender address of e-mailed reports")
    email_to: str = Field(default="", description="Comma-separated recipients")
    telegram_bot_token: SecretStr | None = Field(default=None, description="Bot API token")
    telegram_chat_id: str = Field(default="", description="Chat that receives the reports")
    telegram_api_url: str = Field(default="https://api.telegram.org")
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Incoming-webhook URL for report messages"
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token (xoxb-...) for uploading the PDF and pictures"
    )
    slack_channel: str = Field(default="", description="Channel id for uploaded files")
    slack_api_url: str = Field(default="https://slack.com/api")
    notify_retries: int = Field(
        default=3, ge=1, le=10, description="Attempts per channel before it is reported failed"
    )
    report_daily_at: str = Field(
        default="07:00", description="Local time (HH:MM) of the daily report in `pulso up`"
    )
    report_weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        default="mon", description="Day of the weekly report (previous Monday-Sunday week)"
    )
    report_channels: str = Field(
        default="",
        description="Comma-separated channels for scheduled reports; empty = every configured one",
    )

    bucket_url: str = Field(
        default="",
        description="Where daily sales files are dropped: file:///path or s3://bucket/prefix; "
        "default: the bucket folder in the data dir",
    )
    s3_endpoint_url: str = Field(
        default="", description="S3-compatible endpoint (MinIO, moto...); empty = AWS"
    )
    s3_region: str = Field(default="us-east-1")
    s3_access_key_id: str = Field(default="", description="empty = boto3's usual credentials")
    s3_secret_access_key: SecretStr | None = Field(default=None)
    etl_poll_s: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between bucket listings in etl watch"
    )

    # --- marketplace (issue 8): Mercado Livre best sellers, trends, alerts, AWS (pulso.market) ---
    mercadolivre_api_url: str = Field(default="https://api.mercadolibre.com")
    mercadolivre_client_id: str = Field(default="", description="Mercado Livre app id")
    mercadolivre_client_secret: SecretStr | None = Field(default=None)
    mercadolivre_refresh_token: SecretStr | None = Field(
        default=None, description="OAuth refresh token (TG-...); refreshed in memory on 401"
    )
    mercadolivre_offline: bool = Field(
        default=False, description="Use the bundled MLB fixture instead of the API (demo)"
    )
    mercadolivre_secret_arn: str = Field(
        default="",
        description="Lambda: Secrets Manager secret with client_secret and refresh_token (JSON)",
    )
    mercadolivre_timeout_s: float = Field(default=10.0, gt=0, le=300)
    market_categories: str = Field(
        default="MLB1051,MLB1648", description="Comma-separated categories sync and watch"
    )
    market_watch_top_n: int = Field(
        default=0, ge=0, le=20, description="Alert when a product enters this top N; 0 = off"
    )
    market_dynamodb_table: str = Field(
        default="pulso-product-snapshots", description="DynamoDB table of product snapshots"
    )
    market_sns_topic_arn: str = Field(default="", description="SNS topic for Lambda alerts")
    aws_endpoint_url: str = Field(
        default="", description="DynamoDB/SNS endpoint (moto, LocalStack); empty = AWS"
    )
    aws_region: str = Field(
        default="", description="AWS region for DynamoDB/SNS; empty = boto3's default"
    )

    # --- stream windows (issue 6: event-time windows, watermark, lateness) ---
    window_enabled: bool = Field(
        default=True, description="Run the event-time windows processor in `pulso run`"
    )
    window_out_of_orderness_s: float = Field(
        default=5.0, ge=0, le=3600, description="Watermark = latest event time seen minus this"
    )
    window_allowed_lateness_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="Windows already emitted still take events this late; later ones are kept "
        "aside as late_event",
    )
    window_max_future_s: float = Field(
        default=300.0,
        gt=0,
        le=2_592_000,
        description="Events stamped further than this ahead of the clock are kept aside as "
        "future_event and move no watermark",
    )

    # --- fraud detection (issue 6): rule thresholds and the risk score (pulso.fraud) ---
    fraud_enabled: bool = Field(default=True, description="Score payments in the pipeline")
    fraud_card_testing_count: int = Field(default=8, ge=2, le=10_000)
    fraud_card_testing_max_amount: Decimal = Field(default=Decimal("2.00"), gt=0)
    fraud_card_testing_window_s: int = Field(default=60, ge=1, le=86_400)
    fraud_velocity_stores: int = Field(default=4, ge=2, le=1_000)
    fraud_velocity_window_s: int = Field(default=600, ge=1, le=86_400)
    fraud_spike_z: float = Field(default=4.5, gt=0, le=100)
    fraud_min_history: int = Field(default=30, ge=1, le=1_000_000)
    fraud_travel_kmh: float = Field(default=900.0, gt=0)
    fraud_travel_min_km: float = Field(default=150.0, gt=0)
    fraud_travel_window_s: int = Field(default=3600, ge=1, le=86_400)
    fraud_night_start_h: int = Field(default=0, ge=0, le=24)
    fraud_night_end_h: int = Field(default=5, ge=0, le=24)
    fraud_night_min_amount: Decimal = Field(default=Decimal("1000.00"), gt=0)
    fraud_fail_count: int = Field(default=3, ge=1, le=1_000)
    fraud_fail_window_s: int = Field(default=900, ge=1, le=86_400)
    fraud_duplicate_window_s: int = Field(default=300, ge=1, le=86_400)
    fraud_alert_score: float = Field(default=0.7, ge=0, le=1, description="Risk that alerts")
    fraud_model_weight: float = Field(default=0.6, ge=0, le=1)
    fraud_record_score: float = Field(default=0.3, ge=0, le=1)
    fraud_max_payers: int = Field(default=100_000, ge=1, le=100_000_000)

    # --- raw archive (issue 6): every event as Parquet by topic, date and hour (UTC) ---
    archive_url: str = Field(
        default="",
        description="Where the raw archive goes: file:///path or s3://bucket/prefix; "
        "default: the archive folder in the data dir",
    )
    archive_topics: str = Field(
        default="payments", description="Comma-separated bus topics the archiver copies"
    )
    archive_batch_size: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Most events per archive write"
    )
    archive_poll_s: float = Field(
        default=1.0, gt=0, le=3600, description="Longest wait for events per archive batch"
    )
    archive_linger_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Wait after a part-full batch so parts grow (fewer, bigger files)",
    )

    # --- alerts (issue 6): the dispatcher that throttles and delivers detector alerts ---
    alert_throttle_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="Alerts of one kind and subject within this many seconds become one "
        "alert whose count grows; 0 = every alert on its own",
    )
    alert_channels: str = Field(
        default="",
        description="Comma-separated channels for alerts; empty = every configured one; "
        "none = store and publish only",
    )
    alert_min_severity: Literal["info", "warning", "critical"] = Field(
        default="warning", description="Alerts below this severity are kept but not sent"
    )
    alert_poll_s: float = Field(
        default=0.2, gt=0, le=60, description="Seconds between the dispatcher's looks for alerts"
    )
    alert_retry_max_s: float = Field(
        default=300.0, gt=0, le=86_400, description="Longest wait between retries of a channel"
    )

    # --- DuckDB memory (issue 6): a ceiling for the embedded store's buffer pool ---
    duckdb_memory_limit: str = Field(
        default="512MB",
        pattern=r"(?i)^(\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib))?$",
        description="DuckDB memory_limit of the embedded store (512MB, 2GB...); beyond it "
        "DuckDB evicts cached blocks and spills to disk (random, non-UUIDv7 event ids fill it "
        "with index at ~5 M payments); empty = DuckDB's own (80 % of RAM)",
    )

    # --- profiles and workers (issue 7): embedded (one process) or cluster (Kafka + PostgreSQL) ---
    profile: Literal["embedded", "cluster"] = Field(
        default="embedded",
        description="embedded: one process, any bus/store; cluster: `pulso up` runs N pipeline "
        "workers (separate processes, one Kafka consumer group) and needs Kafka and PostgreSQL",
    )
    workers: int = Field(
        default=2, ge=1, le=64, description="Pipeline worker processes `pulso up` starts (cluster)"
    )
    worker_retry_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between a worker's retries"
    )
    # --- the elected stream-state runner (windows, fraud) of the cluster profile (issue 7) ---
    stream_standby_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often a standby worker tries to take the stream-state lock",
    )
    stream_dedupe_hours: float = Field(
        default=168.0,
        gt=0,
        le=24 * 366,
        description="How long the stream-state runner remembers event ids (re-sends after "
        "that are counted again)",
    )

    @field_validator("alert_channels")
    @classmethod
    def _check_alert_channels(cls, value: str) -> str:
        names = [c.strip().lower() for c in value.split(",") if c.strip()]
        unknown = [c for c in names if c not in ("email", "telegram", "slack", "none")]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; use email, telegram, slack or none")
        return ",".join(names)

    @field_validator("report_daily_at")
    @classmethod
    def _check_daily_at(cls, value: str) -> str:
        hour, sep, minute = value.partition(":")
        if not (sep and hour.isdigit() and minute.isdigit() and len(minute) == 2) or not (
            0 <= int(hour) <= 23 and 0 <= int(minute) <= 59
        ):
            raise ValueError(f"expected a time HH:MM such as 07:00, got {value!r}")
        return f"{int(hour):02d}:{minute}"

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
