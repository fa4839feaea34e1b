"""The payment report of a period, as files and as a message.

One call computes everything from the store and writes it into one folder:

- ``mapa_calor_<name>.png``: the 34 heatmaps (``../shared/HEATMAPS.md``);
- ``relatorio_mapas_calor.html``: all of them in one interactive page;
- ``relatorio_pagamentos.pdf``: cover KPIs, the written reading, the KPI tables, the heatmaps;
- ``leitura.md``: the written reading alone.

:meth:`PaymentsReport.notification` turns the files into the message the notifiers send: the
KPIs and the reading as text, the PDF and the page attached, and a few key pictures (chat
channels show at most one album of them).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pulso.domain.money import format_brl
from pulso.domain.ptbr import format_count, format_decimal, format_period
from pulso.reports import ReportError

if TYPE_CHECKING:
    from pulso.analytics.insights import Reading
    from pulso.analytics.kpis import PeriodKpis
    from pulso.config import Settings
    from pulso.notify import Notification
    from pulso.store.protocol import Store

PDF_FILE_NAME: Final = "relatorio_pagamentos.pdf"
READING_FILE_NAME: Final = "leitura.md"
KEY_PICTURES: Final = (
    "semana_count",
    "semana_sum",
    "ociosidade_por_hora_loja",
    "precos_baixos_por_hora_loja",
    "tempo_medio_por_hora_cidade",
    "pagamentos_por_dia",
)
"""The heatmaps attached to the message as pictures (the PDF and the page carry all 34)."""

Step = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PaymentsReport:
    """A period's report, written to ``folder``."""

    start: date
    end: date
    folder: Path
    pictures: list[Path]
    html: Path
    pdf: Path
    reading_file: Path
    kpis: PeriodKpis
    reading: Reading
    filter_text: str | None = None

    @property
    def files(self) -> list[Path]:
        return [*self.pictures, self.html, self.pdf, self.reading_file]

    @property
    def period_text(self) -> str:
        return format_period(self.start, self.end)

    def notification(self) -> Notification:
        """The message for e-mail, Telegram and Slack (pt-BR)."""
        from pulso.notify import Attachment, Notification

        scope = f" · {self.filter_text}" if self.filter_text else ""
        subject = f"Relatório de pagamentos PIX · {self.period_text}{scope}"
        kpi_lines = _kpi_lines(self.kpis)
        bullets = [insight.text for insight in self.reading.insights]
        text = "\n".join(
            [
                subject,
                "",
                *kpi_lines,
                "",
                "Leitura do período:",
                *(f"• {b}" for b in bullets),
                "",
                "Em anexo: o relatório completo em PDF, a página com os 34 mapas de calor "
                "e os principais mapas.",
            ]
        )
        by_name = {path.stem.removeprefix("mapa_calor_"): path for path in self.pictures}
        attachments = [
            Attachment(self.pdf.name, _read(self.pdf), "application/pdf"),
            Attachment(self.html.name, _read(self.html), "text/html"),
            *(
                Attachment(by_name[name].name, _read(by_name[name]), "image/png")
                for name in KEY_PICTURES
                if name in by_name
            ),
        ]
        return Notification(
            subject=subject,
            text=text,
            html=_html_body(subject, kpi_lines, bullets),
            attachments=attachments,
        )


def report_folder(base: Path, start: date, end: date) -> Path:
    """``base/relatorio_<start>_<end>`` (ISO dates, so folders sort by period)."""
    if start == end:
        return base / f"relatorio_{start.isoformat()}"
    return base / f"relatorio_{start.isoformat()}_{end.isoformat()}"


def build_payments_report(
    store: Store,
    settings: Settings,
    *,
    start: date,
    end: date,
    folder: Path,
    store_id: str | None = None,
    city: str | None = None,
    step: Step | None = None,
    generated_at: datetime | None = None,
) -> PaymentsReport:
    """Compute the period's report from ``store`` and write its files into ``folder``.

    ``step`` is told what is being done ("mapas de calor", ...), for a progress display. The
    written reading is rewritten by the LLM when one is configured; any LLM failure keeps the
    deterministic text (see :mod:`pulso.analytics.llm`).
    """
    from pulso.analytics.heatmaps import all_heatmaps
    from pulso.analytics.insights import write_reading
    from pulso.analytics.kpis import period_kpis
    from pulso.analytics.llm import rewrite_reading
    from pulso.reports.heatmap_html import write_heatmaps_html
    from pulso.reports.heatmap_png import render_heatmap_pngs
    from pulso.reports.report_pdf import render_report_pdf

    tell = step or (lambda _: None)
    when = generated_at or datetime.now(UTC)
    scope = filter_text(store_id, city)
    _make_folder(folder)

    tell("mapas de calor")
    grids = all_heatmaps(store, start=start, end=end, store_id=store_id, city=city)
    tell("indicadores")
    kpis = period_kpis(store, start=start, end=end, store_id=store_id, city=city)
    tell("leitura")
    reading = rewrite_reading(write_reading(kpis, grids), kpis, settings)
    tell("imagens")
    ordered = list(grids.values())
    pngs = render_heatmap_pngs(ordered, filter_text=scope)
    pictures = [
        _write(folder / g.spec.file_name, png) for g, png in zip(ordered, pngs, strict=True)
    ]
    tell("página HTML")
    page = write_heatmaps_html(ordered, folder, generated_at=when, filter_text=scope)
    tell("PDF")
    pdf = render_report_pdf(
        kpis,
        pictures=list(zip(ordered, pngs, strict=True)),
        reading=[insight.text for insight in reading.insights],
        reading_source=reading.source,
        generated_at=when,
    )
    pdf_path = _write(folder / PDF_FILE_NAME, pdf)
    reading_path = _write(folder / READING_FILE_NAME, reading.as_markdown().encode("utf-8"))
    return PaymentsReport(
        start=start,
        end=end,
        folder=folder,
        pictures=pictures,
        html=page,
        pdf=pdf_path,
        reading_file=reading_path,
        kpis=kpis,
        reading=reading,
        filter_text=scope,
    )


def filter_text(store_id: str | None, city: str | None) -> str | None:
    """``loja LJ-0001 · cidade Recife``: what the report was filtered to (None: everything)."""
    parts = [f"loja {store_id}" if store_id else "", f"cidade {city}" if city else ""]
    return " · ".join(p for p in parts if p) or None


def _kpi_lines(kpis: PeriodKpis) -> list[str]:
    if not kpis.payments:
        return ["Nenhum pagamento confirmado no período."]
    ticket = format_brl(kpis.average_ticket) if kpis.average_ticket is not None else "—"
    lines = [
        f"Pagamentos confirmados: {format_count(kpis.payments)}",
        f"Receita: {format_brl(kpis.revenue)}",
        f"Ticket médio: {ticket}",
        f"Lojas: {kpis.stores} · Cidades: {kpis.cities}",
    ]
    if kpis.confirmation_mean_s is not None:
        mean = format_decimal(kpis.confirmation_mean_s)
        lines.append(f"Tempo médio de confirmação: {mean} s")
    if kpis.failed or kpis.expired:
        lines.append(
            f"Falhas: {format_count(kpis.failed)} · Expirados: {format_count(kpis.expired)}"
        )
    return lines


def _html_body(subject: str, kpi_lines: list[str], bullets: list[str]) -> str:
    kpis = "".join(f"<li>{html.escape(line)}</li>" for line in kpi_lines)
    items = "".join(f"<li>{html.escape(b)}</li>" for b in bullets)
    return (
        '<!DOCTYPE html><html lang="pt-BR"><body style="font-family: sans-serif">'
        f"<h2>{html.escape(subject)}</h2><ul>{kpis}</ul>"
        f"<h3>Leitura do período</h3><ul>{items}</ul>"
        "<p>Em anexo: o relatório completo em PDF, a página com os 34 mapas de calor "
        "e os principais mapas.</p></body></html>"
    )


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"cannot create the report folder {folder}: {e.strerror}; choose a writable --out"
        ) from e


def _write(path: Path, content: bytes) -> Path:
    try:
        path.write_bytes(content)
    except OSError as e:
        raise ReportError(f"cannot write {path}: {e.strerror}; choose a writable --out") from e
    return path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ReportError(f"cannot read the report file {path}: {e.strerror}") from e
