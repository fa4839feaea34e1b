"""The pure parts of pulso.notify: messages, text splitting, progress memory, log masking."""

from __future__ import annotations

import html
import logging

import pytest

from pulso.notify import Attachment, Notification
from pulso.notify.email import build_message, parse_recipients
from pulso.notify.http import retry_after_s
from pulso.notify.progress import Progress
from pulso.notify.redact import MASK, hide_in_http_logs, redact
from pulso.notify.slack import escape_mrkdwn, message_payload
from pulso.notify.telegram import TelegramNotifier
from pulso.notify.text import split_text, truncate, utf16_len

PNG = Attachment("mapa.png", b"\x89PNG", "image/png")
JPEG = Attachment("foto.jpg", b"\xff\xd8", "image/jpeg")
PDF = Attachment("relatorio.pdf", b"%PDF", "application/pdf")
CSV = Attachment("dados.csv", b"a;b", "text/csv")


def test_images_and_documents_are_told_apart() -> None:
    note = Notification("Relatório", "texto", attachments=[PNG, PDF, JPEG, CSV])

    assert note.images() == (PNG, JPEG)
    assert note.documents() == (PDF, CSV)
    assert isinstance(note.attachments, tuple)
    assert repr(PNG) == "Attachment('mapa.png', 4 bytes, 'image/png')"


def test_each_notification_gets_its_own_id() -> None:
    assert Notification("a", "b").notification_id != Notification("a", "b").notification_id


@pytest.mark.parametrize(
    "subject, text",
    [
        ("", "texto"),
        ("   ", "texto"),
        ("linha\nnova", "texto"),
        ("Sub\r\nBcc: x", "t"),
        ("ok", " "),
    ],
)
def test_bad_notifications(subject: str, text: str) -> None:
    with pytest.raises(ValueError):
        Notification(subject, text)


@pytest.mark.parametrize(
    "filename, mime_type",
    [("", "image/png"), ("../etc/passwd", "text/plain"), ("a\\b.png", "image/png"),
     ("a\nb.png", "image/png"), ("a.png", "png"), ("a.png", "image/")],
)  # fmt: skip
def test_bad_attachments(filename: str, mime_type: str) -> None:
    with pytest.raises(ValueError):
        Attachment(filename, b"x", mime_type)


def test_email_message_layout() -> None:
    note = Notification("Relatório", "texto", html="<p>texto</p>", attachments=[PNG, PDF])
    message = build_message(note, "Pulso <pulso@loja.example.com>", ["a@x.com", "b@y.com"])

    assert message.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    assert message["To"] == "a@x.com, b@y.com"
    assert str(message["Message-ID"]).endswith("@loja.example.com>")


def test_recipients_list() -> None:
    assert parse_recipients(" a@x.com, ,b@y.com ,") == ["a@x.com", "b@y.com"]
    assert parse_recipients("") == []


# ---------------------------------------------------------------------------- text


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    text = "primeiro parágrafo aqui\n\nsegundo parágrafo"
    assert split_text(text, 30) == ["primeiro parágrafo aqui", "segundo parágrafo"]
    assert split_text("linha um curta\nlinha dois", 20) == ["linha um curta", "linha dois"]
    assert split_text("palavra " * 5, 20) == ["palavra palavra", "palavra palavra", "palavra"]


def test_split_cuts_a_word_longer_than_the_limit() -> None:
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_measures_with_the_given_length() -> None:
    text = "😀" * 10  # two UTF-16 units each
    pieces = split_text(text, 8, length=utf16_len)
    assert pieces == ["😀" * 4, "😀" * 4, "😀" * 2]
    assert "".join(pieces) == text


def test_split_keeps_every_character_of_a_long_text() -> None:
    text = "\n\n".join(f"Loja {i}: R$ {i},00 & <alerta>" * (i % 7 + 1) for i in range(200))
    pieces = split_text(text, 300, length=lambda s: len(escape_mrkdwn(s)))
    assert all(len(escape_mrkdwn(p)) <= 300 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_split_of_a_short_text_and_bad_limit() -> None:
    assert split_text("  curto  ", 100) == ["curto"]
    with pytest.raises(ValueError):
        split_text("x", 3)


def test_truncate() -> None:
    assert truncate("curto", 10) == "curto"
    assert truncate("um texto comprido", 10) == "um texto…"
    assert len(truncate("a" * 500, 150)) == 150


# --------------------------------------------------------------------- channel shaping


def test_telegram_html_text_is_escaped_and_split() -> None:
    notifier = TelegramNotifier("1:a", "1")
    note = Notification("Vendas <hoje> & ontem", "R$ 5 < R$ 7 & mais\n\n" + "x" * 5000)

    texts = notifier.message_texts(note)

    assert texts[0].startswith("<b>Vendas &lt;hoje&gt; &amp; ontem</b>\n\nR$ 5 &lt; R$ 7 &amp;")
    shown = [html.unescape(t.replace("<b>", "").replace("</b>", "")) for t in texts]
    assert len(shown) == 2 and all(utf16_len(t) <= 4096 for t in shown)
    assert utf16_len(shown[0]) == 4096  # no paragraph break in the second half: a full cut


def test_slack_payload_escapes_mrkdwn_and_keeps_the_header_plain() -> None:
    payload, warnings = message_payload(Notification("Loja <7> & cia", "a < b & c > d"))

    assert warnings == []
    assert payload["text"] == "Loja &lt;7&gt; &amp; cia"
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "Loja <7> & cia",
        "emoji": True,
    }
    assert payload["blocks"][1]["text"]["text"] == "a &lt; b &amp; c &gt; d"


def test_slack_payload_cut_to_fifty_blocks_says_so() -> None:
    payload, warnings = message_payload(Notification("s", ("x" * 2999 + "\n\n") * 60))
    assert len(payload["blocks"]) == 50
    assert warnings and "text cut" in warnings[0]


@pytest.mark.parametrize(
    "value, seconds",
    [("7", 7.0), (3, 3.0), (2.5, 2.5), ("86400", 60.0), ("-4", 0.0), ("soon", None),
     (None, None), (True, None), ("nan", None), ([], None)],
)  # fmt: skip
def test_retry_after(value: object, seconds: float | None) -> None:
    assert retry_after_s(value) == seconds


# ---------------------------------------------------------------------- progress, redact


def test_progress_skips_done_parts_until_finished() -> None:
    progress, ran = Progress(), []
    progress.run("n1", "text", lambda: ran.append("text"))
    with pytest.raises(RuntimeError):
        progress.run("n1", "pdf", _boom)
    progress.run("n1", "text", lambda: ran.append("text again"))
    progress.run("n1", "pdf", lambda: ran.append("pdf"))
    progress.finish("n1")
    progress.run("n1", "text", lambda: ran.append("text, new send"))

    assert ran == ["text", "pdf", "text, new send"]


def test_progress_forgets_old_notifications() -> None:
    progress, ran = Progress(keep=2), []
    for nid in ("a", "b", "c"):
        progress.run(nid, "text", lambda: None)
    progress.run("a", "text", lambda: ran.append("a"))
    progress.run("c", "text", lambda: ran.append("c"))
    assert ran == ["a"]


def _boom() -> None:
    raise RuntimeError("PDF failed")


def test_redact_masks_longest_secret_first() -> None:
    assert redact("https://h/s/abc/def and abc", ("abc", "https://h/s/abc/def")) == (
        f"{MASK} and {MASK}"
    )
    assert redact("nothing", ("", "zzz")) == "nothing"


def test_http_client_logs_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hide_in_http_logs("9999:segredo-unico")

    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "POST", "https://api/bot9999:segredo-unico/sendMessage", "200"
    )

    assert "segredo-unico" not in caplog.text
    assert f"https://api/bot{MASK}/sendMessage" in caplog.text
