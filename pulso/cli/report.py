"""``pulso report``: the payment analytics as files."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors

if TYPE_CHECKING:
    from pulso.analytics.heatmaps import HeatmapGrid
    from pulso.config import Settings

app = typer.Typer(no_args_is_help=True)

FORMATS = ("csv", "png")
_DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]


@app.command("heatmaps")
def heatmaps(
    start: Annotated[
        datetime, typer.Option("--from", formats=_DATE_FORMATS, help="First local day.")
    ],
    end: Annotated[datetime, typer.Option("--to", formats=_DATE_FORMATS, help="Last local day.")],
    out: Annotated[Path, typer.Option(help="Folder for the files (created if missing).")],
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: csv (the grid), png (the picture).")
    ] = "png,csv",
    store: Annotated[str | None, typer.Option(help="Only this store id.")] = None,
    city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
) -> None:
    """Write the 34 payment heatmaps (mapa_calor_<name>.png / .csv) for a period."""
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
    from pulso.analytics.heatmaps import HEATMAPS, heatmap
    from pulso.reports.heatmap_csv import write_heatmap_csv
    from pulso.store import open_store

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"--out: cannot create {out} ({e.strerror})") from None
    store = open_store(settings)
    written: list[Path] = []
    progress, task = progress_bar("heatmaps", total=len(HEATMAPS))
    try:
        with progress:
            for name in HEATMAPS:
                grid = heatmap(store, name, start=start, end=end, store_id=store_id, city=city)
                if "csv" in formats:
                    written.append(write_heatmap_csv(grid, out))
                if "png" in formats:
                    written.append(_write_png(grid, out))
                progress.advance(task)
    finally:
        store.close()
    return written


def _write_png(grid: HeatmapGrid, out: Path) -> Path:
    from pulso.reports.heatmap_png import render_heatmap_png

    path = out / grid.spec.file_name
    path.write_bytes(render_heatmap_png(grid))
    return path
