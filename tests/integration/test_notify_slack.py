"""SlackNotifier against a local HTTP server that speaks Slack's wire formats.

The fake follows docs.slack.dev:

- Incoming webhook ``POST /services/T…/B…/<secret>``, JSON ``text`` and/or ``blocks``:
  answers ``200 ok`` (text); ``400 invalid_payload`` for a body it cannot read or blocks over
  the limits (header: plain_text up to 150 characters; section: text up to 3000; at most 50
  blocks; mrkdwn with a raw ``<`` or ``>`` or a bare ``&`` is refused here too).
- Web API ``POST /api/<method>`` with ``Authorization: Bearer xoxb-…``: HTTP 200 and
  ``{"ok": false, "error": …}`` on every error (``invalid_auth``, ``channel_not_found``,
  ``invalid_arguments``, ``method_deprecated`` for the retired ``files.upload``).
  ``files.getUploadURLExternal`` (form ``filename``, ``length``) → ``upload_url``, ``file_id``;
  the upload URL takes the raw bytes (their count must be ``length``) and answers
  ``200 OK - <length>``; ``files.completeUploadExternal`` (form ``files`` JSON
  ``[{"id", "title"}]``, ``channel_id``, ``initial_comment``) shares uploaded files;
  ``chat.postMessage`` (JSON ``channel``, ``text``/``blocks``).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pytest
from loopback_http import LoopbackHttp

from pulso.notify import (
    Attachment,
    Notification,
    NotifyRejectedError,
    NotifyUnavailableError,
    deliver,
    notifiers_from_settings,
)
from pulso.notify.slack import SlackNotifier

HOOK_PATH = "/services/T0PULSO01/B0PULSO02/s3cr3tW3bh00kP4th0123"
BOT_TOKEN = "xoxb-1111111111-2222222222-Fak3B0tT0k3nF0rT3sts"
CHANNEL = "C0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
PDF = b"%PDF-1.4\n" + bytes(range(255, -1, -1)) * 3 + b"%%EOF\n"
_BAD_MRKDWN = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), strict_parsing=True).items()}


@dataclass
class Share:
    channel_id: str
    initial_comment: str | None
    files: list[tuple[str, bytes]]  # title, bytes


@dataclass
class Fault:
    path: str
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """Slack's webhook and Web API on 127.0.0.1, a random port. Use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.webhook_messages: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []  # chat.postMessage bodies
        self.shares: list[Share] = []
        self._pending: dict[str, tuple[str, int]] = {}  # file id → filename, length
        self._uploaded: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._http = LoopbackHttp(_handler_for(self))

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def webhook_url(self) -> str:
        return self.url + HOOK_PATH

    def __enter__(self) -> FakeSlack:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def fail_next(
        self, path: str, status: int, body: str, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self._faults += [Fault(path, status, body, headers)] * times

    def paths(self) -> list[str]:
        return [r.path.split("/upload/")[0] + "/upload" if "/upload/" in r.path else r.path
                for r in self.requests]  # fmt: skip

    def handle(self, request: Request) -> tuple[int, dict[str, str], str]:
        with self._lock:
            self.requests.append(request)
            for index, fault in enumerate(self._faults):
                if request.path.startswith(fault.path):
                    del self._faults[index]
                    return fault.status, fault.headers, fault.body
        if request.method != "POST":
            return 405, {}, "method_not_allowed"
        if request.path == HOOK_PATH:
            return self._webhook(request)
        if request.path.startswith("/upload/v1/"):
            return self._upload(request)
        if request.path.startswith("/api/"):
            answer = self._api(request.path.removeprefix("/api/"), request)
            return 200, {"Content-Type": "application/json"}, json.dumps(answer)
        return 404, {}, "not_found"

    # ------------------------------------------------------------------------- webhook

    def _webhook(self, request: Request) -> tuple[int, dict[str, str], str]:
        try:
            payload = json.loads(request.body)
            _check_message(payload)
        except (ValueError, AssertionError):
            return 400, {}, "invalid_payload"
        with self._lock:
            self.webhook_messages.append(payload)
        return 200, {"Content-Type": "text/html"}, "ok"

    # ------------------------------------------------------------------------- Web API

    def _api(self, method: str, request: Request) -> dict[str, Any]:
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        handlers = {
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "chat.postMessage": self._post_message,
        }
        if method == "files.upload":
            return {"ok": False, "error": "method_deprecated"}
        if method not in handlers:
            return {"ok": False, "error": "unknown_method"}
        try:
            return handlers[method](request)
        except (ValueError, KeyError, AssertionError):
            return {"ok": False, "error": "invalid_arguments"}

    def _get_upload_url(self, request: Request) -> dict[str, Any]:
        assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
        form = request.form()
        length = int(form["length"])
        assert form["filename"] and length > 0
        file_id = f"F{next(self._ids):010d}"
        with self._lock:
            self._pending[file_id] = (form["filename"], length)
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _upload(self, request: Request) -> tuple[int, dict[str, str], str]:
        file_id = request.path.rsplit("/", 1)[1]
        with self._lock:
            if file_id not in self._pending:
                return 404, {}, "not_found"
            _, length = self._pending[file_id]
            if len(request.body) != length:
                return 400, {}, "length_mismatch"
            self._uploaded[file_id] = request.body
        return 200, {"Content-Type": "text/plain"}, f"OK - {length}"

    def _complete_upload(self, request: Request) -> dict[str, Any]:
        assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
        form = request.form()
        files = json.loads(form["files"])
        assert isinstance(files, list) and files
        if form.get("channel_id") != CHANNEL:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            if any(f["id"] not in self._uploaded for f in files):
                return {"ok": False, "error": "file_not_found"}
            shared = [(str(f.get("title")), self._uploaded.pop(f["id"])) for f in files]
            self.shares.append(Share(CHANNEL, form.get("initial_comment"), shared))
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _post_message(self, request: Request) -> dict[str, Any]:
        assert request.headers["content-type"].startswith("application/json")
        body = json.loads(request.body)
        if body.get("channel") != CHANNEL:
            return {"ok": False, "error": "channel_not_found"}
        _check_message(body)
        with self._lock:
            self.posted.append(body)
        return {"ok": True, "channel": CHANNEL, "ts": "1715500000.000100"}


def _check_message(payload: dict[str, Any]) -> None:
    """Slack's checks on a message's text and blocks (AssertionError = invalid)."""
    assert isinstance(payload, dict) and (payload.get("text") or payload.get("blocks"))
    assert not _BAD_MRKDWN.search(str(payload.get("text", "")))
    blocks = payload.get("blocks", [])
    assert isinstance(blocks, list) and len(blocks) <= 50
    for block in blocks:
        text = block["text"]
        if block["type"] == "header":
            assert text["type"] == "plain_text" and 0 < len(text["text"]) <= 150
        else:
            assert block["type"] == "section" and 0 < len(text["text"]) <= 3000
            assert text["type"] != "mrkdwn" or not _BAD_MRKDWN.search(text["text"])


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            status, headers, body = fake.handle(request)
            payload = body.encode()
            self.send_response(status)
            for name, value in {"Content-Type": "text/plain", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# ---------------------------------------------------------------------------------- tests


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _report(text: str = "Vendas: R$ 1.234,56 & <87> pedidos *hoje*.") -> Notification:
    return Notification(
        subject="Relatório diário — 12/05/2025",
        text=text,
        attachments=[
            Attachment("mapa_calor.png", PNG, "image/png"),
            Attachment("relatorio.pdf", PDF, "application/pdf"),
        ],
    )


def _notifier(fake: FakeSlack, *, webhook: bool = True, bot: bool = True) -> SlackNotifier:
    return SlackNotifier(
        webhook_url=fake.webhook_url if webhook else None,
        bot_token=BOT_TOKEN if bot else None,
        channel_id=CHANNEL if bot else "",
        api_url=fake.url + "/api",
        timeout_s=10.0,
    )


def _no_waits(seconds: float) -> None:
    pass


def test_webhook_text_and_uploaded_files(slack: FakeSlack) -> None:
    result = _notifier(slack).send(_report())

    assert result.warnings == ()
    assert slack.paths() == [
        HOOK_PATH,
        "/api/files.getUploadURLExternal",
        "/upload",
        "/api/files.getUploadURLExternal",
        "/upload",
        "/api/files.completeUploadExternal",
    ]
    [message] = slack.webhook_messages
    assert message["text"] == "Relatório diário — 12/05/2025"
    assert message["blocks"][0]["text"]["text"] == "Relatório diário — 12/05/2025"
    assert message["blocks"][1]["text"] == {
        "type": "mrkdwn",
        "text": "Vendas: R$ 1.234,56 &amp; &lt;87&gt; pedidos *hoje*.",
    }
    [share] = slack.shares
    assert share.files == [("mapa_calor.png", PNG), ("relatorio.pdf", PDF)]
    assert share.initial_comment == "Relatório diário — 12/05/2025"
    api_calls = [r for r in slack.requests if r.path.startswith("/api/")]
    assert all(r.headers["authorization"] == f"Bearer {BOT_TOKEN}" for r in api_calls)
    uploads = [r for r in slack.requests if r.path.startswith("/upload/")]
    assert all("authorization" not in r.headers for r in uploads)  # pre-signed URL
    webhook_call = slack.requests[0]
    assert "authorization" not in webhook_call.headers
    assert webhook_call.headers["content-type"].startswith("application/json")


def test_webhook_only_sends_text_and_warns_about_attachments(slack: FakeSlack) -> None:
    report = deliver(_report(), [_notifier(slack, bot=False)], retries=1, backoff=0.0)

    outcome = report.result("slack")
    assert outcome.ok
    [warning] = outcome.warnings
    assert "2 attachment(s) not sent (mapa_calor.png, relatorio.pdf)" in warning
    assert "PULSO_SLACK_BOT_TOKEN" in warning
    assert slack.paths() == [HOOK_PATH]


def test_bot_token_only_posts_the_text_with_the_web_api(slack: FakeSlack) -> None:
    _notifier(slack, webhook=False).send(_report())

    [posted] = slack.posted
    assert posted["channel"] == CHANNEL and posted["blocks"][0]["type"] == "header"
    assert len(slack.shares) == 1 and slack.webhook_messages == []


def test_long_text_fills_several_sections(slack: FakeSlack) -> None:
    text = "\n\n".join(f"Loja {i}: R$ {i},00 & mais <detalhes>." * 20 for i in range(40))

    _notifier(slack, bot=False).send(_report(text=text))

    sections = slack.webhook_messages[0]["blocks"][1:]
    assert len(sections) > 5
    shown = "\n\n".join(s["text"]["text"] for s in sections)
    assert shown.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == text


def test_webhook_rate_limit_honours_retry_after(slack: FakeSlack) -> None:
    slack.fail_next(HOOK_PATH, 429, "rate_limited", retry_after=9)
    waits: list[float] = []

    report = deliver(_report(), [_notifier(slack)], retries=3, backoff=1.0, sleep=waits.append)

    assert report.ok and report.result("slack").attempts == 2
    assert waits == [9.0]
    assert len(slack.webhook_messages) == 1 and len(slack.shares) == 1


def test_gone_webhook_fails_at_once_without_showing_the_url(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fail_next(HOOK_PATH, 404, "channel_not_found")

    report = deliver(_report(), [_notifier(slack)], retries=3, backoff=1.0, sleep=_no_waits)

    outcome = report.result("slack")
    assert not outcome.ok and outcome.attempts == 1
    assert "channel_not_found (HTTP 404)" in str(outcome.error)
    assert "PULSO_SLACK_WEBHOOK_URL" in str(outcome.error)
    everything = str(outcome.error) + caplog.text + report.describe()
    assert "s3cr3tW3bh00kP4th0123" not in everything and BOT_TOKEN not in everything
    assert "HTTP Request: POST ********" in caplog.text  # httpx did log, masked


def test_upload_completion_error_is_retried_without_repeating_the_text(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fail_next("/api/files.completeUploadExternal", 500, "")
    waits: list[float] = []

    report = deliver(_report(), [_notifier(slack)], retries=3, backoff=0.25, sleep=waits.append)

    assert report.ok and report.result("slack").attempts == 2
    assert waits == [0.25]
    assert len(slack.webhook_messages) == 1
    assert slack.shares[0].files == [("mapa_calor.png", PNG), ("relatorio.pdf", PDF)]
    assert BOT_TOKEN not in caplog.text and "s3cr3tW3bh00kP4th0123" not in caplog.text


def test_web_api_ok_false_is_read(slack: FakeSlack) -> None:
    notifier = SlackNotifier(
        bot_token="xoxb-not-the-right-one", channel_id=CHANNEL, api_url=slack.url + "/api"
    )
    with pytest.raises(NotifyRejectedError, match=r"chat\.postMessage failed: invalid_auth") as e:
        notifier.send(_report())
    assert "PULSO_SLACK_BOT_TOKEN" in str(e.value) and "not-the-right-one" not in str(e.value)

    wrong_channel = SlackNotifier(
        bot_token=BOT_TOKEN, channel_id="C000", api_url=slack.url + "/api"
    )
    with pytest.raises(NotifyRejectedError, match=r"channel_not_found.*PULSO_SLACK_CHANNEL"):
        wrong_channel.send(_report())


def test_passing_web_api_errors_are_retryable(slack: FakeSlack) -> None:
    slack.fail_next(
        "/api/files.getUploadURLExternal", 200, '{"ok": false, "error": "internal_error"}'
    )
    with pytest.raises(NotifyUnavailableError, match="internal_error"):
        _notifier(slack).send(_report())

    slack.fail_next("/api/files.getUploadURLExternal", 429, '{"ok": false, "error": "ratelimited"}',
                    retry_after=30)  # fmt: skip
    with pytest.raises(NotifyUnavailableError) as e:
        _notifier(slack).send(_report())
    assert e.value.retry_after_s == 30.0


def test_missing_scope_names_it(slack: FakeSlack) -> None:
    slack.fail_next(
        "/api/files.getUploadURLExternal",
        200,
        json.dumps({"ok": False, "error": "missing_scope", "needed": "files:write"}),
    )
    with pytest.raises(
        NotifyRejectedError, match="missing_scope; give the Slack app the files:write"
    ):
        _notifier(slack).send(_report())


def test_one_failing_channel_does_not_stop_the_others(slack: FakeSlack) -> None:
    from pulso.notify.telegram import TelegramNotifier

    slack.fail_next(HOOK_PATH, 500, "rollup_error", times=10)
    dead_telegram = TelegramNotifier("1:x", "1", api_url=slack.url + "/nowhere", timeout_s=5.0)
    working = _notifier(slack, bot=False)
    working_twin = SlackNotifier(
        bot_token=BOT_TOKEN, channel_id=CHANNEL, api_url=slack.url + "/api", timeout_s=10.0
    )

    report = deliver(
        _report(), [working, dead_telegram, working_twin], retries=2, backoff=0.0, sleep=_no_waits
    )

    first, telegram, second = report.results
    assert not first.ok and first.attempts == 2 and "rollup_error" in str(first.error)
    assert not telegram.ok and telegram.attempts == 1  # 404 Not Found is final
    assert second.ok and len(slack.shares) == 1 and len(slack.posted) == 1
    assert not report.ok and [r.channel for r in report.failed] == ["slack", "telegram"]


def test_built_from_settings(slack: FakeSlack, settings_factory: Any) -> None:
    settings = settings_factory(
        slack_webhook_url=slack.webhook_url,
        slack_bot_token=BOT_TOKEN,
        slack_channel=CHANNEL,
        slack_api_url=slack.url + "/api",
    )
    [notifier] = notifiers_from_settings(settings, ["slack"])

    assert BOT_TOKEN not in repr(notifier) and "s3cr3t" not in repr(notifier)
    assert deliver(_report(), [notifier], retries=1, backoff=0.0).ok
    assert len(slack.webhook_messages) == 1 and len(slack.shares) == 1
