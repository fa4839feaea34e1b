"""``pulso archive run|ls``: copy every event on the bus to the raw archive; list it."""

from __future__ import annotations

from typing import Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run(
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle/--forever",
            help="Stop when the bus has nothing new for one poll (default: run until Ctrl-C).",
        ),
    ] = False,
) -> None:
    """Archive the bus (PULSO_ARCHIVE_TOPICS) to PULSO_ARCHIVE_URL as Parquet, partitioned
    by topic, date and hour (UTC of occurred_at); exactly once, even after a crash."""
    settings = load_settings_or_exit()
    with user_errors():
        import threading

        from pulso.archive import archive_topics, open_archive
        from pulso.archive.archiver import ArchiveBatch, Archiver
        from pulso.bus import open_bus

        bus = open_bus(settings)
        bucket = open_archive(settings)
        try:
            archiver = Archiver(
                bus,
                bucket,
                topics=archive_topics(settings),
                batch_size=settings.archive_batch_size,
                poll_timeout_s=settings.archive_poll_s,
                linger_s=settings.archive_linger_s,
            )
            console.print(
                f"archiving {', '.join(archive_topics(settings))} to {bucket.url}",
                markup=False,
                soft_wrap=True,
            )

            def report(batch: ArchiveBatch) -> None:
                skipped = f", {batch.skipped:,} skipped (not an event)" if batch.skipped else ""
                console.print(f"{batch.archived:,} events in {len(batch.parts)} parts{skipped}")

            try:
                totals = archiver.run(threading.Event(), until_idle=until_idle, on_batch=report)
            finally:
                archiver.close()
        finally:
            bucket.close()
            bus.close()
    console.print(
        f"archived {totals.archived:,} events in {totals.parts:,} parts "
        f"({totals.batches:,} batches, {totals.skipped:,} skipped)"
    )


@app.command("ls")
def ls(
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="Only this UTC date (YYYY-MM-DD).")
    ] = None,
    rows: Annotated[
        bool, typer.Option("--rows", help="Also count events (reads every part).")
    ] = False,
) -> None:
    """List the archive's hour partitions: files and size (and events with --rows)."""
    settings = load_settings_or_exit()
    if day is not None:
        from datetime import date

        try:
            date.fromisoformat(day)
        except ValueError:
            raise fail(f"--date {day!r} is not a date; write YYYY-MM-DD") from None
    with user_errors():
        from rich.table import Table

        from pulso.archive import open_archive
        from pulso.archive.archiver import hours, list_parts, read_part

        bucket = open_archive(settings)
        try:
            prefix = f"topic={topic}/" if topic else ""
            if topic and day:
                prefix += f"date={day}/"
            parts = [p for p in list_parts(bucket, prefix) if day is None or str(p.hour.day) == day]
            grouped = list(hours(parts))
            counts = (
                {h: sum(read_part(bucket, p.key).num_rows for p in ps) for h, ps in grouped}
                if rows
                else {}
            )
            url = bucket.url
        finally:
            bucket.close()
    table = Table("topic", "date", "hour (UTC)", "files", "size", *(["events"] if rows else []))
    for hour, hour_parts in grouped:
        size = sum(p.size for p in hour_parts)
        extra = [f"{counts[hour]:,}"] if rows else []
        table.add_row(
            hour.topic, str(hour.day), f"{hour.hour:02d}", str(len(hour_parts)), _size(size), *extra
        )
    console.print(f"archive {url}", markup=False, soft_wrap=True)
    if grouped:
        console.print(table)
    total = sum(p.size for p in parts)
    console.print(f"{len(grouped):,} hour partitions, {len(parts):,} files, {_size(total)}")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"
