"""EmailNotifier against a real SMTP server on loopback (aiosmtpd): plain, STARTTLS, SSL.

The TLS tests use a self-signed certificate made for the test by the ``openssl`` command.
"""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pulso.notify import (
    Attachment,
    Notification,
    NotifyRejectedError,
    NotifyUnavailableError,
    deliver,
    notifiers_from_settings,
)
from pulso.notify.email import EmailNotifier

SENDER = "relatorios@pulso.example.com"
RECIPIENTS = ("dona.maria@padaria.example.com", "contador@escritorio.example.com")
USER = "pulso-bot"
PASSWORD = "s3nha-smtp-muito-secreta"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # bytes of every value survive base64
PDF = b"%PDF-1.4\n" + bytes(range(255, -1, -1)) * 8 + b"\n%%EOF\n"


@dataclass
class Received:
    """What the server got: envelopes and the state of each session at DATA."""

    envelopes: list[Envelope] = field(default_factory=list)
    tls_at_data: list[bool] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    data_replies: list[str] = field(default_factory=list)  # one reply per DATA, then 250

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)  # decode_data=False: the raw bytes
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class Handler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.received.refuse_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.received.data_replies:
            return self.received.data_replies.pop(0)
        self.received.envelopes.append(envelope)
        # STARTTLS sets session.ssl; implicit TLS (SMTP_SSL) shows on the transport only.
        transport = server.transport
        on_tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.received.tls_at_data.append(on_tls)
        return "250 Message accepted for delivery"


def _authenticator(received: Received) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        received.logins.append((data.login, data.password))
        ok = data.login == USER.encode() and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    return check


def _free_port() -> int:
    # aiosmtpd's Controller connects to its own port to check it started, so port 0 cannot
    # be handed to it; take a free one from the kernel instead.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies as in production, trusting only the test's own certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command makes the test certificate: apt-get install openssl")
    folder = tmp_path_factory.mktemp("tls")
    files = TLSFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(files.key),
         "-out", str(files.cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return files


@dataclass
class Server:
    port: int
    received: Received


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    """Starts aiosmtpd on 127.0.0.1 with the given SMTP options; stopped after the test."""
    controllers: list[Controller] = []

    def start(**options: Any) -> Server:
        received = Received()
        port = _free_port()
        controller = Controller(
            Handler(received),
            hostname="127.0.0.1",
            port=port,
            server_hostname="mail.test",
            authenticator=_authenticator(received),
            **options,
        )
        controller.start()
        controllers.append(controller)
        return Server(port, received)

    yield start
    for controller in controllers:
        controller.stop()


def _notification(**overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "subject": "Relatório diário — 12/05/2025",
        "text": "Vendas de ontem: R$ 1.234,56 em 87 pedidos.\nTicket médio: R$ 14,19.",
        "html": "<p>Vendas de ontem: <b>R$ 1.234,56</b> em 87 pedidos.</p>",
        "attachments": [
            Attachment("mapa_calor_hora.png", PNG, "image/png"),
            Attachment("relatorio_2025-05-12.pdf", PDF, "application/pdf"),
        ],
    }
    fields.update(overrides)
    return Notification(**fields)


def _notifier(port: int, **overrides: Any) -> EmailNotifier:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": SENDER,
        "recipients": RECIPIENTS,
        "timeout_s": 10.0,
        "local_hostname": "pulso.test",
    }
    options.update(overrides)
    return EmailNotifier(**options)


def _attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    return {
        str(part.get_filename()): (part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    }


def test_plain_smtp_delivers_text_html_and_attachments(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    result = _notifier(server.port).send(_notification())

    assert result.warnings == ()
    assert server.received.tls_at_data == [False]
    [envelope] = server.received.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == list(RECIPIENTS)
    [message] = server.received.messages()
    assert message["Subject"] == "Relatório diário — 12/05/2025"
    assert message["From"] == SENDER
    assert [a.strip() for a in str(message["To"]).split(",")] == list(RECIPIENTS)
    assert message["Message-ID"].endswith("@pulso.example.com>")
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n").strip() == _notification().text
    assert "<b>R$ 1.234,56</b>" in html.get_content()
    assert _attachments(message) == {
        "mapa_calor_hora.png": ("image/png", PNG),
        "relatorio_2025-05-12.pdf": ("application/pdf", PDF),
    }


def test_text_only_message_has_no_attachment(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    _notifier(server.port, recipients=[RECIPIENTS[0]]).send(
        _notification(html=None, attachments=[])
    )

    [message] = server.received.messages()
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip().startswith("Vendas de ontem: R$ 1.234,56")
    assert server.received.envelopes[0].rcpt_tos == [RECIPIENTS[0]]


def test_starttls_upgrades_before_login(
    smtp_server: Callable[..., Server], tls_files: TLSFiles
) -> None:
    server = smtp_server(
        tls_context=tls_files.server_context(), require_starttls=True, auth_required=True
    )
    notifier = _notifier(
        server.port,
        security="starttls",
        user=USER,
        password=PASSWORD,
        ssl_context=tls_files.client_context(),
    )
    notifier.send(_notification())

    assert server.received.tls_at_data == [True]
    assert server.received.logins == [(USER.encode(), PASSWORD.encode())]
    assert _attachments(server.received.messages()[0])["mapa_calor_hora.png"][1] == PNG


def test_starttls_refuses_an_untrusted_certificate(
    smtp_server: Callable[..., Server], tls_files: TLSFiles
) -> None:
    server = smtp_server(tls_context=tls_files.server_context(), require_starttls=True)
    notifier = _notifier(server.port, security="starttls", user=USER, password=PASSWORD)

    with pytest.raises(NotifyRejectedError, match="certificate is not trusted"):
        notifier.send(_notification())
    assert server.received.logins == [] and server.received.envelopes == []


def test_implicit_ssl(smtp_server: Callable[..., Server], tls_files: TLSFiles) -> None:
    # aiosmtpd advertises AUTH on implicit TLS only when told TLS is not required for it.
    server = smtp_server(ssl_context=tls_files.server_context(), auth_require_tls=False)
    notifier = _notifier(
        server.port,
        security="ssl",
        user=USER,
        password=PASSWORD,
        ssl_context=tls_files.client_context(),
    )
    notifier.send(_notification())

    assert server.received.tls_at_data == [True]
    assert server.received.logins == [(USER.encode(), PASSWORD.encode())]


def test_starttls_against_a_server_without_it_names_the_setting(
    smtp_server: Callable[..., Server],
) -> None:
    server = smtp_server()
    with pytest.raises(NotifyRejectedError, match=r"does not offer STARTTLS.*PULSO_SMTP_SECURITY"):
        _notifier(server.port, security="starttls").send(_notification())


def test_wrong_password_is_final_and_never_shown(
    smtp_server: Callable[..., Server], tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = smtp_server(tls_context=tls_files.server_context(), require_starttls=True)
    notifier = _notifier(
        server.port,
        security="starttls",
        user=USER,
        password="senha-errada-123",
        ssl_context=tls_files.client_context(),
    )

    report = deliver(_notification(), [notifier], retries=3, backoff=0.0, sleep=lambda s: None)

    outcome = report.result("email")
    assert not outcome.ok and outcome.attempts == 1
    assert "refused the login" in str(outcome.error)
    assert "PULSO_SMTP_PASSWORD" in str(outcome.error)
    assert "senha-errada-123" not in str(outcome.error) + caplog.text
    assert server.received.envelopes == []


def test_temporary_refusal_is_retried_by_deliver(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    server.received.data_replies.append("451 4.3.0 Mail server temporarily rejected message")
    waits: list[float] = []

    report = deliver(_notification(), [_notifier(server.port)], retries=3, backoff=2.0,
                     sleep=waits.append)  # fmt: skip

    assert report.ok and report.result("email").attempts == 2
    assert waits == [2.0]
    assert len(server.received.envelopes) == 1


def test_permanent_refusal_is_not_retried(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    server.received.data_replies.append("554 5.6.0 Message rejected as spam")

    report = deliver(_notification(), [_notifier(server.port)], retries=3, backoff=0.0,
                     sleep=lambda s: None)  # fmt: skip

    outcome = report.result("email")
    assert not outcome.ok and outcome.attempts == 1
    assert "554" in str(outcome.error) and "spam" in str(outcome.error)


def test_one_refused_recipient_is_a_warning_without_the_address(
    smtp_server: Callable[..., Server],
) -> None:
    server = smtp_server()
    server.received.refuse_rcpt.add(RECIPIENTS[1])

    result = _notifier(server.port).send(_notification())

    assert result.warnings == ("1 of 2 recipients refused by the server",)
    assert server.received.envelopes[0].rcpt_tos == [RECIPIENTS[0]]


def test_every_recipient_refused_is_final_and_hides_addresses(
    smtp_server: Callable[..., Server],
) -> None:
    server = smtp_server()
    server.received.refuse_rcpt.update(RECIPIENTS)

    with pytest.raises(NotifyRejectedError) as raised:
        _notifier(server.port).send(_notification())
    assert "PULSO_EMAIL_TO" in str(raised.value) and "550" in str(raised.value)
    assert not any(address in str(raised.value) for address in RECIPIENTS)


def test_no_server_listening_is_worth_retrying() -> None:
    notifier = _notifier(_free_port())
    with pytest.raises(NotifyUnavailableError, match=r"cannot reach 127\.0\.0\.1"):
        notifier.send(_notification())


def test_login_in_the_clear_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="in the clear"):
        _notifier(25, user=USER, password=PASSWORD)


def test_built_from_settings(smtp_server: Callable[..., Server], settings_factory: Any) -> None:
    server = smtp_server()
    settings = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="none",
        email_from=SENDER,
        email_to=" , ".join(RECIPIENTS) + ",",
    )
    [notifier] = notifiers_from_settings(settings, ["email"])

    report = deliver(_notification(), [notifier], retries=settings.notify_retries, backoff=0.0)

    assert report.ok
    assert server.received.envelopes[0].rcpt_tos == list(RECIPIENTS)
