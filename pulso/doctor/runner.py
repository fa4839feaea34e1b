"""Runs every check at once, each in its own thread with a deadline, and masks secrets.

A check that overruns its deadline is reported failed and left behind (daemon thread): a
dead host never holds the command up for longer than the timeout and a small margin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import urlsplit

from pydantic import SecretStr

from pulso.config import Settings
from pulso.doctor.result import Finding, failed, first_line
from pulso.notify.redact import redact

Check = Callable[[Settings, float], list[Finding]]
GRACE_S: Final = 2.0
"""Beyond the timeout, time for a check to import its library and report what it saw."""


@dataclass(frozen=True, slots=True)
class NamedCheck:
    component: str
    run: Check
    fix: str


def default_checks() -> list[NamedCheck]:
    from pulso.doctor.buckets import check_archive, check_bucket
    from pulso.doctor.bus import check_bus
    from pulso.doctor.datadir import check_data_dir
    from pulso.doctor.email import check_email
    from pulso.doctor.store import check_store
    from pulso.doctor.web import check_llm, check_psp, check_slack, check_telegram

    return [
        NamedCheck("data dir", check_data_dir, "check PULSO_DATA_DIR"),
        NamedCheck("bus", check_bus, "check PULSO_BUS_URL and that the brokers run"),
        NamedCheck("store", check_store, "check PULSO_STORE_URL and that the database runs"),
        NamedCheck("bucket", check_bucket, "check PULSO_BUCKET_URL / PULSO_S3_ENDPOINT_URL"),
        NamedCheck("archive", check_archive, "check PULSO_ARCHIVE_URL / PULSO_S3_ENDPOINT_URL"),
        NamedCheck("PSP", check_psp, "check PULSO_MERCADOPAGO_BASE_URL"),
        NamedCheck("notifier (e-mail)", check_email, "check PULSO_SMTP_HOST / PULSO_SMTP_PORT"),
        NamedCheck("notifier (Telegram)", check_telegram, "check PULSO_TELEGRAM_API_URL"),
        NamedCheck("notifier (Slack)", check_slack, "check PULSO_SLACK_API_URL"),
        NamedCheck("LLM", check_llm, "check PULSO_LLM_URL"),
    ]


@dataclass
class _Slot:
    check: NamedCheck
    findings: list[Finding] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def run_checks(
    settings: Settings, timeout_s: float, checks: Sequence[NamedCheck] | None = None
) -> list[Finding]:
    """Every check's findings, in the checks' order, with every secret masked."""
    slots = [_Slot(c) for c in (default_checks() if checks is None else checks)]
    for slot in slots:
        threading.Thread(
            target=_run_one, args=(slot, settings, timeout_s), daemon=True,
            name=f"doctor-{slot.check.component}",
        ).start()  # fmt: skip
    deadline = threading.Event()
    timer = threading.Timer(timeout_s + GRACE_S, deadline.set)
    timer.daemon = True
    timer.start()
    try:
        for slot in slots:
            while not slot.done.wait(0.05) and not deadline.is_set():
                pass
    finally:
        timer.cancel()
    found: list[Finding] = []
    for slot in slots:
        if slot.done.is_set():
            found.extend(slot.findings)
        else:
            found.append(
                failed(slot.check.component, f"no answer within {timeout_s:g} s", slot.check.fix)
            )
    hidden = secrets_of(settings)
    return [_masked(f, hidden) for f in found]


def _run_one(slot: _Slot, settings: Settings, timeout_s: float) -> None:
    try:
        slot.findings = slot.check.run(settings, timeout_s)
    except Exception as e:  # a bug in one check must not hide the others' findings
        slot.findings = [
            failed(
                slot.check.component,
                f"the check itself failed: {type(e).__name__}: {first_line(e)}",
                slot.check.fix,
            )
        ]
    finally:
        slot.done.set()


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret value the settings hold: SecretStr fields, passwords in URLs, and the
    path of a Slack webhook (the URL is the secret)."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            found.append(secret)
            if name == "slack_webhook_url" and "://" in secret:
                path = urlsplit(secret).path
                if len(path) > 1:
                    found.append(path)
        elif name.endswith("_url") and isinstance(value, str) and "://" in value:
            password = urlsplit(value).password
            if password:
                found.append(password)
    return tuple(s for s in found if len(s) >= 4)


def _masked(finding: Finding, hidden: tuple[str, ...]) -> Finding:
    return replace(
        finding,
        component=redact(finding.component, hidden),
        detail=redact(finding.detail, hidden),
        fix=redact(finding.fix, hidden),
    )
