"""A period's PIX lifecycle events as a PDF: totals first, then day by day, one line per event.

Events arrive as a stream (``pulso.pix.event_store.iter_pix_events``); they are condensed to
display rows as they come, because the totals that open the document need the whole period.
A document is capped at ``MAX_EVENTS`` rows (about 1,000 landscape pages): past that a PDF is
no longer something a person reads, so the caller is told to narrow the period or the store.

Days and times are those of America/Sao_Paulo. A failed or expired charge whose creation fell
before the period still gets a row; its amount and store show as "—".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from pulso.domain.events import Event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.reports import ReportError
from pulso.reports.pdf import (
    PdfDocument,
    Stat,
    TableColumn,
    TableRow,
    format_brl,
    format_count,
    format_day_heading,
    format_duration_s,
    format_period,
)

MAX_EVENTS: Final = 50_000
TITLE: Final = "Registro de eventos PIX"
EVENT_LABELS: Final[dict[str, str]] = {
    "pix.charge.created": "Criada",
    "pix.charge.confirmed": "Paga",
    "pix.charge.failed": "Recusada",
    "pix.charge.expired": "Expirada",
}


@dataclass(frozen=True, slots=True)
class _Row:
    at: datetime  # in the display zone
    event_type: str
    charge_id: str
    store: str
    amount: Decimal | None
    detail: str
    confirmation_s: float | None = None


@dataclass(frozen=True, slots=True)
class _Charge:
    store: str
    amount: Decimal
    created_at: datetime


@dataclass(slots=True)
class LogTotals:
    """Counts and sums over a set of PIX events."""

    events: int = 0
    created: int = 0
    created_amount: Decimal = field(default_factory=Decimal)
    confirmed: int = 0
    confirmed_amount: Decimal = field(default_factory=Decimal)
    failed: int = 0
    expired: int = 0
    confirmation_s_total: float = 0.0
    timed_confirmations: int = 0

    def add(self, row: _Row) -> None:
        self.events += 1
        kind = row.event_type
        if kind == "pix.charge.created":
            self.created += 1
            self.created_amount += row.amount or 0
        elif kind == "pix.charge.confirmed":
            self.confirmed += 1
            self.confirmed_amount += row.amount or 0
            if row.confirmation_s is not None:
                self.confirmation_s_total += row.confirmation_s
                self.timed_confirmations += 1
        elif kind == "pix.charge.failed":
            self.failed += 1
        elif kind == "pix.charge.expired":
            self.expired += 1

    def merge(self, other: LogTotals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def mean_confirmation_s(self) -> float | None:
        if not self.timed_confirmations:
            return None
        return self.confirmation_s_total / self.timed_confirmations


# --------------------------------------------------------------------------- rows


class _Rows:
    """Turns events into display rows, remembering each charge's store and amount."""

    def __init__(self) -> None:
        self._charges: dict[str, _Charge] = {}

    def row(self, event: Event) -> _Row | None:
        data = event.data
        at = event.occurred_at.astimezone(DISPLAY_ZONE)
        if isinstance(data, ChargeCreated):
            return self._created(at, event.type, data)
        if isinstance(data, ChargeConfirmed):
            return self._confirmed(at, event.type, data)
        if isinstance(data, ChargeFailed):
            return self._ended(at, event.type, data.charge_id, data.reason)
        if isinstance(data, ChargeExpired):
            return self._ended(at, event.type, data.charge_id, "prazo esgotado sem pagamento")
        return None  # not a PIX lifecycle event: outside this log

    def _created(self, at: datetime, kind: str, data: ChargeCreated) -> _Row:
        store = f"{data.store_id} · {data.city}/{data.uf}"
        self._charges[data.charge_id] = _Charge(store, data.amount, data.created_at)
        expires = data.expires_at.astimezone(DISPLAY_ZONE).strftime("%H:%M")
        detail = f"{data.description} · expira às {expires}" if data.description else ""
        return _Row(at, kind, data.charge_id, store, data.amount, detail or f"expira às {expires}")

    def _confirmed(self, at: datetime, kind: str, data: ChargeConfirmed) -> _Row:
        charge = self._charges.get(data.charge_id)
        seconds = None
        parts = []
        if charge is not None:
            seconds = (data.confirmed_at - charge.created_at).total_seconds()
            parts.append(f"paga em {format_duration_s(seconds)}")
        if data.end_to_end_id:
            parts.append(f"E2E {data.end_to_end_id}")
        detail = " · ".join(parts) or "—"
        store = charge.store if charge else "—"
        return _Row(at, kind, data.charge_id, store, data.amount_paid, detail, seconds)

    def _ended(self, at: datetime, kind: str, charge_id: str, detail: str) -> _Row:
        charge = self._charges.get(charge_id)
        store, amount = (charge.store, charge.amount) if charge else ("—", None)
        return _Row(at, kind, charge_id, store, amount, detail)


def _rows_by_day(events: Iterable[Event]) -> dict[date, list[_Row]]:
    rows = _Rows()
    days: dict[date, list[_Row]] = {}
    count = 0
    for event in events:
        row = rows.row(event)
        if row is None:
            continue
        count += 1
        if count > MAX_EVENTS:
            raise ReportError(
                f"the period has more than {MAX_EVENTS:,} PIX events, too many for one PDF; "
                "choose a shorter period (--from/--to) or one store (--store)"
            )
        days.setdefault(row.at.date(), []).append(row)
    for day_rows in days.values():
        day_rows.sort(key=lambda r: r.at)  # already in order when read from the store
    return dict(sorted(days.items()))


# --------------------------------------------------------------------------- rendering


def render_event_log(
    events: Iterable[Event],
    *,
    period_from: date,
    period_to: date,
    store_id: str | None = None,
    generated_at: datetime | None = None,
) -> bytes:
    """The PDF of a period's PIX events (both days included), optionally of one store."""
    if period_from > period_to:
        raise ReportError(
            f"the period starts on {period_from:%d/%m/%Y}, after it ends on {period_to:%d/%m/%Y}"
        )
    days = _rows_by_day(events)
    subtitle = (
        f"Período: {format_period(period_from, period_to)} · Loja: {store_id or 'todas'}"
        " · horários de Brasília"
    )
    doc = PdfDocument(TITLE, subtitle=subtitle, generated_at=generated_at, wide=True)
    day_totals = {day: _totals(rows) for day, rows in days.items()}
    overall = LogTotals()
    for totals in day_totals.values():
        overall.merge(totals)
    doc.heading("Resumo do período")
    doc.stats(_summary(overall), per_row=6)
    if not days:
        doc.paragraph("Nenhum evento PIX registrado neste período.", size_pt=11)
    for day, rows in days.items():
        _day_section(doc, day, rows, day_totals[day])
    return doc.to_bytes()


def _totals(rows: Iterable[_Row]) -> LogTotals:
    totals = LogTotals()
    for row in rows:
        totals.add(row)
    return totals


def _summary(totals: LogTotals) -> list[Stat]:
    return [
        Stat("Eventos", format_count(totals.events)),
        Stat("Cobranças criadas", format_count(totals.created), format_brl(totals.created_amount)),
        Stat(
            "Pagas",
            format_count(totals.confirmed),
            f"{format_brl(totals.confirmed_amount)} recebidos",
            tone="good",
        ),
        Stat("Recusadas", format_count(totals.failed), tone="bad" if totals.failed else "neutral"),
        Stat(
            "Expiradas",
            format_count(totals.expired),
            tone="warning" if totals.expired else "neutral",
        ),
        Stat("Tempo médio até pagar", format_duration_s(totals.mean_confirmation_s)),
    ]


def _columns() -> list[TableColumn]:
    return [
        TableColumn("Hora", 16),
        TableColumn("Evento", 18),
        TableColumn("Cobrança", 58),
        TableColumn("Loja", 50),
        TableColumn("Valor", 25, align="right"),
        TableColumn("Detalhe", 98),
    ]


def _day_section(doc: PdfDocument, day: date, rows: list[_Row], totals: LogTotals) -> None:
    doc.space(3)
    doc.heading(format_day_heading(day), size_pt=11)
    doc.table(_columns(), _table_rows(rows, totals))


def _table_rows(rows: list[_Row], totals: LogTotals) -> Iterator[TableRow]:
    for row in rows:
        amount = format_brl(row.amount) if row.amount is not None else "—"
        yield TableRow(
            (
                row.at.strftime("%H:%M:%S"),
                EVENT_LABELS[row.event_type],
                row.charge_id,
                row.store,
                amount,
                row.detail,
            )
        )
    outcome = (
        f"recebido em {format_count(totals.confirmed)} pagas · "
        f"{format_count(totals.created)} criadas · {format_count(totals.failed)} recusadas · "
        f"{format_count(totals.expired)} expiradas"
    )
    yield TableRow(
        (
            "",
            "Total do dia",
            f"{format_count(totals.events)} eventos",
            "",
            format_brl(totals.confirmed_amount),
            outcome,
        ),
        emphasis=True,
    )
