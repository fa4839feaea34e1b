"""The Mercado Livre client the settings ask for: the API with OAuth credentials, or the
bundled offline fixture."""

from __future__ import annotations

import httpx

from pulso.config import Settings
from pulso.errors import ConfigError
from pulso.sources.mercadolivre import Credentials, MercadoLivreClient


def open_client(settings: Settings, *, offline_round: int = -1) -> MercadoLivreClient:
    """A client for ``PULSO_MERCADOLIVRE_*``; offline mode answers from the bundled data."""
    if settings.mercadolivre_offline:
        from pulso.sources.mercadolivre_offline import offline_client

        return offline_client(offline_round)
    http = httpx.Client(
        base_url=settings.mercadolivre_api_url, timeout=settings.mercadolivre_timeout_s
    )
    return MercadoLivreClient(http, _credentials(settings))


def parse_categories(text: str) -> list[str]:
    """``MLB1051,MLB1648`` → the ids, checked; a ConfigError names the bad one."""
    ids = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not ids:
        raise ConfigError("--categories", "name at least one category, e.g. MLB1051,MLB1648")
    for ident in ids:
        if not (ident[:3].isalpha() and ident[3:].isdigit() and len(ident) <= 20):
            raise ConfigError("--categories", f"{ident!r} is not a category id such as MLB1051")
    return list(dict.fromkeys(ids))


def _credentials(settings: Settings) -> Credentials:
    secret = settings.mercadolivre_client_secret
    refresh = settings.mercadolivre_refresh_token
    if not (settings.mercadolivre_client_id and secret and refresh):
        raise ConfigError(
            "PULSO_MERCADOLIVRE_REFRESH_TOKEN",
            "the best-seller API needs PULSO_MERCADOLIVRE_CLIENT_ID, _CLIENT_SECRET and "
            "_REFRESH_TOKEN; or set PULSO_MERCADOLIVRE_OFFLINE=true for the bundled demo data",
        )
    return Credentials(
        client_id=settings.mercadolivre_client_id,
        client_secret=secret.get_secret_value(),
        refresh_token=refresh.get_secret_value(),
    )
