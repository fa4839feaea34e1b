"""What a person reads about an alert: Brazilian-Portuguese labels, times and messages.

Times are shown as ``dd/mm/aaaa HH:MM`` in America/Sao_Paulo, money as ``R$ 1.234,56``.
Whatever a detector wrote goes through :func:`hide_documents` first, so a CPF or CNPJ that
slipped into an alert's message never reaches a channel, a log line or the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count, format_decimal
from pulso.domain.timefmt import DISPLAY_ZONE, format_local

SEVERITIES: Final = ("info", "warning", "critical")
SEVERITY_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(SEVERITIES)}
SEVERITY_LABELS: Final[dict[str, str]] = {
    "info": "informativo",
    "warning": "atenção",
    "critical": "crítico",
}
KIND_LABELS: Final[dict[str, str]] = {
    "card_testing": "Rajada de valores baixos (teste de cartão)",
    "velocity": "Pagador em muitas lojas em poucos minutos",
    "amount_spike": "Valor muito acima do normal da loja",
    "impossible_travel": "Deslocamento impossível entre cidades",
    "night_high_value": "Valor alto de madrugada",
    "fail_then_success": "Várias falhas seguidas de sucesso",
    "duplicate_charge": "Cobrança duplicada",
    "risk": "Pagamento de alto risco",
    "score": "Pagamento de alto risco",
    "top_n_entry": "Produto entrou no top do Mercado Livre",
}
MASKED_DOCUMENT: Final = "[documento oculto]"

# A CPF (11 digits, optionally 000.000.000-00) or a CNPJ (14 digits, optionally
# 00.000.000/0000-00), not inside a longer run of digits nor right after a Mercado Livre site
# prefix (MLB1234567890 is an item id, not a document).
_DOCUMENT = re.compile(
    r"(?<!\d)(?<!\d\.)(?<!ML[A-Z])(?:\d{3}\.?\d{3}\.?\d{3}-?\d{2}|\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2})(?![\d])"
)


def hide_documents(text: str) -> str:
    """``text`` with every CPF- or CNPJ-shaped number replaced by a mask."""
    return _DOCUMENT.sub(MASKED_DOCUMENT, text)


def severity_rank(severity: str) -> int:
    """0 info, 1 warning, 2 critical; an unknown word counts as a warning."""
    return SEVERITY_RANK.get(severity, SEVERITY_RANK["warning"])


def kind_label(kind: str) -> str:
    """``fraud.velocity`` -> its Portuguese name; unknown kinds are shown as they are."""
    family, _, rule = kind.partition(".")
    return KIND_LABELS.get(rule or family, kind)


def is_fraud(kind: str) -> bool:
    return kind == "fraud" or kind.startswith("fraud.")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a subject is: a registered store's name, city and UF."""

    name: str
    city: str
    uf: str


@dataclass(frozen=True, slots=True)
class Payment:
    """The payment an alert points at (``details.charge_id``), as the store has it."""

    amount_cents: int | None
    city: str | None
    uf: str | None


def subject_label(subject: str, place: Place | None) -> str:
    """``loja LJ-0001 (Padaria Central, Recife/PE)``; a subject that is no registered store
    is a payer's keyed hash, shown shortened."""
    if place is not None:
        return f"loja {subject} ({place.name}, {place.city}/{place.uf})"
    if subject.startswith(("LJ-", "loja", "store")):
        return f"loja {subject}"
    shown = subject if len(subject) <= 12 else f"{subject[:12]}…"
    return f"pagador {hide_documents(shown)}"


def local_time(at: datetime) -> str:
    return format_local(at, zone=DISPLAY_ZONE)


def span(first: datetime, last: datetime) -> str:
    """``24/11/2026 01:02`` or ``24/11/2026 01:02 a 01:05`` (or to another day's time)."""
    a, b = local_time(first), local_time(last)
    if a == b:
        return a
    same_day = first.astimezone(DISPLAY_ZONE).date() == last.astimezone(DISPLAY_ZONE).date()
    return f"{a} a {b[11:] if same_day else b}"


@dataclass(frozen=True, slots=True)
class NoticeText:
    """What an alert notice says (``subject`` one line, ``text`` a few)."""

    subject: str
    text: str


def notice_text(
    *,
    kind: str,
    severity: str,
    subject: str,
    message: str,
    count: int,
    first_at: datetime,
    last_at: datetime,
    details: Mapping[str, Any],
    place: Place | None = None,
    payment: Payment | None = None,
    previous_count: int = 0,
) -> NoticeText:
    """The Portuguese message of a notice; ``previous_count`` > 0 makes it the summary sent
    when the throttle window closes after more alerts of the same kind and subject."""
    label = kind_label(kind)
    severity_word = SEVERITY_LABELS.get(severity, severity)
    who = subject_label(subject, place)
    family = "Alerta de fraude" if is_fraud(kind) else "Alerta"
    times = f"{format_count(count)}×" if count > 1 else ""
    title = f"{family} ({severity_word}): {label} · {who}"
    one_line = f"[pulso] {title}{f' · {times}' if times else ''}"
    lines = [title]
    if previous_count:
        more = count - previous_count
        lines.append(
            f"Resumo: mais {format_count(more)} ocorrência{'s' if more != 1 else ''} desde o "
            f"aviso anterior, {format_count(count)} no total."
        )
    occurrences = "ocorrência" if count == 1 else "ocorrências"
    lines.append(
        f"{format_count(count)} {occurrences} em {span(first_at, last_at)} (horário de Brasília)."
    )
    lines.append(f"Motivo: {hide_documents(message.strip())}")
    facts = _facts(details, payment)
    if facts:
        lines.append(" · ".join(facts))
    lines.append("Veja a lista completa na página Fraude do painel ou em GET /v1/alerts.")
    return NoticeText(" ".join(one_line.split())[:250], "\n".join(lines))


def _facts(details: Mapping[str, Any], payment: Payment | None) -> list[str]:
    facts: list[str] = []
    charge_id = details.get("charge_id")
    if isinstance(charge_id, str) and charge_id:
        facts.append(f"Cobrança {hide_documents(charge_id)}")
    cents = _amount_cents(details, payment)
    if cents is not None:
        facts.append(f"valor {format_brl(cents, cents=True)}")
    if payment is not None and payment.city and payment.uf:
        facts.append(f"{payment.city}/{payment.uf}")
    score = _number(details.get("risk_score"))
    if score is not None:
        facts.append(f"risco {format_decimal(score, places=2)}")
    return facts


def _amount_cents(details: Mapping[str, Any], payment: Payment | None) -> int | None:
    value = _number(details.get("amount_cents"))
    if value is not None:
        return int(value)
    reais = details.get("amount")  # a decimal string in reais, as the fraud processor writes
    if isinstance(reais, str):
        try:
            return int((Decimal(reais) * 100).to_integral_value())
        except (InvalidOperation, ValueError):
            pass
    if payment is not None:
        return payment.amount_cents
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
