"""Slack as a channel: text through an incoming webhook, files through the Web API (httpx).

Wire format (docs.slack.dev):

- Incoming webhook: ``POST <webhook URL>`` with JSON ``{"text", "blocks"}``. It answers
  ``200 ok``; errors are plain text such as ``invalid_payload`` (400), ``action_prohibited``
  (403), ``channel_not_found`` (404), ``channel_is_archived`` (410); 429 carries
  ``Retry-After`` (seconds). The webhook URL is the secret and never appears in a message.
- Web API, ``Authorization: Bearer xoxb-...``: HTTP 200 with ``{"ok": true, ...}`` or
  ``{"ok": false, "error": "..."}``; 429 with ``Retry-After`` when rate limited.
  Files go in three steps (``files.upload`` is retired):
  ``files.getUploadURLExternal`` (form ``filename``, ``length``) → ``upload_url``, ``file_id``;
  ``POST`` the raw bytes to ``upload_url``; ``files.completeUploadExternal`` (form ``files`` =
  JSON ``[{"id", "title"}]``, ``channel_id``, ``initial_comment``) shares them in one message.
  Without a webhook the text goes with ``chat.postMessage`` (JSON ``channel``, ``text``,
  ``blocks``).

Block limits: a header takes 150 characters of plain text, a section 3000 of mrkdwn (where
``&``, ``<`` and ``>`` must be escaped), a message 50 blocks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from pulso.notify.errors import NotifyError, NotifyRejectedError, NotifyUnavailableError
from pulso.notify.http import client_for, post, retry_after_s, short
from pulso.notify.message import Attachment, Notification
from pulso.notify.progress import Progress
from pulso.notify.protocol import SendResult
from pulso.notify.redact import hide_in_http_logs
from pulso.notify.text import split_text, truncate

DEFAULT_API_URL: Final = "https://slack.com/api"
HEADER_MAX: Final = 150
SECTION_MAX: Final = 3000
SECTIONS_MAX: Final = 49  # 50 blocks, one of them the header
# Web API errors that say "try again later" rather than "fix something".
_PASSING_ERRORS: Final = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
_TOKEN_ERRORS: Final = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
_CHANNEL_ERRORS: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class SlackNotifier:
    """A message to a Slack channel, and the attachments as files when a bot token is set."""

    name = "slack"

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        bot_token: str | None = None,
        channel_id: str = "",
        api_url: str = DEFAULT_API_URL,
        http: httpx.Client | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if bot_token and not channel_id:
            raise ValueError("a channel id is required with a bot token")
        if not webhook_url and not bot_token:
            raise ValueError("a webhook URL or a bot token and channel id are required")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self._webhook_url = webhook_url or None
        self._bot_token = bot_token or None
        self._channel_id = channel_id
        self._api_url = api_url.rstrip("/")
        self._http = http
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        webhook_path = urlsplit(webhook_url).path if webhook_url else ""
        self._secrets = tuple(
            s for s in (webhook_url, webhook_path if len(webhook_path) > 1 else "", bot_token) if s
        )
        self._progress = Progress()
        hide_in_http_logs(*self._secrets)

    def __repr__(self) -> str:
        return (
            f"SlackNotifier(webhook={'set' if self._webhook_url else 'unset'}, "
            f"bot_token={'set' if self._bot_token else 'unset'}, api_url={self._api_url!r})"
        )

    def send(self, notification: Notification) -> SendResult:
        payload, warnings = message_payload(notification)
        run = functools.partial(self._progress.run, notification.notification_id)
        with client_for(self._http) as client:
            run("text", functools.partial(self._send_text, client, payload))
            if notification.attachments and self._bot_token:
                run("files", functools.partial(self._send_files, client, notification))
            elif notification.attachments:
                warnings.append(_skipped(notification.attachments))
        self._progress.finish(notification.notification_id)
        return SendResult(tuple(warnings))

    # ---------------------------------------------------------------------------- text

    def _send_text(self, client: httpx.Client, payload: Mapping[str, Any]) -> None:
        if self._webhook_url is None:
            self._api(client, "chat.postMessage", body={"channel": self._channel_id, **payload})
            return
        response = post(
            client,
            self._webhook_url,
            channel=self.name,
            action="incoming webhook",
            secrets=self._secrets,
            timeout=self._timeout,
            json=payload,
        )
        error = webhook_error(response, self._secrets)
        if error is not None:
            raise error

    # --------------------------------------------------------------------------- files

    def _send_files(self, client: httpx.Client, notification: Notification) -> None:
        shared = [
            {"id": self._upload(client, attachment), "title": attachment.filename}
            for attachment in notification.attachments
        ]
        form = {
            "files": json.dumps(shared, ensure_ascii=False),
            "channel_id": self._channel_id,
            "initial_comment": escape_mrkdwn(notification.subject),
        }
        self._api(client, "files.completeUploadExternal", form=form)

    def _upload(self, client: httpx.Client, attachment: Attachment) -> str:
        """Send one file's bytes; its Slack file id."""
        form = {"filename": attachment.filename, "length": str(attachment.size_bytes)}
        answer = self._api(client, "files.getUploadURLExternal", form=form)
        upload_url, file_id = answer.get("upload_url"), answer.get("file_id")
        if not isinstance(upload_url, str) or not isinstance(file_id, str):
            raise NotifyUnavailableError(
                self.name, "files.getUploadURLExternal answered without upload_url or file_id"
            )
        # The upload URL is pre-signed: the bot token is not sent to it.
        response = post(
            client,
            upload_url,
            channel=self.name,
            action=f"upload of {attachment.filename}",
            secrets=(*self._secrets, upload_url),
            timeout=self._timeout,
            content=attachment.content,
            headers={"Content-Type": attachment.mime_type},
        )
        if response.status_code != 200:
            reason = f"upload of {attachment.filename} failed: HTTP {response.status_code}"
            raise _by_status(response, reason)
        return file_id

    # ------------------------------------------------------------------------- Web API

    def _api(
        self,
        client: httpx.Client,
        method: str,
        *,
        form: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._bot_token}"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            content = json.dumps(body, ensure_ascii=False).encode()
        response = post(
            client,
            f"{self._api_url}/{method}",
            channel=self.name,
            action=method,
            secrets=self._secrets,
            timeout=self._timeout,
            data=form,
            content=content,
            headers=headers,
        )
        answer, error = api_answer(response, method, self._secrets)
        if error is not None:
            raise error
        return answer


def message_payload(notification: Notification) -> tuple[dict[str, Any], list[str]]:
    """The ``{"text", "blocks"}`` message, and a warning when the text had to be cut."""
    warnings: list[str] = []
    sections = split_text(notification.text, SECTION_MAX, length=_mrkdwn_len)
    if len(sections) > SECTIONS_MAX:
        sections = sections[:SECTIONS_MAX]
        warnings.append(f"text cut to the {SECTIONS_MAX * SECTION_MAX} characters a message holds")
    header = truncate(notification.subject, HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    blocks += [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape_mrkdwn(piece)}}
        for piece in sections
    ]
    return {"text": escape_mrkdwn(notification.subject), "blocks": blocks}, warnings


def escape_mrkdwn(text: str) -> str:
    """Escaped for Slack's mrkdwn: ``&``, ``<`` and ``>`` become HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_error(response: httpx.Response, secrets: tuple[str, ...]) -> NotifyError | None:
    """The error an incoming webhook's answer means, or None on 200."""
    if response.status_code == 200:
        return None
    said = short(response.text, secrets, limit=80) or "no reason given"
    reason = f"incoming webhook refused the message: {said} (HTTP {response.status_code})"
    if response.status_code in (403, 404, 410):
        reason += "; check PULSO_SLACK_WEBHOOK_URL (the hook or its channel may be gone)"
    return _by_status(response, reason)


def api_answer(
    response: httpx.Response, method: str, secrets: tuple[str, ...]
) -> tuple[dict[str, Any], NotifyError | None]:
    """A Web API answer's body, and the error it means (None when ``ok``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {}, _by_status(response, f"{method}: HTTP {response.status_code}, not JSON")
    if response.status_code == 200 and body.get("ok") is True:
        return body, None
    code = short(str(body.get("error") or f"HTTP {response.status_code}"), secrets, limit=80)
    reason = f"{method} failed: {code}"
    if response.status_code == 429 or response.status_code >= 500 or code in _PASSING_ERRORS:
        wait_s = retry_after_s(response.headers.get("Retry-After"))
        return body, NotifyUnavailableError(SlackNotifier.name, reason, retry_after_s=wait_s)
    return body, NotifyRejectedError(SlackNotifier.name, reason + _hint(code, body))


def _hint(code: str, body: Mapping[str, Any]) -> str:
    if code in _TOKEN_ERRORS:
        return "; check PULSO_SLACK_BOT_TOKEN"
    if code in _CHANNEL_ERRORS:
        return "; check PULSO_SLACK_CHANNEL (a channel id such as C0123456789) and invite the bot"
    if code == "missing_scope":
        needed = short(str(body.get("needed") or "files:write"), ())
        return f"; give the Slack app the {needed} scope and reinstall it"
    return ""


def _by_status(response: httpx.Response, reason: str) -> NotifyError:
    if response.status_code == 429 or response.status_code >= 500:
        wait_s = retry_after_s(response.headers.get("Retry-After"))
        return NotifyUnavailableError(SlackNotifier.name, reason, retry_after_s=wait_s)
    return NotifyRejectedError(SlackNotifier.name, reason)


def _skipped(attachments: Sequence[Attachment]) -> str:
    names = ", ".join(a.filename for a in attachments)
    return (
        f"{len(attachments)} attachment(s) not sent ({names}): an incoming webhook cannot "
        "carry files; set PULSO_SLACK_BOT_TOKEN and PULSO_SLACK_CHANNEL to upload them"
    )


def _mrkdwn_len(text: str) -> int:
    return len(escape_mrkdwn(text))
