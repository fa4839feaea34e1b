"""The SMTP server: connect, EHLO, STARTTLS and login as the e-mail channel would, then quit
without sending anything."""

from __future__ import annotations

import smtplib
import ssl

from pulso.config import Settings
from pulso.doctor.result import Finding, failed, first_line, not_configured, ok

COMPONENT = "notifier (e-mail)"
_SERVER_FIX = (
    "check PULSO_SMTP_HOST / PULSO_SMTP_PORT / PULSO_SMTP_SECURITY (starttls on 587, ssl on "
    "465) and that this machine may reach the server"
)


def check_email(
    settings: Settings, timeout_s: float, ssl_context: ssl.SSLContext | None = None
) -> list[Finding]:
    if not settings.smtp_host:
        return [not_configured(COMPONENT, "PULSO_SMTP_HOST is not set")]
    missing = [
        name
        for name, value in (
            ("PULSO_EMAIL_FROM", settings.email_from),
            ("PULSO_EMAIL_TO", settings.email_to),
        )
        if not value.strip()
    ]
    if missing:
        return [failed(COMPONENT, f"{' and '.join(missing)} not set", f"set {', '.join(missing)}")]
    security = settings.smtp_security
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    if settings.smtp_user and security == "none":
        return [
            failed(
                COMPONENT,
                "a login is set but PULSO_SMTP_SECURITY=none would send the password in the clear",
                "set PULSO_SMTP_SECURITY=starttls (or ssl)",
            )
        ]
    where = f"{settings.smtp_host}:{settings.smtp_port} ({security})"
    context = ssl_context or ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s)
        try:
            code, reply = smtp.ehlo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
            if security == "starttls":
                if not smtp.has_extn("starttls"):
                    return [
                        failed(
                            COMPONENT,
                            f"{where}: the server does not offer STARTTLS",
                            "use PULSO_SMTP_SECURITY=ssl with port 465, or the port that offers "
                            "STARTTLS (587)",
                        )
                    ]
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPAuthenticationError as e:
        return [
            failed(
                COMPONENT,
                f"{where}: login refused ({e.smtp_code})",
                "check PULSO_SMTP_USER / PULSO_SMTP_PASSWORD (many providers want an app password)",
            )
        ]
    except smtplib.SMTPResponseException as e:
        raw: object = e.smtp_error
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return [
            failed(
                COMPONENT,
                f"{where}: the server refused ({e.smtp_code} {text.strip()[:80]})",
                _SERVER_FIX,
            )
        ]
    except ssl.SSLError as e:
        return [failed(COMPONENT, f"{where}: TLS failed ({first_line(e)})", _SERVER_FIX)]
    except (smtplib.SMTPException, OSError) as e:
        return [failed(COMPONENT, f"{where}: {first_line(e)}", _SERVER_FIX)]
    login = f"logged in as {settings.smtp_user}" if settings.smtp_user else "no login configured"
    return [ok(COMPONENT, f"{where}: EHLO accepted, {login}; nothing sent")]
