"""The PIX payment receipt ("comprovante"): one charge on one A4 page, in Portuguese.

The receipt is built from the ``payments`` row the pipeline keeps for the charge, the store's
name from ``stores``, and two facts only the lifecycle events carry: the payer's document
(shown masked, never whole) and the end-to-end id of the PIX transfer. Those come from the
charge's ``raw_events``, looked up within its own time span so PostgreSQL uses the time index.

Importing this module loads the PDF library; the API and CLI import it inside the handler.

A charge that is not paid still gets a document, titled and badged as not paid, so the till
can print what happened; only a ``confirmed`` charge is a "Comprovante de pagamento".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from pulso.domain.events import decode_event
from pulso.domain.money import from_cents, has_cents_precision
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.pix.errors import ChargeNotFoundError
from pulso.pix.event_store import mask_payer_document
from pulso.reports import ReportError
from pulso.reports.pdf import PdfDocument, Tone, format_brl, format_duration_s, format_local
from pulso.store.protocol import Store

PAID_TITLE: Final = "Comprovante de pagamento PIX"
UNPAID_TITLE: Final = "Cobrança PIX não paga"
PENDING_TITLE: Final = "Cobrança PIX aguardando pagamento"

_STATUS: Final[dict[str, tuple[str, Tone]]] = {  # status -> (badge, tone)
    "confirmed": ("PAGO", "good"),
    "pending": ("AGUARDANDO PAGAMENTO", "warning"),
    "failed": ("NÃO PAGO · RECUSADO", "bad"),
    "expired": ("NÃO PAGO · EXPIRADA", "bad"),
}
_ENDED_LABELS: Final = {"failed": "Recusada em", "expired": "Expirada em"}
_PSP_NAMES: Final = {"mercadopago": "Mercado Pago", "sandbox": "Sandbox pulso (simulado)"}
# A masked CPF shows 6 of its 11 digits, a masked CNPJ 6 of 14: more digits means a leak.
_MAX_SHOWN_DIGITS: Final = 8
_EVENT_MARGIN: Final = timedelta(days=1)  # producers stamp events with the charge's own times

_PAYMENT_SQL: Final = """
SELECT p.charge_id, p.txid, p.store_id, s.name, p.city, p.uf, p.amount_cents, p.paid_cents,
       p.status, p.psp, p.created_at, p.confirmed_at, p.confirmation_seconds,
       p.failure_reason, p.failed_at, p.expired_at
FROM payments p LEFT JOIN stores s ON s.store_id = p.store_id
WHERE p.charge_id = %s
"""
_EVENTS_SQL: Final = """
SELECT payload FROM raw_events
WHERE key = %s AND type = ANY(%s) AND occurred_at >= %s AND occurred_at <= %s
"""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a receipt shows. ``payer_masked`` is already masked (``***.456.789-**``)."""

    charge_id: str
    txid: str
    store_id: str
    store_name: str
    city: str
    uf: str
    amount: Decimal
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    confirmation_seconds: float | None
    end_to_end_id: str | None
    psp: str
    payer_masked: str | None
    failure_reason: str | None = None
    ended_at: datetime | None = None  # when a failed or expired charge ended

    def __post_init__(self) -> None:
        if self.status not in _STATUS:
            raise ValueError(f"unknown charge status {self.status!r}; one of {sorted(_STATUS)}")
        if not has_cents_precision(self.amount) or self.amount <= 0:
            raise ValueError(f"amount must be positive with two places at most: {self.amount}")
        for name in ("created_at", "confirmed_at", "ended_at"):
            at = getattr(self, name)
            if at is not None and at.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
        if self.payer_masked and len(re.sub(r"\D", "", self.payer_masked)) > _MAX_SHOWN_DIGITS:
            raise ValueError("payer_masked shows too many digits: pass mask_payer_document()")

    @property
    def is_paid(self) -> bool:
        return self.status == "confirmed"

    @property
    def title(self) -> str:
        if self.is_paid:
            return PAID_TITLE
        return PENDING_TITLE if self.status == "pending" else UNPAID_TITLE


# --------------------------------------------------------------------------- reading


def receipt_for_charge(store: Store, charge_id: str) -> Receipt:
    """The receipt of ``charge_id`` as the store knows it now.

    Raises ``ChargeNotFoundError`` when the pipeline has no such charge, and ``ReportError``
    when only a later event of it arrived so far (its amount and store are not known yet).
    """
    rows = store.query(_PAYMENT_SQL, (charge_id,))
    if not rows:
        raise ChargeNotFoundError(charge_id)
    row = rows[0]
    created_at: datetime | None = row[10]
    if created_at is None or row[6] is None:
        raise ReportError(
            f"charge {charge_id!r} has no creation event in the store yet, so its amount and "
            "store are unknown; try again once the pipeline has read it"
        )
    last_at = row[11] or row[14] or row[15] or created_at
    payer_document, end_to_end_id = _event_facts(store, charge_id, created_at, last_at)
    return _receipt(row, payer_document, end_to_end_id)


def _event_facts(
    store: Store, charge_id: str, created_at: datetime, last_at: datetime
) -> tuple[str | None, str | None]:
    """The payer's document and the end-to-end id, from the charge's lifecycle events."""
    types = ["pix.charge.created", "pix.charge.confirmed"]
    rows = store.query(
        _EVENTS_SQL,
        (charge_id, types, created_at - _EVENT_MARGIN, max(created_at, last_at) + _EVENT_MARGIN),
    )
    document: str | None = None
    end_to_end_id: str | None = None
    for (payload,) in rows:
        data = decode_event(bytes(payload)).data
        if isinstance(data, ChargeCreated) and data.payer_document:
            document = data.payer_document
        elif isinstance(data, ChargeConfirmed) and data.end_to_end_id:
            end_to_end_id = data.end_to_end_id
    return document, end_to_end_id


def _receipt(row: tuple[Any, ...], document: str | None, end_to_end_id: str | None) -> Receipt:
    (charge_id, txid, store_id, store_name, city, uf, amount_cents, paid_cents, status, psp) = row[
        :10
    ]
    paid = status == "confirmed" and paid_cents is not None
    return Receipt(
        charge_id=str(charge_id),
        txid=str(txid or "—"),
        store_id=str(store_id),
        store_name=str(store_name or store_id),
        city=str(city or ""),
        uf=str(uf or ""),
        amount=from_cents(int(paid_cents if paid else amount_cents)),
        status=str(status),
        created_at=row[10],
        confirmed_at=row[11],
        confirmation_seconds=None if row[12] is None else float(row[12]),
        end_to_end_id=end_to_end_id,
        psp=str(psp or "—"),
        payer_masked=mask_payer_document(document) if document else None,
        failure_reason=None if row[13] is None else str(row[13]),
        ended_at=row[14] or row[15],
    )


# --------------------------------------------------------------------------- rendering


def render_receipt(receipt: Receipt, *, generated_at: datetime | None = None) -> bytes:
    """The receipt as a one-page PDF."""
    doc = PdfDocument(
        receipt.title,
        subtitle=f"{receipt.store_name} · {_place(receipt)}",
        generated_at=generated_at,
    )
    badge, tone = _STATUS[receipt.status]
    label = "Valor pago" if receipt.is_paid else "Valor da cobrança"
    doc.space(6)
    doc.headline(label, format_brl(receipt.amount), badge=badge, tone=tone)
    doc.space(4)
    when: list[tuple[str, str]] = [("Criada em", format_local(receipt.created_at))]
    if receipt.is_paid:
        when = [
            ("Pago em", format_local(receipt.confirmed_at)),
            *when,
            ("Tempo até o pagamento", format_duration_s(receipt.confirmation_seconds)),
        ]
    elif receipt.status in _ENDED_LABELS:
        when.append((_ENDED_LABELS[receipt.status], format_local(receipt.ended_at)))
        if receipt.failure_reason:
            when.append(("Motivo", receipt.failure_reason))
    doc.key_values(
        [
            *when,
            ("Loja", f"{receipt.store_name} ({receipt.store_id})"),
            ("Cidade", _place(receipt)),
            ("Pagador (CPF/CNPJ)", receipt.payer_masked or "não informado"),
            ("Instituição (PSP)", _PSP_NAMES.get(receipt.psp, receipt.psp)),
            ("ID da cobrança", receipt.charge_id),
            ("Txid", receipt.txid),
            ("ID fim a fim (E2E)", receipt.end_to_end_id or "—"),
        ]
    )
    doc.space(6)
    doc.paragraph(
        "Horários de Brasília (America/Sao_Paulo). Documento gerado a partir dos eventos "
        "registrados pelo pulso; o CPF/CNPJ do pagador aparece mascarado."
    )
    return doc.to_bytes()


def _place(receipt: Receipt) -> str:
    return f"{receipt.city}/{receipt.uf}" if receipt.uf else receipt.city or "—"
