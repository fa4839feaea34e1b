"""PIX payment service providers behind one protocol; :func:`open_psp` picks one from settings.

Only this function imports a backend module, so the rest of pulso depends on
:mod:`pulso.pix.providers.protocol` alone.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Final

from pulso.errors import ConfigError
from pulso.pix.providers.protocol import (
    FINAL_STATUSES,
    PSP,
    PSP_STATUSES,
    ChargeRequest,
    Notification,
    PSPCharge,
    PSPStatus,
    SimulatedPayer,
)

if TYPE_CHECKING:
    import httpx

    from pulso.config import Settings

__all__ = [
    "FINAL_STATUSES",
    "PSP",
    "PSP_STATUSES",
    "WEBHOOK_PATH",
    "ChargeRequest",
    "Notification",
    "PSPCharge",
    "PSPStatus",
    "SimulatedPayer",
    "open_psp",
    "webhook_url",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/v1/webhooks/mercadopago"


def webhook_url(settings: Settings) -> str:
    """Where PSPs post notifications: ``PULSO_PUBLIC_URL`` + the Mercado Pago webhook path."""
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def open_psp(settings: Settings, *, http: httpx.Client | None = None) -> PSP:
    """The PSP that ``PULSO_PSP`` names, configured from settings. Close it when done."""
    if settings.psp == "mercadopago":
        return _open_mercadopago(settings, http)
    return _open_sandbox(settings, http)


def _open_sandbox(settings: Settings, http: httpx.Client | None) -> PSP:
    from pulso.pix.providers.sandbox import SandboxPSP

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        # The sandbox signs and verifies in the same process, so a per-process secret works.
        secret = secrets.token_hex(32)
        log.info("PULSO_WEBHOOK_SECRET is not set: the sandbox signs with a random secret")
    return SandboxPSP(
        webhook_url=webhook_url(settings),
        webhook_secret=secret,
        pay_after_s=settings.sandbox_pay_after_s,
        http=http,
    )


def _open_mercadopago(settings: Settings, http: httpx.Client | None) -> PSP:
    from pulso.pix.providers.mercadopago import MercadoPagoPSP

    token = settings.mercadopago_access_token
    if token is None or not token.get_secret_value():
        raise ConfigError(
            "PULSO_MERCADOPAGO_ACCESS_TOKEN",
            "required when PULSO_PSP=mercadopago: copy the access token (APP_USR-...) from "
            "Mercado Pago's 'Your integrations' page",
        )
    secret = settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ConfigError(
            "PULSO_WEBHOOK_SECRET",
            "required when PULSO_PSP=mercadopago, or no webhook can be verified: copy the "
            "secret signature of the application's webhooks from Mercado Pago",
        )
    return MercadoPagoPSP(
        token.get_secret_value(),
        base_url=settings.mercadopago_base_url,
        webhook_secret=secret.get_secret_value(),
        notification_url=webhook_url(settings),
        http=http,
    )
