"""The analytic PDF report of a period: the cover with its KPIs, the written reading, the KPI
tables, then the heatmaps, one to a page.

Everything arrives computed: the numbers (``PeriodKpis``), the heatmap pictures with their grids
(``render_heatmap_png``) and the reading (short pt-BR texts written by rules or by an LLM). This
module only lays them out with ``pulso.reports.pdf``.

Text and tables are A4 portrait. Each heatmap gets a page of its own, portrait or landscape,
whichever shows it larger, in the order of ``HEATMAPS``. A period with no confirmed payment
gives a cover that says so (its failed and expired charges still counted) and the reading, but
no tables or heatmaps: every one of them would be empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

from pulso.analytics.heatmaps import HEATMAPS, HeatmapGrid
from pulso.analytics.kpis import DAY_PARTS, KpiRow, PeriodKpis
from pulso.domain.money import CENT
from pulso.reports import ReportError
from pulso.reports.pdf import (
    PdfDocument,
    PdfImage,
    Stat,
    TableColumn,
    TableRow,
    format_brl,
    format_count,
    format_day_heading,
    format_decimal,
    format_duration_s,
    format_percent,
    format_period,
    prepare_pngs,
)

TITLE: Final = "Relatório de pagamentos PIX"
TOP_STORES: Final = 30
"""Stores listed one by one; the rest are summed on one "demais lojas" line."""
EMPTY_PERIOD: Final = "Sem pagamentos no período"
READING_NOTES: Final[dict[str, str]] = {
    "deterministic": (
        "Leitura gerada automaticamente pelo pulso, por regras fixas, a partir dos números "
        "deste relatório."
    ),
    "llm": (
        "Leitura escrita por um modelo de linguagem (LLM) a partir dos números deste "
        "relatório; confira os valores nas tabelas antes de decidir."
    ),
}
"""The note under the reading, by who wrote it (``reading_source``)."""
_BULLET_MARKS: Final = ("- ", "* ", "• ", "– ")
_KEEP_TOGETHER_ROWS: Final = 30  # a table this short is not split across two pages
_SECTION_HEAD_PT: Final = 48.0  # the space, heading and one-line note above a table
_HEATMAP_ORDER: Final = {name: index for index, name in enumerate(HEATMAPS)}


def render_report_pdf(
    kpis: PeriodKpis,
    *,
    pictures: Sequence[tuple[HeatmapGrid, bytes]],
    reading: Sequence[str],
    reading_source: str = "deterministic",
    title: str = TITLE,
    generated_at: datetime | None = None,
    top_stores: int = TOP_STORES,
    filter_text: str | None = None,
) -> bytes:
    """The report as PDF bytes.

    ``pictures`` are (grid, PNG) pairs, put in ``HEATMAPS`` order; ``reading`` the texts of the
    written reading (blank ones skipped, lines starting with "- " or "• " become items);
    ``reading_source`` is ``"deterministic"`` or ``"llm"`` and decides the note under it;
    ``filter_text`` (``"loja LJ-0001"``) names what the numbers were filtered to, in the header.
    """
    note = _reading_note(reading_source)
    if kpis.start > kpis.end:
        raise ReportError(
            f"the period starts on {kpis.start:%d/%m/%Y}, after it ends on {kpis.end:%d/%m/%Y}"
        )
    if top_stores < 1:
        raise ReportError(f"top_stores is {top_stores}; list at least 1 store")
    ordered = sorted(pictures, key=lambda pair: _HEATMAP_ORDER.get(pair[0].spec.name, 1 << 30))
    prepared = _prepare(ordered) if kpis.payments else []
    scope = f" · {filter_text}" if filter_text else ""
    subtitle = f"Período: {format_period(kpis.start, kpis.end)}{scope} · horários de Brasília"
    doc = PdfDocument(title, subtitle=subtitle, generated_at=generated_at)
    _cover(doc, kpis)
    _reading(doc, reading_items(reading), note)
    if kpis.payments:
        _tables(doc, kpis, top_stores)
        for index, (grid, picture) in enumerate(prepared, start=1):
            label = (
                f"Mapa de calor {index} de {len(prepared)} · {format_period(grid.start, grid.end)}"
            )
            doc.figure_page(picture, grid.spec.title, note=label)
    return doc.to_bytes()


def _prepare(pictures: Sequence[tuple[HeatmapGrid, bytes]]) -> list[tuple[HeatmapGrid, PdfImage]]:
    grids = [grid for grid, _ in pictures]
    names = [f"the heatmap picture {grid.spec.name!r}" for grid in grids]
    images = prepare_pngs([bytes(png) for _, png in pictures], names=names)
    return list(zip(grids, images, strict=True))


# --------------------------------------------------------------------------- cover


def _cover(doc: PdfDocument, kpis: PeriodKpis) -> None:
    doc.space(4)
    if kpis.payments:
        days = "1 dia" if kpis.days == 1 else f"{kpis.days} dias"
        doc.headline(
            "Período analisado", format_period(kpis.start, kpis.end), badge=days, tone="brand"
        )
    else:
        doc.headline(
            "Período analisado",
            format_period(kpis.start, kpis.end),
            badge=EMPTY_PERIOD.upper(),
            tone="warning",
        )
    doc.heading("Resumo do período")
    doc.stats(_cover_stats(kpis), per_row=3)
    if not kpis.payments:
        doc.paragraph(
            f"{EMPTY_PERIOD}: nenhuma cobrança PIX foi paga entre "
            f"{format_period(kpis.start, kpis.end)}, por isso este relatório não traz tabelas "
            "nem mapas de calor. Cobranças recusadas ou expiradas, se houve, estão contadas acima.",
            size_pt=11,
            tone="neutral",
        )


def _cover_stats(kpis: PeriodKpis) -> list[Stat]:
    before = kpis.previous if kpis.previous is not None and kpis.previous.payments else None
    versus = _versus(kpis.days)

    def change(now: Decimal | float | None, then: Decimal | float | None) -> str:
        return _change(now, then, versus) if before is not None else ""

    p95 = f"p95 {format_duration_s(kpis.confirmation_p95_s)}"
    confirmation_change = change(
        kpis.confirmation_mean_s, before.confirmation_mean_s if before else None
    )
    return [
        Stat(
            "Pagamentos confirmados",
            format_count(kpis.payments),
            change(kpis.payments, before.payments if before else None),
        ),
        Stat(
            "Receita",
            format_brl(kpis.revenue),
            change(kpis.revenue, before.revenue if before else None),
        ),
        Stat(
            "Ticket médio",
            _brl(kpis.average_ticket),
            change(kpis.average_ticket, before.average_ticket if before else None),
        ),
        Stat(
            "Tempo médio de confirmação",
            format_duration_s(kpis.confirmation_mean_s),
            " · ".join(part for part in (p95, confirmation_change) if part),
        ),
        _failures_stat(kpis, before, versus),
        Stat(
            "Lojas / cidades com vendas",
            f"{format_count(kpis.stores)} / {format_count(kpis.cities)}",
            "com pagamento confirmado",
        ),
    ]


def _failures_stat(kpis: PeriodKpis, before: PeriodKpis | None, versus: str) -> Stat:
    lost = kpis.failed + kpis.expired
    note = ""
    share = _failure_share(kpis)
    if share is not None:
        note = f"{format_percent(share)} das cobranças"
        earlier = _failure_share(before) if before is not None else None
        if earlier is not None:
            note += f" · {versus.removeprefix('vs ')}: {format_percent(earlier)}"
    return Stat(
        "Recusados / expirados",
        f"{format_count(kpis.failed)} / {format_count(kpis.expired)}",
        note,
        tone="warning" if lost else "neutral",
    )


def _failure_share(kpis: PeriodKpis) -> float | None:
    """Failed and expired as a percentage of the period's charges that ended."""
    ended = kpis.payments + kpis.failed + kpis.expired
    return 100 * (kpis.failed + kpis.expired) / ended if ended else None


def _versus(days: int) -> str:
    if days == 1:
        return "vs dia anterior"
    if days == 7:
        return "vs semana anterior"
    return f"vs {days} dias anteriores"


def _change(now: Decimal | float | None, then: Decimal | float | None, versus: str) -> str:
    """``+12,3% vs semana anterior``; empty when either side is unknown or the base is 0."""
    if now is None or then is None or not then:
        return ""
    return f"{format_percent(100 * (float(now) - float(then)) / float(then), signed=True)} {versus}"


# --------------------------------------------------------------------------- reading


def reading_items(texts: Sequence[str]) -> list[str]:
    """The reading's items: blank texts dropped, wrapped lines joined, "- "/"• " lines split
    into items of their own, Markdown bold marks removed."""
    items: list[str] = []
    for text in texts:
        current: list[str] = []
        for raw in str(text).replace("**", "").splitlines():
            line = raw.strip()
            marked = line.startswith(_BULLET_MARKS)
            if (not line or marked) and current:
                items.append(" ".join(current))
                current = []
            if line:
                current.append(line[2:].strip() if marked else line)
        if current:
            items.append(" ".join(current))
    return [item for item in items if item]


def _reading_note(source: str) -> str:
    note = READING_NOTES.get(source.strip().lower())
    if note is None:
        raise ReportError(
            f"reading_source {source!r} is unknown; use one of {', '.join(READING_NOTES)}"
        )
    return note


def _reading(doc: PdfDocument, items: list[str], note: str) -> None:
    if not items:
        return
    doc.space(2)
    doc.heading("Leitura do período")
    doc.bullets(items)
    doc.paragraph(note, size_pt=8)


# --------------------------------------------------------------------------- tables


def _tables(doc: PdfDocument, kpis: PeriodKpis, top_stores: int) -> None:
    _section(doc, "Pagamentos por hora do dia", _time_columns("Hora", 22), _by_time(kpis, "hour"))
    _section(doc, "Pagamentos por dia", _time_columns("Dia", 48), _by_time(kpis, "day"))
    _section(doc, "Pagamentos por cidade", _place_columns("Cidade"), _by_place(kpis.by_city, kpis))
    stores = kpis.by_store
    heading = "Pagamentos por loja"
    if len(stores) > top_stores:
        heading += f" (as {top_stores} de maior receita, de {format_count(len(stores))})"
    _section(doc, heading, _place_columns("Loja"), _by_store(kpis, top_stores))
    _section(
        doc,
        "Ticket médio e ociosidade por período do dia",
        _day_part_columns(),
        _by_day_part(kpis),
        note="Ociosidade: minutos do período do dia sem nenhum pagamento na loja, em média por "
        "loja e por dia em que ela vendeu.",
    )
    _section(
        doc,
        "Tempo de confirmação por cidade",
        [
            TableColumn("Cidade", 70),
            TableColumn("Pagamentos", 30, "right"),
            TableColumn("Tempo médio", 34, "right"),
            TableColumn("p95", 34, "right"),
        ],
        (
            TableRow(
                (
                    c.city,
                    format_count(c.payments),
                    format_duration_s(c.mean_s),
                    format_duration_s(c.p95_s),
                )
            )
            for c in kpis.confirmation_by_city
        ),
        note="Da cobrança criada ao pagamento confirmado; da cidade mais lenta para a mais rápida.",
    )
    _section(
        doc,
        "Pagamentos por hora ao longo do período",
        [
            TableColumn("Hora", 22),
            TableColumn("Mínimo por dia", 36, "right"),
            TableColumn("Máximo por dia", 36, "right"),
            TableColumn("Média por dia", 36, "right"),
        ],
        (
            TableRow(
                (s.label, format_count(s.minimum), format_count(s.maximum), format_decimal(s.mean))
            )
            for s in kpis.hourly_spread
        ),
        note=f"Para cada hora, o menor, o maior e a média de pagamentos entre os {kpis.days} "
        "dias do período (dias sem pagamento contam 0).",
    )


def _section(
    doc: PdfDocument,
    heading: str,
    columns: list[TableColumn],
    rows: Iterable[TableRow],
    *,
    note: str = "",
) -> None:
    """A heading, an optional note and the table; nothing when there are no rows."""
    table = list(rows)
    if not table:
        return
    if len(table) <= _KEEP_TOGETHER_ROWS:
        doc.keep_together(_SECTION_HEAD_PT + doc.table_height_pt(len(table)))
    doc.space(3)
    doc.heading(heading, size_pt=11)
    if note:
        doc.paragraph(note, size_pt=8)
    doc.table(columns, table)


def _time_columns(label: str, width_mm: float) -> list[TableColumn]:
    return [
        TableColumn(label, width_mm),
        TableColumn("Pagamentos", 28, "right"),
        TableColumn("% dos pagamentos", 30, "right"),
        TableColumn("Receita", 38, "right"),
        TableColumn("Ticket médio", 30, "right"),
    ]


def _place_columns(label: str) -> list[TableColumn]:
    return [
        TableColumn("#", 10, "right"),
        TableColumn(label, 54),
        TableColumn("Pagamentos", 26, "right"),
        TableColumn("% da receita", 24, "right"),
        TableColumn("Receita", 36, "right"),
        TableColumn("Ticket médio", 26, "right"),
    ]


def _day_part_columns() -> list[TableColumn]:
    return [
        TableColumn("Período", 26),
        TableColumn("Horário", 28),
        TableColumn("Pagamentos", 28, "right"),
        TableColumn("Ticket médio", 30, "right"),
        TableColumn("Ociosidade por loja e dia", 46, "right"),
    ]


def _by_time(kpis: PeriodKpis, axis: str) -> Iterator[TableRow]:
    rows = kpis.by_hour if axis == "hour" else kpis.by_day
    for row in rows:
        label = row.label if axis == "hour" else _day_label(row.label)
        yield TableRow(
            (
                label,
                format_count(row.payments),
                _share(row.payments, kpis.payments),
                format_brl(row.revenue),
                _brl(row.average_ticket),
            )
        )
    if rows:
        yield TableRow(
            (
                "Total",
                format_count(kpis.payments),
                _share(kpis.payments, kpis.payments),
                format_brl(kpis.revenue),
                _brl(kpis.average_ticket),
            ),
            emphasis=True,
        )


def _by_place(rows: Sequence[KpiRow], kpis: PeriodKpis) -> Iterator[TableRow]:
    """Ranked rows and the total line."""
    for rank, row in enumerate(rows, start=1):
        yield _place_row(str(rank), row, kpis.revenue)
    if rows:
        yield _total_row(kpis)


def _by_store(kpis: PeriodKpis, top_stores: int) -> Iterator[TableRow]:
    """The first ``top_stores``, one line for the rest, the total line."""
    stores = kpis.by_store
    for rank, row in enumerate(stores[:top_stores], start=1):
        yield _place_row(str(rank), row, kpis.revenue)
    rest = stores[top_stores:]
    if rest:
        label = f"Demais {format_count(len(rest))} lojas"
        yield _place_row("", _summed(label, rest), kpis.revenue)
    if stores:
        yield _total_row(kpis)


def _total_row(kpis: PeriodKpis) -> TableRow:
    total = KpiRow("Total", kpis.payments, kpis.revenue, kpis.average_ticket)
    return _place_row("", total, kpis.revenue, emphasis=True)


def _place_row(rank: str, row: KpiRow, revenue: Decimal, *, emphasis: bool = False) -> TableRow:
    return TableRow(
        (
            rank,
            row.label,
            format_count(row.payments),
            _share(row.revenue, revenue),
            format_brl(row.revenue),
            _brl(row.average_ticket),
        ),
        emphasis=emphasis,
    )


def _summed(label: str, rows: Sequence[KpiRow]) -> KpiRow:
    payments = sum(row.payments for row in rows)
    revenue = sum((row.revenue for row in rows), Decimal(0))
    return KpiRow(
        label, payments, revenue, (revenue / payments).quantize(CENT) if payments else None
    )


def _by_day_part(kpis: PeriodKpis) -> Iterator[TableRow]:
    hours = {label: f"{first:02d}h às {last:02d}h" for label, first, last in DAY_PARTS}
    for row in kpis.by_day_part:
        idle = row.idle_minutes_per_store_day
        yield TableRow(
            (
                row.label.capitalize(),
                hours.get(row.label, "—"),
                format_count(row.payments),
                _brl(row.average_ticket),
                "—" if idle is None else format_duration_s(idle * 60),
            )
        )


def _day_label(label: str) -> str:
    """``Sexta-feira, 20/11/2026`` from ``20/11/2026``; other labels as they are."""
    try:
        day = datetime.strptime(label, "%d/%m/%Y").date()
    except ValueError:
        return label
    return format_day_heading(day)


def _share(part: Decimal | int, whole: Decimal | int) -> str:
    return format_percent(100 * float(part) / float(whole)) if whole else "—"


def _brl(amount: Decimal | None) -> str:
    return "—" if amount is None else format_brl(amount)
