"""``pulso report``: the payment analytics as files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors

if TYPE_CHECKING:
    from pulso.analytics.heatmaps import HeatmapGrid
    from pulso.config import Settings
    from pulso.reports.payments_report import PaymentsReport

app = typer.Typer(no_args_is_help=True)

FORMATS = ("csv", "png", "html")
_DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
_PERIOD_HELP = "yesterday (the last complete local day) or last-week (Monday to Sunday)."
PeriodOption = Annotated[str, typer.Option(help=_PERIOD_HELP)]
FromOption = Annotated[
    datetime | None,
    typer.Option("--from", formats=_DATE_FORMATS, help="First local day (with --to)."),
]
ToOption = Annotated[
    datetime | None,
    typer.Option("--to", formats=_DATE_FORMATS, help="Last local day (with --from)."),
]
StoreOption = Annotated[str | None, typer.Option(help="Only this store id.")]
CityOption = Annotated[str | None, typer.Option(help="Only this city.")]


@app.command("heatmaps")
def heatmaps(
    start: Annotated[
        datetime, typer.Option("--from", formats=_DATE_FORMATS, help="First local day.")
    ],
    end: Annotated[datetime, typer.Option("--to", formats=_DATE_FORMATS, help="Last local day.")],
    out: Annotated[Path, typer.Option(help="Folder for the files (created if missing).")],
    formats: Annotated[
        str,
        typer.Option(
            "--format",
            help="Comma-separated: csv (each grid), png (each picture), html (one page with"
            " all of them, relatorio_mapas_calor.html).",
        ),
    ] = "png,csv",
    store: StoreOption = None,
    city: CityOption = None,
) -> None:
    """Write the 34 payment heatmaps for a period.

    mapa_calor_<name>.png / .csv per heatmap; html: all in one page, relatorio_mapas_calor.html.
    """
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown or not chosen:
        raise fail(
            f"--format: unknown {', '.join(unknown) or '(none)'}; use {','.join(FORMATS)}", 2
        )
    if start.date() > end.date():
        raise fail("--from is after --to", code=2)
    settings = load_settings_or_exit()
    with user_errors():
        written = _write(settings, start.date(), end.date(), out, chosen, store, city)
    console.print(f"wrote {len(written)} files to {out}")


def _write(
    settings: Settings,
    start: date,
    end: date,
    out: Path,
    formats: list[str],
    store_id: str | None,
    city: str | None,
) -> list[Path]:
    from pulso.analytics.heatmaps import all_heatmaps
    from pulso.reports.heatmap_csv import write_heatmap_csv
    from pulso.store import open_store

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"--out: cannot create {out} ({e.strerror})") from None
    store = open_store(settings)
    try:
        # One scan of the payments for all 34 grids, instead of one query per heatmap.
        grids = list(
            all_heatmaps(store, start=start, end=end, store_id=store_id, city=city).values()
        )
    finally:
        store.close()
    from pulso.reports.payments_report import filter_text as describe_filter

    filter_text = describe_filter(store_id, city)
    written: list[Path] = []
    progress, task = progress_bar("heatmaps", total=len(grids))
    with progress:
        for grid in grids:
            if "csv" in formats:
                written.append(write_heatmap_csv(grid, out))
            if "png" in formats:
                written.append(_write_png(grid, out, filter_text))
            progress.advance(task)
    if "html" in formats:
        written.append(_write_html(grids, out, filter_text))
    return written


def _write_png(grid: HeatmapGrid, out: Path, filter_text: str | None) -> Path:
    from pulso.reports.heatmap_png import render_heatmap_png

    path = out / grid.spec.file_name
    path.write_bytes(render_heatmap_png(grid, filter_text=filter_text))
    return path


def _write_html(grids: list[HeatmapGrid], out: Path, filter_text: str | None) -> Path:
    from pulso.reports.heatmap_html import write_heatmaps_html

    return write_heatmaps_html(grids, out, generated_at=datetime.now(UTC), filter_text=filter_text)


def _period(period: str, start: datetime | None, end: datetime | None) -> tuple[date, date]:
    """The local days a report covers: --from/--to when given, else --period."""
    from pulso.reports.schedule import PERIOD_NAMES, period_dates
    from pulso.sources.payments_generator import local_today

    if (start is None) != (end is None):
        raise fail("give both --from and --to, or neither (then --period decides)", code=2)
    if start is not None and end is not None:
        if start.date() > end.date():
            raise fail("--from is after --to", code=2)
        return start.date(), end.date()
    if period not in PERIOD_NAMES:
        raise fail(f"--period: unknown {period!r}; use {' or '.join(PERIOD_NAMES)}", code=2)
    return period_dates(period, today=local_today())


@app.command("build")
def build(
    period: PeriodOption = "yesterday",
    start: FromOption = None,
    end: ToOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the report (default: PULSO_DATA_DIR/reports/relatorio_...)."),
    ] = None,
    store: StoreOption = None,
    city: CityOption = None,
) -> None:
    """Write a period's whole payment report: 34 PNGs, the HTML page, the PDF, the reading.

    Files: mapa_calor_<name>.png, relatorio_mapas_calor.html, relatorio_pagamentos.pdf and
    leitura.md. With PULSO_LLM_URL and PULSO_LLM_MODEL set, an LLM rewrites the reading.
    """
    settings = load_settings_or_exit()
    first, last = _period(period, start, end)
    with user_errors():
        from pulso.reports.payments_report import build_payments_report, report_folder
        from pulso.store import open_store

        folder = out or report_folder(settings.data_dir / "reports", first, last)
        with closing(open_store(settings)) as opened, _steps() as step:
            report = build_payments_report(
                opened, settings, start=first, end=last, folder=folder,
                store_id=store, city=city, step=step,
            )  # fmt: skip
    _print_report(report)


@app.command("send")
def send(
    period: PeriodOption = "yesterday",
    channels: Annotated[
        str,
        typer.Option(
            help="Comma-separated: email, telegram, slack. Default: PULSO_REPORT_CHANNELS, "
            "or every configured channel."
        ),
    ] = "",
    start: FromOption = None,
    end: ToOption = None,
    store: StoreOption = None,
    city: CityOption = None,
) -> None:
    """Build a period's payment report and send it by e-mail, Telegram and/or Slack.

    The files stay under PULSO_DATA_DIR/reports. A failing channel is retried
    (PULSO_NOTIFY_RETRIES) and reported; it does not stop the others. Exit code 1 when any
    channel failed. Channels are configured in docs/notifications.md.
    """
    settings = load_settings_or_exit()
    first, last = _period(period, start, end)
    with user_errors():
        from pulso.reports.send import channels_from_setting, send_report
        from pulso.store import open_store

        chosen = channels_from_setting(channels or settings.report_channels)
        with closing(open_store(settings)) as opened, _steps() as step:
            sent = send_report(
                opened, settings, start=first, end=last, channels=chosen,
                store_id=store, city=city, step=step,
            )  # fmt: skip
    _print_report(sent.report)
    for result in sent.delivery.results:
        colour = "green" if result.ok else "red"
        console.print(f"[{colour}]{result.describe()}[/]", soft_wrap=True)
    if not sent.delivery.ok:
        raise typer.Exit(1)


@contextmanager
def _steps() -> Iterator[Callable[[str], None]]:
    """A spinner naming the report's current step."""
    with console.status("relatório") as status:

        def step(name: str) -> None:
            status.update(f"relatório: {name}")

        yield step


def _print_report(report: PaymentsReport) -> None:
    console.print(
        f"report {report.period_text}: {len(report.files)} files in {report.folder}", soft_wrap=True
    )
    console.print(f"  PDF:  {report.pdf}", soft_wrap=True)
    console.print(f"  HTML: {report.html}", soft_wrap=True)
    console.print(f"  PNG:  {len(report.pictures)} mapa_calor_*.png", soft_wrap=True)
    console.print(f"reading ({report.reading.source}):")
    for insight in report.reading.insights:
        console.print(f"  • {insight.text}", soft_wrap=True, markup=False)
