"""E-mail as a channel (smtplib): plain text, an optional HTML alternative, attachments.

Security is chosen, never guessed: ``starttls`` (usually port 587) upgrades the connection
before logging in, ``ssl`` (usually 465) speaks TLS from the first byte, ``none`` sends in the
clear and so refuses to log in. Certificates are verified against the system's authorities
unless the caller passes its own :class:`ssl.SSLContext`.

SMTP replies 4xx (and lost connections, timeouts) are passing failures; 5xx are final. A
recipient refused while others accepted is a warning: repeating the send would duplicate it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final, Literal

from pulso.notify.errors import NotifyError, NotifyRejectedError, NotifyUnavailableError
from pulso.notify.message import Notification
from pulso.notify.protocol import SendResult

Security = Literal["starttls", "ssl", "none"]
SECURITY_MODES: Final = ("starttls", "ssl", "none")
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")


class EmailNotifier:
    """One e-mail to every recipient, through an SMTP server."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        security: Security = "starttls",
        user: str = "",
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        if not host or not sender or not recipients:
            raise ValueError("an SMTP host, a sender and at least one recipient are required")
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if user and security == "none":
            raise ValueError("logging in without TLS would send the password in the clear")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self._host, self._port = host, port
        self._sender = sender
        self._recipients = tuple(recipients)
        self._security = security
        self._user, self._password = user, password
        # An explicit context lets a caller trust a private authority (or a test's own).
        self._ssl_context = ssl_context
        self._timeout_s = timeout_s
        self._local_hostname = local_hostname

    def __repr__(self) -> str:
        return (
            f"EmailNotifier(host={self._host!r}, port={self._port}, "
            f"security={self._security!r}, recipients={len(self._recipients)})"
        )

    def send(self, notification: Notification) -> SendResult:
        message = build_message(notification, self._sender, self._recipients)
        try:
            smtp = self._connect()
            try:
                if self._user:
                    smtp.login(self._user, self._password)
                refused = smtp.send_message(message)
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as e:
            # Not chained: smtplib's exceptions carry the refused addresses (personal data).
            raise self._error(e) from None
        if not refused:
            return SendResult()
        return SendResult(
            (f"{len(refused)} of {len(self._recipients)} recipients refused by the server",)
        )

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        if self._security == "ssl":
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout_s,
                context=context,
            )
        smtp = smtplib.SMTP(
            self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout_s
        )
        if self._security == "starttls":
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _error(self, error: smtplib.SMTPException | OSError) -> NotifyError:
        """The error an SMTP failure means, with what fixes it; never an address or secret."""
        where = f"{self._host}:{self._port}"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return NotifyRejectedError(
                self.name,
                f"{where} refused the login ({error.smtp_code}): check PULSO_SMTP_USER and "
                "PULSO_SMTP_PASSWORD",
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            missing = "STARTTLS" if "STARTTLS" in str(error) else "AUTH (login)"
            return NotifyRejectedError(
                self.name,
                f"{where} does not offer {missing}: check PULSO_SMTP_SECURITY "
                "(ssl for port 465, starttls for 587) and PULSO_SMTP_PORT",
            )
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = sorted({code for code, _ in error.recipients.values()})
            return _by_code(  # all 4xx (greylisting, full mailbox) may pass: retry
                self.name,
                max(codes),
                f"{where} refused every recipient ({', '.join(map(str, codes))}): check "
                "PULSO_EMAIL_TO",
            )
        if isinstance(error, smtplib.SMTPSenderRefused):
            return _by_code(
                self.name,
                error.smtp_code,
                f"{where} refused the sender ({error.smtp_code} {_said(error.smtp_error)}): "
                "check PULSO_EMAIL_FROM",
            )
        if isinstance(error, smtplib.SMTPResponseException):
            said = _said(error.smtp_error)
            return _by_code(
                self.name, error.smtp_code, f"{where} answered {error.smtp_code} {said}"
            )
        if isinstance(error, ssl.SSLCertVerificationError):
            return NotifyRejectedError(
                self.name,
                f"{where}: the server's certificate is not trusted ({error.verify_message})",
            )
        if isinstance(error, smtplib.SMTPException):
            return NotifyUnavailableError(self.name, f"{where}: {type(error).__name__}")
        if isinstance(error, TimeoutError):
            return NotifyUnavailableError(self.name, f"{where}: no answer in {self._timeout_s} s")
        reason = error.strerror or type(error).__name__
        return NotifyUnavailableError(self.name, f"cannot reach {where}: {reason}")


def build_message(
    notification: Notification, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """The e-mail: text, then the HTML alternative, then each attachment."""
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    message.set_content(notification.text)
    if notification.html:
        message.add_alternative(notification.html, subtype="html")
    for attachment in notification.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def parse_recipients(value: str) -> list[str]:
    """``a@x.com, b@y.com`` as a list, empty entries dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a failing QUIT after the message went through must not fail the send."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _by_code(channel: str, code: int, reason: str) -> NotifyError:
    if 400 <= code < 500:
        return NotifyUnavailableError(channel, reason)
    return NotifyRejectedError(channel, reason)


def _said(reply: bytes | str) -> str:
    """A server reply fit for a message: one short line, e-mail addresses hidden."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = _ADDRESS.sub("<address>", " ".join(text.split()))
    return text if len(text) <= 120 else text[:119] + "…"


def _domain(address: str) -> str | None:
    _, at, domain = address.rpartition("@")
    domain = domain.strip(" >")
    return domain if at and domain else None
