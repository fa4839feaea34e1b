"""The notifiers the settings configure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from pydantic import SecretStr

from pulso.config import ENV_PREFIX
from pulso.errors import ConfigError
from pulso.notify.protocol import Notifier

if TYPE_CHECKING:
    from pulso.config import Settings

log = logging.getLogger(__name__)

CHANNELS: Final = ("email", "telegram", "slack")
# Settings whose presence shows that someone meant to configure a channel.
_HINTS: Final[dict[str, tuple[str, ...]]] = {
    "email": ("smtp_host", "email_from", "email_to", "smtp_user"),
    "telegram": ("telegram_bot_token", "telegram_chat_id"),
    "slack": ("slack_webhook_url", "slack_bot_token", "slack_channel"),
}


class ChannelNotConfiguredError(ConfigError):
    """A channel was asked for but its settings are missing."""

    def __init__(self, channel: str, missing: Sequence[str]) -> None:
        super().__init__(", ".join(missing), f"not set; the {channel} channel needs it")
        self.channel = channel
        self.missing = tuple(missing)


def missing_settings(settings: Settings, channel: str) -> list[str]:
    """The ``PULSO_*`` variables ``channel`` still needs (empty when it is configured)."""
    return _MISSING[_known(channel)](settings)


def configured_channels(settings: Settings) -> list[str]:
    return [c for c in CHANNELS if not missing_settings(settings, c)]


def notifiers_from_settings(
    settings: Settings, channels: Sequence[str] | None = None
) -> list[Notifier]:
    """The notifiers for ``channels`` (None: every configured one, in the order of
    :data:`CHANNELS`). Asking for a channel that is not configured is a ConfigError naming
    the missing settings."""
    if channels is None:
        _warn_half_configured(settings)
        chosen = configured_channels(settings)
    else:
        chosen = list(dict.fromkeys(_known(c.strip().lower()) for c in channels))
        for channel in chosen:
            missing = missing_settings(settings, channel)
            if missing:
                raise ChannelNotConfiguredError(channel, missing)
    return [_BUILDERS[channel](settings) for channel in chosen]


def _known(channel: str) -> str:
    if channel not in CHANNELS:
        raise ConfigError("channels", f"unknown channel {channel!r}; use {', '.join(CHANNELS)}")
    return channel


def _warn_half_configured(settings: Settings) -> None:
    for channel in CHANNELS:
        missing = missing_settings(settings, channel)
        if missing and any(_is_set(getattr(settings, name)) for name in _HINTS[channel]):
            log.warning("%s is not sent to: %s not set", channel, ", ".join(missing))


def _missing_email(s: Settings) -> list[str]:
    needed = ["smtp_host", "email_from", "email_to"] + (["smtp_password"] if s.smtp_user else [])
    return _unset(s, needed)


def _missing_telegram(s: Settings) -> list[str]:
    return _unset(s, ["telegram_bot_token", "telegram_chat_id"])


def _missing_slack(s: Settings) -> list[str]:
    if _is_set(s.slack_bot_token):
        return _unset(s, ["slack_channel"])  # files need it, with or without a webhook
    if _is_set(s.slack_webhook_url):
        return []
    return [
        f"{_env('slack_webhook_url')} (or {_env('slack_bot_token')} with {_env('slack_channel')})"
    ]


def _unset(s: Settings, names: Sequence[str]) -> list[str]:
    return [_env(name) for name in names if not _is_set(getattr(s, name))]


def _email(s: Settings) -> Notifier:
    from pulso.notify.email import EmailNotifier, parse_recipients

    if s.smtp_user and s.smtp_security == "none":
        raise ConfigError(
            "PULSO_SMTP_SECURITY",
            "none would send the SMTP password in the clear; use "
            "starttls or ssl (or unset PULSO_SMTP_USER for a server without login)",
        )
    return EmailNotifier(
        host=s.smtp_host,
        port=s.smtp_port,
        security=s.smtp_security,
        user=s.smtp_user,
        password=_secret(s.smtp_password),
        sender=s.email_from,
        recipients=parse_recipients(s.email_to),
    )


def _telegram(s: Settings) -> Notifier:
    from pulso.notify.telegram import TelegramNotifier

    return TelegramNotifier(
        _secret(s.telegram_bot_token), s.telegram_chat_id, api_url=s.telegram_api_url
    )


def _slack(s: Settings) -> Notifier:
    from pulso.notify.slack import SlackNotifier

    return SlackNotifier(
        webhook_url=_secret(s.slack_webhook_url) or None,
        bot_token=_secret(s.slack_bot_token) or None,
        channel_id=s.slack_channel,
        api_url=s.slack_api_url,
    )


_MISSING: Final[dict[str, Callable[[Settings], list[str]]]] = {
    "email": _missing_email,
    "telegram": _missing_telegram,
    "slack": _missing_slack,
}
_BUILDERS: Final[dict[str, Callable[[Settings], Notifier]]] = {
    "email": _email,
    "telegram": _telegram,
    "slack": _slack,
}


def _env(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value is not None and bool(str(value).strip())


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
