"""``pulso etl run|runs|consume|watch``: load daily sales files into the store, once each."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.etl_watch import watch
from pulso.cli.output import console, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.etl import Progress, RunRecord

app = typer.Typer(no_args_is_help=True, add_completion=False)
app.command("watch")(watch)


@app.callback()
def _group() -> None:
    """Load daily sales files: by hand, or as the bucket watcher announces them."""


@app.command("run")
def run(
    source: Annotated[
        str, typer.Argument(help="The file: a path, file:///abs/path.csv or s3://bucket/key.csv.")
    ],
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Show a progress bar (on a terminal)."),
    ] = True,
) -> None:
    """Load one sales CSV (.csv or .csv.gz) into the sales table.

    Good rows load in one transaction with the run's record; refused rows go to
    <name>.rejects.csv beside the file, with their line and reason. The same bytes load
    once: a repeat loads nothing and says "already loaded". Exit 1 when the file cannot be
    read as a sales CSV.
    """
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.etl import run_file
        from pulso.store import open_store

        store = open_store(settings)
        try:
            show = progress and console.is_terminal
            with _ProgressBar(source) if show else nullcontext(None) as bar:
                record = run_file(store, source, settings, on_progress=bar)
        finally:
            store.close()
    _print_run(record)


@app.command("runs")
def runs(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 20,
) -> None:
    """List recent ETL runs: file, outcome, rows read, loaded and rejected, duration."""
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.etl import list_runs
        from pulso.store import open_store

        store = open_store(settings)
        try:
            records = list_runs(store, limit=limit)
        finally:
            store.close()
    _print_runs(records)


@app.command("consume")
def consume(
    once: Annotated[
        bool, typer.Option("--once", help="Stop when no file event is waiting.")
    ] = False,
    group: Annotated[str, typer.Option(help="Consumer group name.")] = "pulso-etl",
) -> None:
    """Load each file the bucket watcher announces (file.detected events on the files topic).

    The bus offset is committed after each run is recorded. Ctrl-C stops.
    """
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.bus import open_bus
        from pulso.etl.consume import FileConsumer
        from pulso.store import open_store

        bus = open_bus(settings)
        store = open_store(settings)
        try:
            console.print(f"consuming file events as {group!r}; Ctrl-C stops")
            consumer = FileConsumer(bus, store, settings, group=group)
            stats = consumer.run(stop_when_idle=once, on_run=_print_run)
        except KeyboardInterrupt:
            console.print("stopping")
            return
        finally:
            store.close()
            bus.close()
    by_status = ", ".join(f"{status} {n}" for status, n in sorted(stats.runs.items()))
    console.print(
        f"{stats.events} file events: {by_status or 'no runs'}; {stats.skipped} skipped, "
        f"{stats.dead_letters} dead-lettered"
    )


class _ProgressBar(AbstractContextManager["_ProgressBar"]):
    """Bytes read as the bar, rows and rows/s beside it."""

    def __init__(self, source: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        name = source.rstrip("/").rsplit("/", 1)[-1]
        self._task = self._progress.add_task(name, total=None, rows="0", rate="")

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, at: Progress) -> None:
        rate = at.rows_read / at.elapsed_s if at.elapsed_s > 0 else 0.0
        self._progress.update(
            self._task,
            completed=at.bytes_read,
            total=at.size_bytes,
            rows=f"{at.rows_read:,}",
            rate=f"{rate:,.0f} rows/s",
        )


def _print_run(record: RunRecord) -> None:
    name = record.source.rsplit("/", 1)[-1]
    seconds = record.duration_ms / 1000
    if record.status == "already_loaded":
        console.print(f"{name}: already loaded ({record.error}); nothing loaded", soft_wrap=True)
        return
    rate = record.rows_read / seconds if seconds > 0 else 0.0
    console.print(
        f"{name}: {record.rows_read:,} rows read, {record.rows_loaded:,} loaded, "
        f"{record.rows_rejected:,} rejected"
        + (f", {record.rows_duplicate:,} already stored" if record.rows_duplicate else "")
        + f" in {seconds:,.1f} s ({rate:,.0f} rows/s)",
        soft_wrap=True,
    )
    if record.rejects_url:
        console.print(f"rejects: {record.rejects_url}", soft_wrap=True)


_STATUS_LABELS = {"already_loaded": "repeat"}
_RUNS_HEADER = ("started UTC", "status", "read", "loaded", "rejected", "dup.", "secs", "file")


def _print_runs(records: list[RunRecord]) -> None:
    """One line per run, the file last and whole (however narrow the terminal)."""
    if not records:
        console.print("no ETL runs yet: `pulso etl run FILE` loads one")
        return
    rows = [_RUNS_HEADER, *(_run_cells(r) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_RUNS_HEADER) - 1)]
    for row in rows:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        console.print("  ".join([*cells, row[-1]]), markup=False, soft_wrap=True)
    if any(r.status == "already_loaded" for r in records):
        console.print("repeat: the same bytes were loaded before; nothing was loaded again")
    for r in records:
        if r.status == "failed":
            console.print(f"failed {r.started_at:%m-%d %H:%M}: {r.error}", soft_wrap=True)


def _run_cells(r: RunRecord) -> tuple[str, ...]:
    return (
        f"{r.started_at:%m-%d %H:%M:%S}",
        _STATUS_LABELS.get(str(r.status), str(r.status)),
        f"{r.rows_read:,}",
        f"{r.rows_loaded:,}",
        f"{r.rows_rejected:,}",
        f"{r.rows_duplicate:,}",
        f"{r.duration_ms / 1000:,.1f}",
        r.source.rsplit("/", 1)[-1],
    )
