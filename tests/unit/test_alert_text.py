"""The words of an alert: CPF and CNPJ hidden, times in São Paulo, money in reais."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pulso.alerts.text import (
    MASKED_DOCUMENT,
    Payment,
    Place,
    hide_documents,
    kind_label,
    notice_text,
    severity_rank,
    span,
    subject_label,
)

AT = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 00:30 in São Paulo


@pytest.mark.parametrize(
    "text",
    [
        "CPF 529.982.247-25 pagou",
        "CPF 52998224725 pagou",
        "cpf:52998224725.",
        "pagou.52998224725",
        "CNPJ 11.222.333/0001-81",
        "CNPJ 11222333000181",
    ],
)
def test_documents_are_hidden(text: str) -> None:
    hidden = hide_documents(text)
    assert MASKED_DOCUMENT in hidden
    assert not any(d in hidden for d in ("52998224725", "529.982.247-25", "11222333000181"))


@pytest.mark.parametrize(
    "text",
    [
        "R$ 1.234.567,89 em 3 cobranças",
        "cobrança ch-01JDX4Y7ZK",
        "pedido 123456789012345678",  # a longer run of digits is not a CPF
        "12:30 em 24/11/2026",
        "MLB52998224725 entrou no top 10",  # a Mercado Livre item id, 11 digits
        "item MLA11222333000181",
    ],
)
def test_other_numbers_are_kept(text: str) -> None:
    assert hide_documents(text) == text


def test_labels_and_ranks() -> None:
    assert kind_label("fraud.velocity") == "Pagador em muitas lojas em poucos minutos"
    assert kind_label("pipeline.lag") == "pipeline.lag"
    assert kind_label("market.top_n_entry") == "Produto entrou no top do Mercado Livre"
    assert [severity_rank(s) for s in ("info", "warning", "critical", "?")] == [0, 1, 2, 1]
    assert subject_label("LJ-0001", Place("Padaria", "Recife", "PE")) == (
        "loja LJ-0001 (Padaria, Recife/PE)"
    )
    assert subject_label("9f8e7d6c5b4a3f2e1d", None) == "pagador 9f8e7d6c5b4a…"
    assert subject_label("52998224725", None) == f"pagador {MASKED_DOCUMENT}"


def test_span_in_sao_paulo_time() -> None:
    later = AT.replace(minute=45)
    assert span(AT, AT) == "24/11/2026 00:30"
    assert span(AT, later) == "24/11/2026 00:30 a 00:45"
    assert span(datetime(2026, 11, 24, 2, 50, tzinfo=UTC), AT) == (
        "23/11/2026 23:50 a 24/11/2026 00:30"
    )


def test_notice_text_first_and_summary() -> None:
    common = {
        "kind": "fraud.night_high_value",
        "severity": "critical",
        "subject": "LJ-0001",
        "message": "R$ 9.800,00 às 00:30, 25× a média",
        "first_at": AT,
        "last_at": AT,
        "details": {"charge_id": "ch-1", "risk_score": "0.914"},
        "payment": Payment(980_000, "Recife", "PE"),
    }
    first = notice_text(count=1, **common)  # type: ignore[arg-type]
    assert first.subject == (
        "[pulso] Alerta de fraude (crítico): Valor alto de madrugada · loja LJ-0001"
    )
    assert "1 ocorrência em 24/11/2026 00:30 (horário de Brasília)." in first.text
    assert "Cobrança ch-1 · valor R$ 9.800,00 · Recife/PE · risco 0,91" in first.text
    summary = notice_text(count=5, previous_count=1, **common)  # type: ignore[arg-type]
    assert summary.subject.endswith("· 5×")
    assert "Resumo: mais 4 ocorrências desde o aviso anterior, 5 no total." in summary.text
    assert "\n" not in summary.subject
    in_reais = notice_text(count=1, **{**common, "payment": None, "details": {"amount": "1234.5"}})  # type: ignore[arg-type]
    assert "valor R$ 1.234,50" in in_reais.text
