"""`pulso report build` and `pulso report send` over a store the real pipeline filled; the
e-mail goes through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pypdf import PdfReader
from typer.testing import CliRunner

from pulso.analytics.heatmaps import HEATMAPS
from pulso.cli import app
from pulso.config import Settings, load_settings
from pulso.reports.payments_report import KEY_PICTURES
from pulso.reports.send import scheduled_report_job
from pulso.store import open_store

PERIOD = ["--from", "2026-11-16", "--to", "2026-11-17"]
FOLDER = "relatorio_2026-11-16_2026-11-17"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    handler = _Inbox()
    port = _free_port()  # aiosmtpd checks it started by connecting to its port: not 0
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("PULSO_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PULSO_SMTP_PORT", str(port))
        monkeypatch.setenv("PULSO_SMTP_SECURITY", "none")
        monkeypatch.setenv("PULSO_EMAIL_FROM", "relatorios@pulso.example.com")
        monkeypatch.setenv("PULSO_EMAIL_TO", "dona.maria@padaria.example.com")
        yield handler
    finally:
        controller.stop()


def test_build_writes_the_whole_report_and_the_pdf_renders_every_page(
    filled: Settings, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["report", "build", *PERIOD])
    assert result.exit_code == 0, result.output
    folder = filled.data_dir / "reports" / FOLDER
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(
        spec.file_name for spec in HEATMAPS.values()
    )
    assert (folder / "relatorio_mapas_calor.html").read_text(encoding="utf-8").count(
        '<table class="hm"'
    ) == 34
    reading = (folder / "leitura.md").read_text(encoding="utf-8")
    assert "R$" in reading
    assert "reading (deterministic)" in result.output
    pdf = folder / "relatorio_pagamentos.pdf"
    pages = len(PdfReader(pdf).pages)
    assert pages > 34  # cover, reading, tables and one page per heatmap
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm is needed (scripts/ensure-tools.sh installs poppler-utils)"
    subprocess.run(
        [pdftoppm, "-r", "20", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120
    )
    assert len(list(tmp_path.glob("page*.png"))) == pages


def test_send_mails_the_report_with_its_attachments(filled: Settings, inbox: _Inbox) -> None:
    result = CliRunner().invoke(app, ["report", "send", *PERIOD, "--channels", "email"])
    assert result.exit_code == 0, result.output
    assert "email: sent (1 attempt)" in result.output
    [message] = inbox.messages
    assert message["Subject"] == "Relatório de pagamentos PIX · 16/11/2026 a 17/11/2026"
    body = message.get_body(("plain",))
    assert body is not None and "Leitura do período" in body.get_content()
    attached = {part.get_filename(): part for part in message.iter_attachments()}
    folder = filled.data_dir / "reports" / FOLDER
    expected = {
        "relatorio_pagamentos.pdf",
        "relatorio_mapas_calor.html",
        *(f"mapa_calor_{name}.png" for name in KEY_PICTURES),
    }
    assert set(attached) == expected
    for name, part in attached.items():
        assert part.get_payload(decode=True) == (folder / name).read_bytes(), name


def test_a_failing_channel_is_reported_and_does_not_stop_the_others(
    filled: Settings, inbox: _Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSO_TELEGRAM_BOT_TOKEN", "123456:segredo-do-bot")
    monkeypatch.setenv("PULSO_TELEGRAM_CHAT_ID", "-1001234")
    monkeypatch.setenv("PULSO_TELEGRAM_API_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("PULSO_NOTIFY_RETRIES", "1")
    result = CliRunner().invoke(app, ["report", "send", *PERIOD])  # every configured channel
    assert result.exit_code == 1, result.output
    assert "email: sent" in result.output
    assert "telegram: failed after 1 attempt" in result.output
    assert "segredo-do-bot" not in result.output
    assert len(inbox.messages) == 1


def test_send_without_any_channel_says_what_to_set(filled: Settings) -> None:
    result = CliRunner().invoke(app, ["report", "send", *PERIOD])
    assert result.exit_code == 1
    assert "no delivery channel is configured" in result.output
    assert "PULSO_SMTP_HOST" in result.output


def test_asking_for_an_unconfigured_channel_names_its_settings(filled: Settings) -> None:
    result = CliRunner().invoke(app, ["report", "send", *PERIOD, "--channels", "slack"])
    assert result.exit_code == 1
    assert "PULSO_SLACK_WEBHOOK_URL" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "last-month"], "use yesterday or last-week"),
        (["--from", "2026-11-16"], "give both --from and --to"),
        (["--from", "2026-11-17", "--to", "2026-11-16"], "--from is after --to"),
    ],
)
def test_bad_periods_are_clear_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["report", "build", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_the_scheduled_job_sends_the_period_it_is_due_for(filled: Settings, inbox: _Inbox) -> None:
    settings = load_settings()  # with the SMTP settings of `inbox`
    store = open_store(settings)
    try:
        scheduled_report_job(store, settings)("yesterday", date(2026, 11, 17))
    finally:
        store.close()
    [message] = inbox.messages
    assert message["Subject"] == "Relatório de pagamentos PIX · 16/11/2026"
    assert (settings.data_dir / "reports" / "relatorio_2026-11-16" / "leitura.md").exists()


def test_the_scheduled_job_without_channels_still_writes_the_report(
    filled: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(filled)
    try:
        with caplog.at_level(logging.WARNING, logger="pulso.reports.send"):
            scheduled_report_job(store, filled)("last-week", date(2026, 11, 23))
    finally:
        store.close()
    folder = filled.data_dir / "reports" / "relatorio_2026-11-16_2026-11-22"
    assert (folder / "relatorio_pagamentos.pdf").exists()
    assert "not sent: no delivery channel is configured" in caplog.text
