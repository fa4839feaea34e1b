"""PIX receipts and event logs as PDFs: they parse, say the right things in Portuguese, and
never show a whole CPF/CNPJ. Text is read back with pypdf (a real PDF parser)."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pypdf
import pytest

from pulso.domain.events import Event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.domain.validators import mask_cpf
from pulso.reports import ReportError, event_log
from pulso.reports.event_log import render_event_log
from pulso.reports.pdf import (
    PdfDocument,
    TableColumn,
    TableRow,
    format_count,
    format_day_heading,
    format_duration_s,
    format_period,
)
from pulso.reports.receipt import Receipt, render_receipt
from pulso.sources.payments_generator import PaymentsConfig, generate_payments

CPF = "52998224725"
PAID_AT = datetime(2026, 11, 20, 17, 4, 44, tzinfo=UTC)  # 14:04 in Brasília
GENERATED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RECEIPT = Receipt(
    charge_id="3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f",
    txid="A1B2C3D4E5F6G7H8I9J0K1L2M",
    store_id="LJ-0001",
    store_name="Padaria São João & Filhos",
    city="São Paulo",
    uf="SP",
    amount=Decimal("1234.56"),
    status="confirmed",
    created_at=PAID_AT - timedelta(seconds=14),
    confirmed_at=PAID_AT,
    confirmation_seconds=14.0,
    end_to_end_id="E00360305202611201704abcdef12345",
    psp="mercadopago",
    payer_masked=mask_cpf(CPF),
)


def pdf_pages(content: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (the page total is drawn apart)."""
    assert content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [re.sub(r"\s+", " ", page.extract_text()) for page in reader.pages]


# --------------------------------------------------------------------------- receipt


def test_paid_receipt_shows_amount_dates_ids_and_a_masked_payer() -> None:
    [text] = pdf_pages(render_receipt(RECEIPT, generated_at=GENERATED_AT))

    for expected in (
        "Comprovante de pagamento PIX",
        "Valor pago R$ 1.234,56",
        "PAGO",
        "Pago em 20/11/2026 14:04",
        "Criada em 20/11/2026 14:04",
        "Tempo até o pagamento 14 s",
        "Loja Padaria São João & Filhos (LJ-0001)",
        "Cidade São Paulo/SP",
        "Pagador (CPF/CNPJ) ***.982.247-**",
        "Instituição (PSP) Mercado Pago",
        f"ID da cobrança {RECEIPT.charge_id}",
        f"Txid {RECEIPT.txid}",
        f"ID fim a fim (E2E) {RECEIPT.end_to_end_id}",
        "Gerado por pulso em 21/11/2026 09:00",
        "página 1 de 1",
    ):
        assert expected in text
    assert CPF not in text and "52998224725" not in text.replace(".", "").replace("-", "")


def test_unpaid_receipts_say_so_and_when() -> None:
    failed = dataclasses.replace(
        RECEIPT,
        status="failed",
        confirmed_at=None,
        confirmation_seconds=None,
        end_to_end_id=None,
        payer_masked=None,
        failure_reason="saldo insuficiente",
        ended_at=PAID_AT,
    )
    [text] = pdf_pages(render_receipt(failed))
    assert "Cobrança PIX não paga" in text and "Comprovante" not in text
    assert "NÃO PAGO · RECUSADO" in text and "Valor da cobrança R$ 1.234,56" in text
    assert "Recusada em 20/11/2026 14:04" in text and "Motivo saldo insuficiente" in text
    assert "Pagador (CPF/CNPJ) não informado" in text and "Pago em" not in text

    pending = dataclasses.replace(failed, status="pending", failure_reason=None, ended_at=None)
    [text] = pdf_pages(render_receipt(pending))
    assert "Cobrança PIX aguardando pagamento" in text and "AGUARDANDO PAGAMENTO" in text


def test_a_64_character_charge_id_is_printed_whole() -> None:
    long_id = "c" * 60 + "-end"
    [text] = pdf_pages(render_receipt(dataclasses.replace(RECEIPT, charge_id=long_id)))
    assert long_id in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"payer_masked": CPF}, "too many digits"),
        ({"payer_masked": "529.982.247-25"}, "too many digits"),
        ({"status": "paid"}, "unknown charge status"),
        ({"amount": Decimal("0")}, "positive"),
        ({"amount": Decimal("1.001")}, "two places"),
        ({"created_at": datetime(2026, 11, 20, 14, 4)}, "timezone-aware"),
    ],
)
def test_a_receipt_refuses_what_it_must_never_show(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(RECEIPT, **change)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- event log


def charge_events(i: int, outcome: str, at: datetime) -> list[Event]:
    charge_id = f"ch_{i:03d}"
    created = ChargeCreated(
        charge_id=charge_id,
        txid=f"TX{i:03d}",
        store_id="LJ-0007",
        city="Florianópolis",
        uf="SC",
        amount=Decimal("10.50") * (i + 1),
        created_at=at,
        expires_at=at + timedelta(minutes=10),
        description="PDV 02",
        payer_document=CPF,
    )
    end = at + timedelta(seconds=20 + i)
    terminal: ChargeConfirmed | ChargeFailed | ChargeExpired
    if outcome == "confirmed":
        terminal = ChargeConfirmed(
            charge_id=charge_id, confirmed_at=end, amount_paid=created.amount, end_to_end_id="E1"
        )
    elif outcome == "failed":
        terminal = ChargeFailed(charge_id=charge_id, failed_at=end, reason="saldo insuficiente")
    else:
        terminal = ChargeExpired(charge_id=charge_id, expired_at=end)
    return [
        new_event(created, source="test", key=charge_id, occurred_at=at),
        new_event(terminal, source="test", key=charge_id, occurred_at=end),
    ]


def small_log() -> list[Event]:
    day_one = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # 10:00 in Brasília, a Friday
    day_two = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)  # 23:30 on the 20th in Brasília
    day_three = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)  # Saturday 21st
    return [
        *charge_events(0, "confirmed", day_one),  # R$ 10,50 paid in 20 s
        *charge_events(1, "failed", day_one + timedelta(minutes=5)),
        *charge_events(2, "confirmed", day_two),  # R$ 31,50 paid in 22 s
        *charge_events(3, "expired", day_three),
    ]


def test_event_log_opens_with_totals_then_lists_each_day() -> None:
    content = render_event_log(
        small_log(),
        period_from=date(2026, 11, 20),
        period_to=date(2026, 11, 21),
        generated_at=GENERATED_AT,
    )
    [text] = pdf_pages(content)

    assert "Registro de eventos PIX" in text
    assert "Período: 20/11/2026 a 21/11/2026 · Loja: todas" in text
    summary = text[: text.index("Sexta-feira")]
    for expected in (
        "Eventos 8",
        "Cobranças criadas 4 R$ 105,00",  # 10,50 + 21,00 + 31,50 + 42,00
        "Pagas 2 R$ 42,00 recebidos",
        "Recusadas 1",
        "Expiradas 1",
        "Tempo médio até pagar 21 s",
    ):
        assert expected in summary
    friday = text[text.index("Sexta-feira, 20/11/2026") : text.index("Sábado, 21/11/2026")]
    assert "10:00:00 Criada ch_000 LJ-0007 · Florianópolis/SC R$ 10,50 PDV 02" in friday
    assert "10:00:20 Paga ch_000" in friday and "paga em 20 s · E2E E1" in friday
    assert "10:05:21 Recusada ch_001" in friday and "saldo insuficiente" in friday
    assert "23:30:00 Criada ch_002" in friday  # 02:30 UTC on the 21st is still the 20th here
    assert "Total do dia 6 eventos R$ 42,00" in friday
    saturday = text[text.index("Sábado, 21/11/2026") :]
    assert "Expirada ch_003" in saturday and "prazo esgotado sem pagamento" in saturday
    assert "Total do dia 2 eventos R$ 0,00" in saturday
    assert CPF not in text and "529.982" not in text


def test_event_log_of_a_store_without_events_says_so() -> None:
    [text] = pdf_pages(
        render_event_log([], period_from=date(2026, 11, 20), period_to=date(2026, 11, 20))
    )
    assert "Período: 20/11/2026 · Loja: todas" in text
    assert "Nenhum evento PIX registrado neste período." in text and "Eventos 0" in text


def test_a_terminal_whose_charge_began_before_the_period_still_gets_a_row() -> None:
    events = charge_events(5, "failed", datetime(2026, 11, 20, 13, 0, tzinfo=UTC))[1:]
    [text] = pdf_pages(
        render_event_log(
            events, period_from=date(2026, 11, 20), period_to=date(2026, 11, 20), store_id="X"
        )
    )
    assert "Recusada ch_005 — —" in text and "Loja: X" in text


def test_generated_traffic_renders_many_pages_with_headers_and_totals() -> None:
    config = PaymentsConfig(start=date(2026, 11, 20), days=1, n_stores=3, n_cities=2, seed=3)
    events = list(itertools.islice(generate_payments(config), 600))
    pages = pdf_pages(
        render_event_log(events, period_from=date(2026, 11, 20), period_to=date(2026, 11, 20))
    )

    assert len(pages) > 5
    for number, page in enumerate(pages, start=1):
        assert page.startswith("Registro de eventos PIX")
        assert f"página {number} de {len(pages)}" in page
        assert "Hora Evento Cobrança Loja Valor Detalhe" in page or number == 1
    text = " ".join(pages)
    assert f"Eventos {format_count(len(events))}" in text
    for event in events:
        assert event.data.charge_id in text
        if isinstance(event.data, ChargeCreated) and event.data.payer_document:
            assert event.data.payer_document not in text


def test_event_log_bad_periods_and_oversized_ones_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ReportError, match="after it ends"):
        render_event_log([], period_from=date(2026, 11, 21), period_to=date(2026, 11, 20))
    monkeypatch.setattr(event_log, "MAX_EVENTS", 7)
    with pytest.raises(ReportError, match="more than 7 PIX events"):
        render_event_log(small_log(), period_from=date(2026, 11, 20), period_to=date(2026, 11, 21))


# --------------------------------------------------------------------------- building blocks


def test_formatting_helpers_write_brazilian_numbers_and_dates() -> None:
    assert format_count(1234567) == "1.234.567"
    assert format_duration_s(None) == "—"
    assert [format_duration_s(s) for s in (0.4, 14.2, 125, 3720)] == [
        "0 s",
        "14 s",
        "2 min 05 s",
        "1 h 02 min",
    ]
    assert format_period(date(2026, 1, 2), date(2026, 1, 2)) == "02/01/2026"
    assert format_period(date(2026, 1, 2), date(2026, 2, 3)) == "02/01/2026 a 03/02/2026"
    assert format_day_heading(date(2026, 11, 21)) == "Sábado, 21/11/2026"


def test_tables_cut_long_cells_and_refuse_columns_wider_than_the_page() -> None:
    doc = PdfDocument("Teste", generated_at=GENERATED_AT)
    doc.table([TableColumn("Nome", 20)], [TableRow(("x" * 200,))])
    [text] = pdf_pages(doc.to_bytes())
    assert "x…" in text and "x" * 200 not in text
    with pytest.raises(ReportError, match="this PDF document was already finished"):
        doc.to_bytes()
    with pytest.raises(ReportError, match="narrow the columns"):
        PdfDocument("Teste").table([TableColumn("A", 150), TableColumn("B", 100)], [])
