"""Telegram as a channel, through the Bot API (httpx).

Wire format (core.telegram.org/bots/api): ``POST {api}/bot<token>/<method>``; every answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after", "migrate_to_chat_id"}}``.

- ``sendMessage`` (JSON ``chat_id``, ``text``, ``parse_mode``): 1-4096 characters after entity
  parsing, so a longer text goes as several messages. ``parse_mode=HTML`` needs ``&``, ``<``
  and ``>`` escaped.
- ``sendMediaGroup`` (multipart): ``media`` is a JSON array of InputMediaPhoto
  ``{"type": "photo", "media": "attach://<part>", "caption"?}`` with the files as parts of
  those names; 2-10 items per album. A single picture goes with ``sendPhoto`` (part ``photo``).
- ``sendDocument`` (multipart part ``document``) carries the PDF.

429 carries ``retry_after`` (seconds) and 5xx are passing failures; any other error is final
and reported with Telegram's description. The token is in every URL, so no URL ever reaches
a message; httpx's own request logs are masked by :mod:`pulso.notify.redact`.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import httpx

from pulso.notify.errors import NotifyError, NotifyRejectedError, NotifyUnavailableError
from pulso.notify.http import client_for, post, retry_after_s, short
from pulso.notify.message import Attachment, Notification
from pulso.notify.progress import Progress
from pulso.notify.protocol import SendResult
from pulso.notify.redact import hide_in_http_logs
from pulso.notify.text import split_text, truncate, utf16_len

DEFAULT_API_URL: Final = "https://api.telegram.org"
TEXT_MAX: Final = 4096
CAPTION_MAX: Final = 1024
ALBUM_MAX: Final = 10
PHOTO_MAX_BYTES: Final = 10 * 1024 * 1024
DOCUMENT_MAX_BYTES: Final = 50 * 1024 * 1024
ParseMode = Literal["HTML", "none"]


class TelegramNotifier:
    """Text, pictures (as albums) and documents to one Telegram chat."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        chat_id: str,
        *,
        api_url: str = DEFAULT_API_URL,
        parse_mode: ParseMode = "HTML",
        http: httpx.Client | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if not token or not chat_id:
            raise ValueError("a Telegram bot token and chat id are required")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self._token = token
        self._chat_id = chat_id
        self._api_url = api_url.rstrip("/")
        self._parse_mode = parse_mode
        self._http = http
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._secrets = (token,)
        self._progress = Progress()
        hide_in_http_logs(token)

    def __repr__(self) -> str:
        return f"TelegramNotifier(api_url={self._api_url!r}, parse_mode={self._parse_mode!r})"

    def send(self, notification: Notification) -> SendResult:
        self._check_sizes(notification)
        run = functools.partial(self._progress.run, notification.notification_id)
        with client_for(self._http) as client:
            for index, text in enumerate(self.message_texts(notification)):
                run(f"text{index}", functools.partial(self._send_text, client, text))
            for index, album in enumerate(albums(notification.images())):
                caption = self._caption(notification.subject) if index == 0 else None
                run(f"album{index}", functools.partial(self._send_album, client, album, caption))
            for index, document in enumerate(notification.documents()):
                run(f"document{index}", functools.partial(self._send_document, client, document))
        self._progress.finish(notification.notification_id)
        return SendResult()

    def message_texts(self, notification: Notification) -> list[str]:
        """The messages that carry the subject and text, each within Telegram's limit."""
        subject = truncate(notification.subject, 256)
        room = TEXT_MAX - utf16_len(subject) - 2
        pieces = split_text(notification.text, room, length=utf16_len)
        if self._parse_mode == "HTML":
            head = f"<b>{_escape(subject)}</b>\n\n"
            return [head + _escape(pieces[0]), *(_escape(p) for p in pieces[1:])]
        return [f"{subject}\n\n{pieces[0]}", *pieces[1:]]

    # ------------------------------------------------------------------ the Bot API methods

    def _send_text(self, client: httpx.Client, text: str) -> None:
        body: dict[str, Any] = {"chat_id": self._chat_id, "text": text}
        body.update(self._parse_fields())
        self._call(client, "sendMessage", json=body)

    def _send_album(
        self, client: httpx.Client, photos: Sequence[Attachment], caption: str | None
    ) -> None:
        captioned = {"caption": caption, **self._parse_fields()} if caption else {}
        if len(photos) == 1:
            files = {"photo": _part(photos[0])}
            self._call(client, "sendPhoto", data=self._form(captioned), files=files)
            return
        media = []
        files = {}
        for index, photo in enumerate(photos):
            part = f"photo{index}"
            item: dict[str, str] = {"type": "photo", "media": f"attach://{part}"}
            media.append({**item, **captioned} if index == 0 else item)
            files[part] = _part(photo)
        data = self._form({"media": json.dumps(media, ensure_ascii=False)})
        self._call(client, "sendMediaGroup", data=data, files=files)

    def _send_document(self, client: httpx.Client, document: Attachment) -> None:
        files = {"document": _part(document)}
        self._call(client, "sendDocument", data=self._form({}), files=files)

    def _call(
        self,
        client: httpx.Client,
        method: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> None:
        response = post(
            client,
            f"{self._api_url}/bot{self._token}/{method}",
            channel=self.name,
            action=method,
            secrets=self._secrets,
            timeout=self._timeout,
            json=json,
            data=data,
            files=files,
        )
        error = answer_error(response, method, self._secrets)
        if error is not None:
            raise error

    # ------------------------------------------------------------------------ helpers

    def _parse_fields(self) -> dict[str, str]:
        return {"parse_mode": "HTML"} if self._parse_mode == "HTML" else {}

    def _form(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {"chat_id": self._chat_id, **fields}

    def _caption(self, subject: str) -> str:
        caption = truncate(subject, CAPTION_MAX, length=utf16_len)
        return _escape(caption) if self._parse_mode == "HTML" else caption

    def _check_sizes(self, notification: Notification) -> None:
        for attachment in notification.attachments:
            limit = PHOTO_MAX_BYTES if attachment.is_image else DOCUMENT_MAX_BYTES
            if attachment.size_bytes > limit:
                raise NotifyRejectedError(
                    self.name,
                    f"{attachment.filename} has {attachment.size_bytes // 1024} KiB; the Bot "
                    f"API takes {'photos' if attachment.is_image else 'files'} up to "
                    f"{limit // (1024 * 1024)} MiB",
                )


def albums(images: Sequence[Attachment]) -> list[tuple[Attachment, ...]]:
    """Pictures in albums of at most 10, never leaving one alone after a full album."""
    groups = [tuple(images[i : i + ALBUM_MAX]) for i in range(0, len(images), ALBUM_MAX)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2], groups[-1] = groups[-2][:-1], (groups[-2][-1], *groups[-1])
    return groups


def answer_error(
    response: httpx.Response, method: str, secrets: tuple[str, ...]
) -> NotifyError | None:
    """The error a Bot API answer means, or None when it says ``ok``."""
    body = _json_object(response)
    if response.status_code == 200 and body.get("ok") is True:
        return None
    code = body.get("error_code")
    status = code if isinstance(code, int) and code >= 400 else response.status_code
    description = body.get("description")
    parameters = body.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    reason = f"{method} failed: HTTP {status}"
    if description:
        reason = f"{method} failed: {short(str(description), secrets)} (HTTP {status})"
    if status == 429 or status >= 500:
        wait_s = retry_after_s(parameters.get("retry_after"))
        return NotifyUnavailableError(TelegramNotifier.name, reason, retry_after_s=wait_s)
    return NotifyRejectedError(TelegramNotifier.name, reason + _hint(status, parameters))


def _hint(status: int, parameters: Mapping[str, Any]) -> str:
    new_chat = parameters.get("migrate_to_chat_id")
    if new_chat is not None:
        return f"; the group became a supergroup: set PULSO_TELEGRAM_CHAT_ID={new_chat}"
    if status in (401, 404):
        return "; check PULSO_TELEGRAM_BOT_TOKEN (and PULSO_TELEGRAM_API_URL)"
    if status in (400, 403):
        return (
            "; check PULSO_TELEGRAM_CHAT_ID and that the bot is in that chat "
            "(or that the user started it)"
        )
    return ""


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _escape(text: str) -> str:
    """Escaped for ``parse_mode=HTML``: only ``&``, ``<`` and ``>`` are special there."""
    return html.escape(text, quote=False)


def _part(attachment: Attachment) -> tuple[str, bytes, str]:
    return (attachment.filename, attachment.content, attachment.mime_type)
