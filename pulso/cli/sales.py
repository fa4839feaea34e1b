"""``pulso sales``: daily sales files (CSV) for the sales ETL.

The generator and the bucket backends are imported inside the command, so that
``pulso --help`` stays fast.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors

if TYPE_CHECKING:
    from pulso.buckets import Bucket
    from pulso.sources.sales_generator import SalesConfig, SalesStats

app = typer.Typer(no_args_is_help=True, add_completion=False)

_DATE_FORMATS = ["%Y-%m-%d"]


@app.callback()
def _group() -> None:
    """Daily sales files (CSV) for the sales ETL."""


@app.command("generate")
def generate(
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=_DATE_FORMATS, help="Day of the sales; default: today (local)."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="Sales lines in the file.")] = 50_000,
    stores: Annotated[int, typer.Option(help="Number of stores.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same bytes.")] = 42,
    bucket: Annotated[
        str | None,
        typer.Option(
            help="Drop the file here as sales-<date>.csv: file:///folder or s3://bucket/prefix;"
            " default: PULSO_BUCKET_URL, else the data dir's bucket folder."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write a local file instead.")
    ] = None,
    bad_rate: Annotated[
        float, typer.Option(help="Share of lines replaced by bad ones (for the rejects), 0..0.5.")
    ] = 0.0,
) -> None:
    """One day of synthetic store sales as a CSV file.

    Sellers with Brazilian names, stores in real cities, plausible prices per category,
    sales along the opening hours. The layout is documented in
    pulso/sources/sales_generator.py; --bad-rate mixes in bad lines of known kinds.
    """
    if bucket is not None and out is not None:
        raise fail("say where the file goes: --bucket URL or --out FILE, not both", 2)
    config = _config(day.date() if day else _local_today(), rows, stores, seed, bad_rate)
    started_s = time.perf_counter()
    with user_errors():
        target, key = _destination(bucket, out)
        try:
            stats, url = _generate_into(target, key, config)
        finally:
            target.close()
    _print_summary(config, stats, url, time.perf_counter() - started_s)


def _config(day: date, rows: int, stores: int, seed: int, bad_rate: float) -> SalesConfig:
    """The generator's config, or exit 2 naming the option to change."""
    from pulso.sources import GeneratorConfigError
    from pulso.sources.sales_generator import SalesConfig

    try:
        return SalesConfig(day=day, rows=rows, n_stores=stores, seed=seed, bad_rate=bad_rate)
    except GeneratorConfigError as e:
        raise fail(f"--{e.option}: {e.problem}", 2) from None


def _local_today() -> date:
    from pulso.sources.sales_generator import LOCAL_TZ

    return datetime.now(LOCAL_TZ).date()


def _destination(bucket_url: str | None, out: Path | None) -> tuple[Bucket, str | None]:
    """The bucket to write into, and the key (None: the day's default key)."""
    if out is not None:
        from pulso.buckets.local import FileBucket

        # A local file is written like a bucket object: whole, or not at all.
        return FileBucket(out.parent, create=True), out.name
    from pulso.buckets import open_bucket

    settings = load_settings_or_exit()
    return open_bucket(bucket_url or "", settings, create=True), None


def _generate_into(bucket: Bucket, key: str | None, config: SalesConfig) -> tuple[SalesStats, str]:
    from pulso.sources.sales_generator import sales_object_key, write_sales_csv

    name = key or sales_object_key(config.day)
    progress, task = progress_bar("sales", config.rows)
    started_s = time.perf_counter()
    done = [0]

    def advance(rows: int) -> None:
        done[0] += rows
        rate = done[0] / max(time.perf_counter() - started_s, 1e-9)
        progress.update(task, advance=rows, rate=f"{rate:,.0f} rows/s")

    with progress:
        with bucket.open_write(name) as stream:
            stats = write_sales_csv(config, stream, on_rows=advance)
            progress.update(task, description="storing")
        progress.update(task, description="stored")
    return stats, bucket.url_of(name)


def _print_summary(config: SalesConfig, stats: SalesStats, url: str, elapsed_s: float) -> None:
    from rich.table import Table

    from pulso.domain.money import format_brl

    bad = ", ".join(f"{kind} {n:,}" for kind, n in stats.bad_by_kind.items() if n)
    table = Table(title="pulso sales generate", show_header=False)
    rows: list[tuple[str, Any]] = [
        ("day", f"{config.day} (America/Sao_Paulo)"),
        ("stores", f"{config.n_stores:,}"),
        ("lines", f"{stats.rows:,} ({stats.good_rows:,} good)"),
        ("bad lines", f"{stats.bad_rows:,}" + (f" ({bad})" if bad else "")),
        ("good sales", format_brl(stats.good_total_cents, cents=True)),
        ("size", f"{stats.bytes_written / 1e6:,.1f} MB"),
        ("written to", url),
        ("took", f"{elapsed_s:.1f} s ({stats.rows / max(elapsed_s, 1e-9):,.0f} rows/s)"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
