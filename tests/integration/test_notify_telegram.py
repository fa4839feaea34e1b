"""TelegramNotifier against a local HTTP server that speaks the Bot API's wire format.

The fake follows core.telegram.org/bots/api: ``POST /bot<token>/<method>``; answers
``{"ok": true, "result"}`` or ``{"ok": false, "error_code", "description", "parameters"}``;
a wrong token is 401 ``Unauthorized``, an unknown method 404 ``Not Found``. It checks what
Telegram checks: ``chat_id``; ``parse_mode=HTML`` text with only supported tags and every
other ``<``, ``>``, ``&`` escaped; 1-4096 characters (UTF-16 units) of text after entity
parsing and at most 1024 of caption; ``sendMediaGroup`` with 2-10 InputMediaPhoto items whose
``attach://<name>`` each names a multipart part; ``sendPhoto`` part ``photo``;
``sendDocument`` part ``document``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest
from loopback_http import LoopbackFake, QuietHandler

from pulso.notify import (
    Attachment,
    Notification,
    NotifyRejectedError,
    NotifyUnavailableError,
    deliver,
    notifiers_from_settings,
)
from pulso.notify.telegram import TelegramNotifier, albums

TOKEN = "7012345678:AAFake-Token_ForTests-0123456789abcdef"
CHAT_ID = "-1001234567890"
_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)")
_TAGS = re.compile(r"</?(?:b|strong|i|em|u|ins|s|strike|del|code|pre|tg-spoiler)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 64 + bytes(range(256))


PDF = b"%PDF-1.4\n" + bytes(range(256)) * 3 + b"%%EOF\n"


@dataclass
class Call:
    method: str
    fields: dict[str, Any]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name, type, bytes


class BadRequest(Exception):
    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


class FakeTelegram(LoopbackFake):
    """The Bot API on 127.0.0.1, a random port. Use as a context manager."""

    def __init__(self) -> None:
        self.calls: list[Call] = []  # accepted calls only
        self._faults: list[tuple[str | None, int, dict[str, Any]]] = []
        super().__init__(_handler_for(self))

    def fail_next(
        self,
        code: int,
        description: str,
        *,
        method: str | None = None,
        times: int = 1,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        with self._lock:
            self._faults += [(method, code, body)] * times

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def handle(self, path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        match = _PATH.fullmatch(path)
        if match is None:
            return 404, _error(404, "Not Found")
        if match["token"] != TOKEN:
            return 401, _error(401, "Unauthorized")
        method = match["method"]
        with self._lock:
            for index, (only, code, fault) in enumerate(self._faults):
                if only in (None, method):
                    del self._faults[index]
                    return code, fault
        try:
            call = _parse(method, content_type, body)
            result = _CHECKS[method](call) if method in _CHECKS else None
        except BadRequest as e:
            return e.code, _error(e.code, e.description)
        if method not in _CHECKS:
            return 404, _error(404, "Not Found")
        with self._lock:
            self.calls.append(call)
        return 200, {"ok": True, "result": result}


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


def _parse(method: str, content_type: str, body: bytes) -> Call:
    if content_type.startswith("application/json"):
        return Call(method, json.loads(body))
    if content_type.startswith("multipart/form-data"):
        return _multipart(method, content_type, body)
    raise BadRequest(f"Bad Request: unsupported content type {content_type!r}")


def _multipart(method: str, content_type: str, body: bytes) -> Call:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadRequest("Bad Request: malformed multipart body")
    call = Call(method, {})
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        filename = part.get_filename()
        if filename is None:
            call.fields[name] = payload.decode()
        else:
            call.files[name] = (filename, part.get_content_type(), payload)
    return call


def visible(text: str, parse_mode: str | None) -> str:
    """The text Telegram shows, or BadRequest as Telegram's HTML parser would raise it."""
    if parse_mode is None:
        return text
    if parse_mode != "HTML":
        raise BadRequest("Bad Request: unsupported parse_mode")
    bare = _TAGS.sub("", text)
    if "<" in bare or ">" in bare:
        raise BadRequest("Bad Request: can't parse entities: Unsupported start tag")
    if "&" in _ENTITY.sub("", bare):
        raise BadRequest("Bad Request: can't parse entities: Unsupported HTML entity")
    return html.unescape(bare)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_chat(call: Call) -> None:
    if str(call.fields.get("chat_id", "")) != CHAT_ID:
        raise BadRequest("Bad Request: chat not found")


def _check_caption(fields: dict[str, Any]) -> None:
    caption = fields.get("caption")
    if caption is not None and _units(visible(caption, fields.get("parse_mode"))) > 1024:
        raise BadRequest("Bad Request: message caption is too long")


def _send_message(call: Call) -> dict[str, Any]:
    _check_chat(call)
    text = visible(str(call.fields.get("text", "")), call.fields.get("parse_mode"))
    if not text.strip():
        raise BadRequest("Bad Request: message text is empty")
    if _units(text) > 4096:
        raise BadRequest("Bad Request: message is too long")
    return {"message_id": 1, "text": text}


def _send_photo(call: Call) -> dict[str, Any]:
    _check_chat(call)
    _check_caption(call.fields)
    if set(call.files) != {"photo"} or not call.files["photo"][1].startswith("image/"):
        raise BadRequest("Bad Request: there is no photo in the request")
    return {"message_id": 2}


def _send_media_group(call: Call) -> list[dict[str, Any]]:
    _check_chat(call)
    media = json.loads(call.fields.get("media", "null"))
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise BadRequest("Bad Request: media must contain 2-10 items")
    for item in media:
        attached = str(item.get("media", "")).removeprefix("attach://")
        if item.get("type") != "photo" or attached not in call.files:
            raise BadRequest("Bad Request: wrong file identifier/HTTP URL specified")
        _check_caption(item)
    if len(call.files) != len(media):
        raise BadRequest("Bad Request: unused files in the request")
    return [{"message_id": 3 + i} for i in range(len(media))]


def _send_document(call: Call) -> dict[str, Any]:
    _check_chat(call)
    if set(call.files) != {"document"}:
        raise BadRequest("Bad Request: there is no document in the request")
    return {"message_id": 20}


_CHECKS = {
    "sendMessage": _send_message,
    "sendPhoto": _send_photo,
    "sendMediaGroup": _send_media_group,
    "sendDocument": _send_document,
}


def _handler_for(fake: FakeTelegram) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            content_type = self.headers.get("Content-Type", "")
            status, answer = fake.handle(self.path, content_type, self.read_body())
            self.answer(status, json.dumps(answer).encode())

    return Handler


# ---------------------------------------------------------------------------------- tests


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def _notifier(fake: FakeTelegram, **options: Any) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, CHAT_ID, api_url=fake.url, timeout_s=10.0, **options)


def _report(images: int = 3, text: str | None = None) -> Notification:
    attachments = [Attachment(f"mapa_{i}.png", png(i), "image/png") for i in range(images)]
    attachments.append(Attachment("relatorio.pdf", PDF, "application/pdf"))
    return Notification(
        subject="Relatório diário <loja 7> — 12/05/2025",
        text=text or "Vendas: R$ 1.234,56 & 87 pedidos <b>não</b> é tag.\nTicket: R$ 14,19",
        attachments=attachments,
    )


def _no_waits(seconds: float) -> None:
    pass


def test_text_album_and_pdf_in_the_bot_api_format(telegram: FakeTelegram) -> None:
    result = _notifier(telegram).send(_report(images=3))

    assert result.warnings == ()
    assert telegram.methods() == ["sendMessage", "sendMediaGroup", "sendDocument"]
    message, album, document = telegram.calls
    assert message.fields["parse_mode"] == "HTML"
    shown = visible(message.fields["text"], "HTML")
    assert shown.startswith("Relatório diário <loja 7> — 12/05/2025\n\n")
    assert "R$ 1.234,56 & 87 pedidos <b>não</b> é tag." in shown
    media = json.loads(album.fields["media"])
    assert [m["media"] for m in media] == ["attach://photo0", "attach://photo1", "attach://photo2"]
    assert visible(media[0]["caption"], media[0]["parse_mode"]).startswith("Relatório diário")
    assert all("caption" not in m for m in media[1:])
    assert [album.files[f"photo{i}"] for i in range(3)] == [
        (f"mapa_{i}.png", "image/png", png(i)) for i in range(3)
    ]
    assert document.files["document"] == ("relatorio.pdf", "application/pdf", PDF)


def test_one_picture_goes_as_a_photo(telegram: FakeTelegram) -> None:
    _notifier(telegram).send(_report(images=1))

    assert telegram.methods() == ["sendMessage", "sendPhoto", "sendDocument"]
    assert telegram.calls[1].files["photo"] == ("mapa_0.png", "image/png", png(0))


def test_eleven_pictures_make_two_valid_albums(telegram: FakeTelegram) -> None:
    _notifier(telegram).send(_report(images=11))

    groups = [json.loads(c.fields["media"]) for c in telegram.calls if c.method == "sendMediaGroup"]
    assert [len(g) for g in groups] == [9, 2]
    assert [len(a) for a in albums([Attachment("a.png", b"x", "image/png")] * 21)] == [10, 9, 2]


def test_long_text_is_split_within_the_limit(telegram: FakeTelegram) -> None:
    paragraphs = [f"Loja {i:03d}: vendas R$ {i},00 & alertas <{i}>." * 9 for i in range(60)]
    text = "\n\n".join(paragraphs)

    _notifier(telegram).send(_report(images=0, text=text))

    texts = [visible(c.fields["text"], "HTML") for c in telegram.calls if c.method == "sendMessage"]
    assert len(texts) >= 4
    assert all(_units(t) <= 4096 for t in texts)
    body = "\n\n".join(texts).split("\n\n", 1)[1]  # the subject heads the first message
    assert body == text


def test_plain_mode_sends_text_as_is(telegram: FakeTelegram) -> None:
    _notifier(telegram, parse_mode="none").send(_report(images=0))

    message = telegram.calls[0]
    assert "parse_mode" not in message.fields
    assert "<b>não</b>" in message.fields["text"]


def test_rate_limit_waits_retry_after_and_resumes(telegram: FakeTelegram) -> None:
    telegram.fail_next(
        429,
        "Too Many Requests: retry after 7",
        method="sendMediaGroup",
        parameters={"retry_after": 7},
    )
    waits: list[float] = []

    report = deliver(_report(), [_notifier(telegram)], retries=3, backoff=1.0, sleep=waits.append)

    assert report.ok and report.result("telegram").attempts == 2
    assert waits == [7.0]
    # The text went through before the 429: the retry did not send it twice.
    assert telegram.methods() == ["sendMessage", "sendMediaGroup", "sendDocument"]


def test_retry_after_is_capped(telegram: FakeTelegram) -> None:
    telegram.fail_next(
        429, "Too Many Requests: retry after 86400", parameters={"retry_after": 86400}
    )
    waits: list[float] = []

    deliver(_report(), [_notifier(telegram)], retries=2, backoff=1.0, sleep=waits.append)

    assert waits == [60.0]


def test_server_errors_back_off_then_give_up(telegram: FakeTelegram) -> None:
    telegram.fail_next(500, "Internal Server Error", method="sendDocument", times=5)
    waits: list[float] = []

    report = deliver(_report(), [_notifier(telegram)], retries=3, backoff=0.5, sleep=waits.append)

    outcome = report.result("telegram")
    assert not outcome.ok and outcome.attempts == 3
    assert waits == [0.5, 1.0]
    assert "sendDocument failed: Internal Server Error (HTTP 500)" in str(outcome.error)
    assert telegram.methods() == ["sendMessage", "sendMediaGroup"]  # neither repeated


def test_a_full_resend_after_success_repeats_everything(telegram: FakeTelegram) -> None:
    notifier, notification = _notifier(telegram), _report(images=2)
    notifier.send(notification)
    notifier.send(notification)

    assert telegram.methods() == ["sendMessage", "sendMediaGroup", "sendDocument"] * 2


def test_unknown_chat_fails_at_once_with_telegrams_words(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = TelegramNotifier(TOKEN, "-100999", api_url=telegram.url, timeout_s=10.0)

    report = deliver(_report(), [notifier], retries=3, backoff=1.0, sleep=_no_waits)

    outcome = report.result("telegram")
    assert not outcome.ok and outcome.attempts == 1
    assert "sendMessage failed: Bad Request: chat not found (HTTP 400)" in str(outcome.error)
    assert "PULSO_TELEGRAM_CHAT_ID" in str(outcome.error)
    assert TOKEN not in str(outcome.error) + caplog.text
    assert "/bot********/sendMessage" in caplog.text  # httpx's request log, masked


def test_wrong_token_points_at_the_setting(telegram: FakeTelegram) -> None:
    notifier = TelegramNotifier("123:wrong-token", CHAT_ID, api_url=telegram.url, timeout_s=10.0)

    with pytest.raises(NotifyRejectedError, match=r"Unauthorized.*PULSO_TELEGRAM_BOT_TOKEN") as e:
        notifier.send(_report())
    assert "wrong-token" not in str(e.value)


def test_group_migrated_to_supergroup_says_the_new_id(telegram: FakeTelegram) -> None:
    telegram.fail_next(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        parameters={"migrate_to_chat_id": -1009876543210},
    )
    with pytest.raises(NotifyRejectedError, match="PULSO_TELEGRAM_CHAT_ID=-1009876543210"):
        _notifier(telegram).send(_report())


def test_an_oversized_photo_is_refused_before_any_request(telegram: FakeTelegram) -> None:
    big = Attachment("enorme.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")
    notification = Notification(subject="Relatório", text="texto", attachments=[big])

    with pytest.raises(NotifyRejectedError, match=r"enorme\.png"):
        _notifier(telegram).send(notification)
    assert telegram.calls == []


def test_unreachable_api_is_worth_retrying_and_hides_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notifier = TelegramNotifier(TOKEN, CHAT_ID, api_url=f"http://127.0.0.1:{closed_port}")

    with pytest.raises(NotifyUnavailableError, match="sendMessage: network error") as e:
        notifier.send(_report())
    assert TOKEN not in str(e.value) + caplog.text
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_built_from_settings(telegram: FakeTelegram, settings_factory: Any) -> None:
    settings = settings_factory(
        telegram_bot_token=TOKEN, telegram_chat_id=CHAT_ID, telegram_api_url=telegram.url
    )
    [notifier] = notifiers_from_settings(settings)

    assert notifier.name == "telegram" and TOKEN not in repr(notifier)
    assert deliver(_report(images=0), [notifier], retries=1, backoff=0.0).ok
    assert telegram.methods() == ["sendMessage", "sendDocument"]
