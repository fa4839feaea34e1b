"""Where the dashboard finds the API, and how often it refreshes (``PULSO_DASHBOARD_*``).

The dashboard reads only these and the API token: it runs in its own process, may run on
another machine than the server, and never needs the store or bus settings.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "http://127.0.0.1:8000"


class DashboardSettings(BaseSettings):
    """The dashboard's settings, from the environment (and ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="PULSO_DASHBOARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    api_url: str = Field(default=DEFAULT_API_URL, description="Base URL of the pulso API")
    api_token: SecretStr | None = Field(
        default=None,
        validation_alias="PULSO_API_TOKEN",
        description="The API token (PULSO_API_TOKEN), sent as X-API-Key",
    )
    refresh_s: float = Field(default=10.0, ge=1, le=3600, description="Seconds between refreshes")
    timeout_s: float = Field(default=5.0, gt=0, le=120, description="Give up on a request after")
