"""Checks over HTTP: the PSP, Telegram, Slack and the LLM endpoint. Tokens travel in headers
or URL paths and are masked out of every message by the runner."""

from __future__ import annotations

from typing import Any, Final

import httpx

from pulso.config import Settings
from pulso.doctor.result import Finding, failed, not_configured, ok, warning

_UNREACHABLE_FIX: Final = "check {setting} and that this machine reaches it (proxy, firewall)"


class Unreachable(Exception):
    """No HTTP answer: connection refused, DNS, TLS or timeout."""


def _call(method: str, url: str, timeout_s: float, **kwargs: Any) -> httpx.Response:
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client:
            return client.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        raise Unreachable(f"no answer ({type(e).__name__})") from e


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --------------------------------------------------------------------------- PSP


def check_psp(settings: Settings, timeout_s: float) -> list[Finding]:
    if settings.psp == "sandbox":
        return [ok("PSP", "sandbox: charges are simulated, no money moves")]
    component = "PSP (Mercado Pago)"
    token = settings.mercadopago_access_token
    if token is None or not token.get_secret_value():
        return [
            failed(
                component,
                "PULSO_PSP=mercadopago but no access token is set",
                "set PULSO_MERCADOPAGO_ACCESS_TOKEN (Mercado Pago > Your integrations > "
                "Credentials), or PULSO_PSP=sandbox",
            )
        ]
    base = settings.mercadopago_base_url.rstrip("/")
    kind = "test" if token.get_secret_value().startswith("TEST-") else "production"
    try:
        response = _call(
            "GET",
            f"{base}/v1/payments/search",
            timeout_s,
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        )
    except Unreachable as e:
        return [
            failed(
                component,
                f"{base}: {e}",
                _UNREACHABLE_FIX.format(setting="PULSO_MERCADOPAGO_BASE_URL"),
            )
        ]
    if response.status_code in (401, 403):
        return [
            failed(
                component,
                f"{base} refused the access token (HTTP {response.status_code})",
                "set PULSO_MERCADOPAGO_ACCESS_TOKEN to a valid token (APP_USR-... or TEST-...)",
            )
        ]
    if response.status_code != 200:
        return [
            failed(
                component,
                f"{base} answered HTTP {response.status_code} to a payments search",
                "check PULSO_MERCADOPAGO_BASE_URL (default https://api.mercadopago.com)",
            )
        ]
    detail = f"{base} accepts the {kind} access token"
    secret = settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        return [
            warning(
                component,
                f"{detail}; no webhook secret, so payment notifications cannot be verified",
                "set PULSO_WEBHOOK_SECRET to the webhook's secret signature (Mercado Pago > "
                "Your integrations > Webhooks)",
            )
        ]
    return [ok(component, detail)]


# ---------------------------------------------------------------------- Telegram


def check_telegram(settings: Settings, timeout_s: float) -> list[Finding]:
    component = "notifier (Telegram)"
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value():
        return [not_configured(component, "PULSO_TELEGRAM_BOT_TOKEN is not set")]
    base = settings.telegram_api_url.rstrip("/")
    try:
        response = _call("GET", f"{base}/bot{token.get_secret_value()}/getMe", timeout_s)
    except Unreachable as e:
        return [
            failed(
                component, f"{base}: {e}", _UNREACHABLE_FIX.format(setting="PULSO_TELEGRAM_API_URL")
            )
        ]
    body = _json(response)
    if response.status_code in (401, 404) or body.get("ok") is False:
        reason = body.get("description") or f"HTTP {response.status_code}"
        return [
            failed(
                component,
                f"getMe refused the bot token ({reason})",
                "set PULSO_TELEGRAM_BOT_TOKEN to the token @BotFather gave (123456:ABC...)",
            )
        ]
    if response.status_code != 200 or not isinstance(body.get("result"), dict):
        return [
            failed(
                component,
                f"getMe answered HTTP {response.status_code}",
                "check PULSO_TELEGRAM_API_URL",
            )
        ]
    bot = body["result"].get("username") or body["result"].get("first_name") or "?"
    if not settings.telegram_chat_id:
        return [
            failed(
                component,
                f"bot @{bot} answers, but no chat is set",
                "set PULSO_TELEGRAM_CHAT_ID (send the bot a message, then read the chat id "
                "from getUpdates)",
            )
        ]
    return [ok(component, f"bot @{bot} answers; chat {settings.telegram_chat_id}")]


# ------------------------------------------------------------------------- Slack


def check_slack(settings: Settings, timeout_s: float) -> list[Finding]:
    component = "notifier (Slack)"
    token = settings.slack_bot_token
    hook = settings.slack_webhook_url
    token_value = token.get_secret_value() if token else ""
    hook_value = hook.get_secret_value() if hook else ""
    if not token_value and not hook_value:
        return [
            not_configured(
                component, "neither PULSO_SLACK_WEBHOOK_URL nor PULSO_SLACK_BOT_TOKEN is set"
            )
        ]
    findings: list[Finding] = []
    if hook_value:
        findings.append(_slack_webhook(component + " webhook", hook_value, timeout_s))
    if token_value:
        findings.append(_slack_token(component + " bot", token_value, settings, timeout_s))
    return findings


def _slack_webhook(component: str, url: str, timeout_s: float) -> Finding:
    # An empty payload is refused without posting anything: 400 no_text / invalid_payload
    # means the hook exists; 403 / 404 (invalid_token, no_service...) that it does not.
    try:
        response = _call("POST", url, timeout_s, json={})
    except Unreachable as e:
        return failed(
            component, f"webhook: {e}", _UNREACHABLE_FIX.format(setting="PULSO_SLACK_WEBHOOK_URL")
        )
    answer = response.text.strip()[:60]
    if response.status_code == 400 and answer in (
        "no_text",
        "invalid_payload",
        "missing_text_or_fallback_or_attachments",
    ):
        return ok(component, "the incoming webhook exists (checked without posting)")
    if response.status_code in (403, 404, 410):
        return failed(
            component,
            f"the incoming webhook is gone or revoked ({answer or response.status_code})",
            "create a new incoming webhook in the Slack app and set PULSO_SLACK_WEBHOOK_URL",
        )
    return warning(
        component,
        f"the webhook answered HTTP {response.status_code} {answer}",
        "check PULSO_SLACK_WEBHOOK_URL",
    )


def _slack_token(component: str, token: str, settings: Settings, timeout_s: float) -> Finding:
    base = settings.slack_api_url.rstrip("/")
    try:
        response = _call(
            "POST", f"{base}/auth.test", timeout_s, headers={"Authorization": f"Bearer {token}"}
        )
    except Unreachable as e:
        return failed(
            component, f"{base}: {e}", _UNREACHABLE_FIX.format(setting="PULSO_SLACK_API_URL")
        )
    body = _json(response)
    if response.status_code != 200 or body.get("ok") is not True:
        reason = body.get("error") or f"HTTP {response.status_code}"
        return failed(
            component,
            f"auth.test refused the bot token ({reason})",
            "set PULSO_SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...)",
        )
    who = f"{body.get('user', '?')} in {body.get('team', '?')}"
    if not settings.slack_channel:
        return warning(
            component,
            f"token of {who}; no channel, so PDFs and pictures are not uploaded",
            "set PULSO_SLACK_CHANNEL to the channel id (C0123...) and invite the bot there",
        )
    return ok(component, f"token of {who}; channel {settings.slack_channel}")


# --------------------------------------------------------------------------- LLM


def check_llm(settings: Settings, timeout_s: float) -> list[Finding]:
    component = "LLM"
    if not settings.llm_url:
        return [
            not_configured(
                component, "PULSO_LLM_URL is not set: reports use the deterministic text"
            )
        ]
    base = settings.llm_url.rstrip("/")
    key = settings.llm_api_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    try:
        response = _call("GET", f"{base}/models", timeout_s, headers=headers)
    except Unreachable as e:
        return [
            failed(
                component,
                f"{base}: {e}",
                "check PULSO_LLM_URL (an OpenAI-compatible base such as "
                "http://127.0.0.1:11434/v1) and that the server runs",
            )
        ]
    if response.status_code in (401, 403):
        return [
            failed(
                component,
                f"{base} refused the key (HTTP {response.status_code})",
                "check PULSO_LLM_API_KEY",
            )
        ]
    if response.status_code != 200:
        return [
            warning(
                component,
                f"{base}/models answered HTTP {response.status_code}; the endpoint may still "
                "take chat completions",
                "check PULSO_LLM_URL ends with the API base (…/v1)",
            )
        ]
    data = _json(response).get("data")
    models = (
        [str(m.get("id")) for m in data if isinstance(m, dict)] if isinstance(data, list) else []
    )
    if not settings.llm_model:
        return [
            warning(
                component,
                f"{base} answers; no model chosen",
                "set PULSO_LLM_MODEL (served: " + ", ".join(models[:5]) + ")",
            )
        ]
    if models and settings.llm_model not in models:
        return [
            failed(
                component,
                f"{base} answers but does not serve {settings.llm_model!r}",
                "set PULSO_LLM_MODEL to one of: " + ", ".join(models[:5]),
            )
        ]
    return [ok(component, f"{base} serves {settings.llm_model}")]
