"""``pulso events export|pdf|receipt``: the PIX events kept in the raw log, as files and PDFs.

Days given with ``--from``/``--to`` are calendar days in America/Sao_Paulo, both included;
they may be written ``2026-11-20`` or ``20/11/2026``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors
from pulso.domain.timefmt import DISPLAY_ZONE

if TYPE_CHECKING:
    from pulso.domain.events import Event

app = typer.Typer(no_args_is_help=True)

_DAY_FORMATS: Final = ("%Y-%m-%d", "%d/%m/%Y")
_USAGE_ERROR: Final = 2


# --------------------------------------------------------------------------- arguments


def parse_day(text: str, option: str) -> date:
    """A calendar day written ``YYYY-MM-DD`` or ``dd/mm/aaaa``; exit 2 otherwise."""
    for day_format in _DAY_FORMATS:
        try:
            return datetime.strptime(text.strip(), day_format).date()
        except ValueError:
            continue
    raise fail(
        f"{option} {text!r} is not a date: write YYYY-MM-DD or dd/mm/aaaa", code=_USAGE_ERROR
    )


def _days(from_text: str | None, to_text: str | None) -> tuple[date | None, date | None]:
    first = parse_day(from_text, "--from") if from_text is not None else None
    last = parse_day(to_text, "--to") if to_text is not None else None
    if first is not None and last is not None:
        _check_order(first, last)
    return first, last


def _check_order(first: date, last: date) -> None:
    if first > last:
        raise fail(
            f"--from {first:%Y-%m-%d} is after --to {last:%Y-%m-%d}; swap them",
            code=_USAGE_ERROR,
        )


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), DISPLAY_ZONE)


def period_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """``[local midnight of first, local midnight after last)``; None leaves a side open."""
    start = _local_midnight(first) if first is not None else None
    end = _local_midnight(last + timedelta(days=1)) if last is not None else None
    return start, end


def _check_out_file(path: Path) -> None:
    if path.is_dir():
        raise fail(f"--out {path} is a folder; name the PDF file to write", code=_USAGE_ERROR)
    if not path.parent.is_dir():
        raise fail(
            f"the folder {path.parent} does not exist; create it or choose another --out",
            code=_USAGE_ERROR,
        )


def _write_file(path: Path, content: bytes) -> None:
    """Write aside, then rename: a reader never sees half a PDF."""
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot write {path}: {e.strerror or e}; choose another --out") from None


# --------------------------------------------------------------------------- commands


@app.command("export")
def export(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write into (one sub-folder a day).")
    ],
    from_day: Annotated[
        str | None, typer.Option("--from", help="First day (default: the first event's).")
    ] = None,
    to_day: Annotated[
        str | None, typer.Option("--to", help="Last day, included (default: the last event's).")
    ] = None,
    store_id: Annotated[
        str | None, typer.Option("--store", help="Only this store's charges.")
    ] = None,
    with_documents: Annotated[
        bool,
        typer.Option(
            "--with-documents",
            help="Keep payers' CPF/CNPJ in clear, exactly as stored (default: masked).",
        ),
    ] = False,
) -> None:
    """Write each PIX event of the raw log as a JSON file: DIR/YYYY-MM-DD/<time>_<type>_<id>.json"""
    start, end = period_bounds(*_days(from_day, to_day))
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.pix.event_store import (
            count_pix_events,
            export_events,
            iter_pix_records,
            prepare_export_dir,
        )
        from pulso.store import open_store

        prepare_export_dir(out)
        store = open_store(settings)
        try:
            total = count_pix_events(store, start=start, end=end, store_id=store_id)
            progress, task = progress_bar("exporting events", total)
            with progress:
                records = iter_pix_records(store, start=start, end=end, store_id=store_id)
                written = export_events(
                    records,
                    out,
                    mask_documents=not with_documents,
                    progress=lambda n: progress.advance(task, n),
                )
        finally:
            store.close()
    masked = "" if with_documents else " (payers' CPF/CNPJ masked)"
    console.print(f"exported {written:,} events to {out}{masked}", soft_wrap=True)


@app.command("pdf")
def pdf(
    from_day: Annotated[str, typer.Option("--from", help="First day of the period.")],
    to_day: Annotated[str, typer.Option("--to", help="Last day of the period, included.")],
    out: Annotated[Path, typer.Option("--out", help="The PDF file to write.")],
    store_id: Annotated[
        str | None, typer.Option("--store", help="Only this store's charges.")
    ] = None,
) -> None:
    """Turn a period's PIX events into a PDF: totals, then each day's events."""
    first, last = parse_day(from_day, "--from"), parse_day(to_day, "--to")
    _check_order(first, last)
    _check_out_file(out)
    start, end = period_bounds(first, last)
    settings = load_settings_or_exit()
    read = 0

    def counted(events: Iterator[Event]) -> Iterator[Event]:
        nonlocal read
        for event in events:
            read += 1
            yield event

    with user_errors():
        from pulso.pix.event_store import iter_pix_events
        from pulso.reports.event_log import render_event_log
        from pulso.store import open_store

        store = open_store(settings)
        try:
            events = counted(iter_pix_events(store, start=start, end=end, store_id=store_id))
            content = render_event_log(events, period_from=first, period_to=last, store_id=store_id)
        finally:
            store.close()
    _write_file(out, content)
    console.print(f"wrote {out}: {read:,} events, {len(content) / 1024:,.0f} KiB", soft_wrap=True)


@app.command("receipt")
def receipt(
    charge_id: Annotated[str, typer.Argument(help="The charge id.")],
    out: Annotated[Path, typer.Option("--out", help="The PDF file to write.")],
) -> None:
    """Write the PIX receipt (comprovante) of one charge as a PDF."""
    _check_out_file(out)
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.reports.receipt import receipt_for_charge, render_receipt
        from pulso.store import open_store

        store = open_store(settings)
        try:
            found = receipt_for_charge(store, charge_id)
        finally:
            store.close()
        content = render_receipt(found)
    _write_file(out, content)
    console.print(f"wrote {out}: {found.title}, status {found.status}", soft_wrap=True)
