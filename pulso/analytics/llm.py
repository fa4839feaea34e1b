"""Optionally rewrite the written reading with an LLM, through any OpenAI-compatible endpoint.

``PULSO_LLM_URL`` is the API base (``https://api.openai.com/v1``, Ollama's
``http://127.0.0.1:11434/v1``, vLLM, LM Studio...); pulso POSTs
``{base}/chat/completions`` with ``model``, a system and a user message, and ``temperature``,
and reads ``choices[0].message.content``. ``PULSO_LLM_API_KEY``, when set, goes as
``Authorization: Bearer``.

What leaves the machine: the deterministic reading and the period's aggregates (totals, tables
by hour, day, part of the day, city and store, confirmation times): business figures with store
and city names, never payer data (the KPIs hold none). The answer replaces the bullets only
when it is usable; on a timeout, an HTTP or connection error, an answer that is not the
chat-completions shape, or an empty or overlong one, a warning is logged (no key, no URL, no
answer text) and the deterministic reading is returned: the report always goes out.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final

import httpx

from pulso.analytics.insights import Insight, Reading
from pulso.analytics.kpis import KpiRow, PeriodKpis
from pulso.config import Settings
from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_decimal, format_period
from pulso.errors import PulsoError

logger = logging.getLogger(__name__)

TEMPERATURE: Final = 0.2
MAX_ANSWER_CHARS: Final = 4000
MAX_BULLETS: Final = 10
TOP_ROWS: Final = 10
"""Cities, stores and slow cities sent: the first ``TOP_ROWS`` of each table."""

SYSTEM_PROMPT: Final = (
    "Você é analista de pagamentos PIX de uma rede de lojas no Brasil e escreve para o dono "
    "do negócio. Reescreva a leitura do relatório em português do Brasil, de forma clara e "
    "direta, em 5 a 8 tópicos curtos, um por linha, cada um começando com '- '. Use somente "
    "os números fornecidos, exatamente como aparecem (R$ 1.234,56, dd/mm/aaaa, 12,5%); não "
    "invente nem recalcule números. Aponte o que merece ação: picos, horários ociosos, preços "
    "baixos, confirmação lenta e variações frente ao período anterior. Sem título, sem "
    "introdução e sem conclusão."
)

_THINKING: Final = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_BULLET: Final = re.compile(r"^\s*(?:[-*]\s+|•\s*|\d{1,2}[.)]\s+)")
_EMPHASIS: Final = re.compile(r"\*\*")


class LlmAnswerError(PulsoError):
    """The LLM endpoint answered something that is not a usable chat completion."""


def rewrite_reading(
    reading: Reading,
    kpis: PeriodKpis,
    settings: Settings,
    *,
    http: httpx.Client | None = None,
) -> Reading:
    """``reading`` rewritten by the configured LLM (``source="llm"``), or ``reading`` itself
    when no LLM is configured or the call fails (see the module docstring)."""
    if not settings.llm_url:
        return reading
    if not settings.llm_model:
        logger.warning("PULSO_LLM_URL is set but PULSO_LLM_MODEL is empty: LLM rewrite skipped")
        return reading
    try:
        answer = _ask(chat_request(reading, kpis, settings.llm_model), settings, http)
        insights = _bullets(answer)
    except httpx.TimeoutException:
        logger.warning(
            "LLM gave no answer within %s s: using the deterministic reading",
            settings.llm_timeout_s,
        )
    except httpx.HTTPStatusError as e:
        logger.warning(
            "LLM endpoint answered HTTP %s: using the deterministic reading",
            e.response.status_code,
        )
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        logger.warning(
            "LLM endpoint unreachable (%s): using the deterministic reading", type(e).__name__
        )
    except LlmAnswerError as e:
        logger.warning("LLM answer unusable (%s): using the deterministic reading", e)
    else:
        return Reading(reading.title, insights, source="llm")
    return reading


def chat_request(reading: Reading, kpis: PeriodKpis, model: str) -> dict[str, Any]:
    """The chat-completions request body: the reading and the aggregates, nothing else."""
    user = (
        "Leitura determinística do relatório:\n"
        f"{reading.as_text()}\n\n"
        "Agregados do período (JSON):\n"
        f"{json.dumps(aggregates(kpis), ensure_ascii=False, separators=(',', ':'))}"
    )
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ],
        "temperature": TEMPERATURE,
    }


def aggregates(kpis: PeriodKpis) -> dict[str, Any]:
    """The period's figures as pt-BR strings, ready to be quoted in the text."""
    figures: dict[str, Any] = _totals(kpis)
    figures.update(
        por_hora=[_kpi_row(r) for r in kpis.by_hour if r.payments],
        por_dia=[_kpi_row(r) for r in kpis.by_day],
        por_cidade=[_kpi_row(r) for r in kpis.by_city[:TOP_ROWS]],
        por_loja=[_kpi_row(r) for r in kpis.by_store[:TOP_ROWS]],
        por_turno=[
            {
                "turno": p.label,
                "pagamentos": p.payments,
                "ticket_medio": _brl(p.average_ticket),
                "minutos_ociosos_por_loja_dia": _number(p.idle_minutes_per_store_day),
            }
            for p in kpis.by_day_part
        ],
        confirmacao_por_cidade=[
            {
                "cidade": c.city,
                "pagamentos": c.payments,
                "media_s": format_decimal(c.mean_s),
                "p95_s": format_decimal(c.p95_s),
            }
            for c in kpis.confirmation_by_city[:TOP_ROWS]
        ],
    )
    if kpis.previous is not None:
        figures["periodo_anterior"] = _totals(kpis.previous)
    return figures


def _totals(kpis: PeriodKpis) -> dict[str, Any]:
    return {
        "periodo": format_period(kpis.start, kpis.end),
        "dias": kpis.days,
        "pagamentos_confirmados": kpis.payments,
        "faturamento": format_brl(kpis.revenue),
        "ticket_medio": _brl(kpis.average_ticket),
        "cobrancas_falhas": kpis.failed,
        "cobrancas_expiradas": kpis.expired,
        "lojas": kpis.stores,
        "cidades": kpis.cities,
        "confirmacao_media_s": _number(kpis.confirmation_mean_s),
        "confirmacao_p95_s": _number(kpis.confirmation_p95_s),
    }


def _kpi_row(row: KpiRow) -> dict[str, Any]:
    return {
        "rotulo": row.label,
        "pagamentos": row.payments,
        "faturamento": format_brl(row.revenue),
        "ticket_medio": _brl(row.average_ticket),
    }


def _brl(amount: Any) -> str | None:
    return None if amount is None else format_brl(amount)


def _number(value: float | None) -> str | None:
    return None if value is None else format_decimal(value)


def _ask(body: dict[str, Any], settings: Settings, http: httpx.Client | None) -> str:
    """POST the request; the answer's ``choices[0].message.content``."""
    headers = {"Content-Type": "application/json"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    url = f"{settings.llm_url.rstrip('/')}/chat/completions"
    timeout = httpx.Timeout(settings.llm_timeout_s)
    client = http if http is not None else httpx.Client()
    try:
        response = client.post(url, json=body, headers=headers, timeout=timeout)
        response.raise_for_status()
    finally:
        if http is None:
            client.close()
    return _content(response)


def _content(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError as e:
        raise LlmAnswerError("the body is not JSON") from e
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise LlmAnswerError("no choices[0].message.content") from e
    if not isinstance(content, str):
        raise LlmAnswerError("the content is not text")
    return content


def _bullets(content: str) -> tuple[Insight, ...]:
    """The answer's lines as plain bullets: list markers and bold dropped, and a reasoning
    model's ``<think>`` block."""
    text = _THINKING.sub("", content).strip()
    if len(text) > MAX_ANSWER_CHARS:
        raise LlmAnswerError(f"the answer has {len(text)} characters, over {MAX_ANSWER_CHARS}")
    lines = [_EMPHASIS.sub("", _BULLET.sub("", line)).strip() for line in text.splitlines()]
    bullets = tuple(Insight("text", line) for line in lines if line)
    if not bullets:
        raise LlmAnswerError("the answer is empty")
    if len(bullets) > MAX_BULLETS:
        raise LlmAnswerError(f"the answer has {len(bullets)} lines, over {MAX_BULLETS}")
    return bullets
