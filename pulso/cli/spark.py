"""``pulso spark run JOB``: the Apache Spark jobs (optional extra ``pulso[spark]``, Java 17).

Jobs: ``stream-payments`` (Structured Streaming from Kafka: windows and raw archive),
``heatmaps`` and ``market-trends`` (batch, Parquet in and out). See docs/spark.md.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.config import Settings

app = typer.Typer(no_args_is_help=True)

JOB_HELP = "stream-payments, heatmaps or market-trends."


@app.command("run")
def run(
    job: str = typer.Argument(..., help=JOB_HELP),
    master: str = typer.Option("local[2]", help="Spark master URL (local[N], spark://...)."),
    # stream-payments
    brokers: str | None = typer.Option(
        None, help="stream-payments: Kafka bootstrap servers (default: from PULSO_BUS_URL)."
    ),
    topic: str = typer.Option("payments", help="stream-payments: the topic to read."),
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="stream-payments: checkpoint folder (default: DATA_DIR/spark/checkpoint)."
        ),
    ] = None,
    sink: str = typer.Option(
        "store", help="stream-payments: windows into the store (stream_windows) or parquet."
    ),
    archive: bool = typer.Option(
        True, help="stream-payments: also copy every record to the raw Parquet archive."
    ),
    archive_url: str | None = typer.Option(
        None, help="stream-payments: archive location (default: DATA_DIR/spark/archive)."
    ),
    fail_on_data_loss: bool = typer.Option(
        True, help="stream-payments: fail when unread records are gone from Kafka."
    ),
    max_offsets: int | None = typer.Option(
        None, min=1, help="stream-payments: at most this many records per micro-batch."
    ),
    continuous: bool = typer.Option(
        False, help="stream-payments: keep running (default: process what is there, then stop)."
    ),
    timeout: float | None = typer.Option(
        None, min=1, help="stream-payments: stop after this many seconds."
    ),
    # batch jobs
    source: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="heatmaps/market-trends: Parquet input (default: exported from the store).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: DATA_DIR/spark/<job>); stream-payments: windows."
        ),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="heatmaps: first local day (default: 7 days ago)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="heatmaps: last local day (default: yesterday)."),
    ] = None,
    names: str | None = typer.Option(
        None, help="heatmaps: comma-separated grid names (default: the 32 Spark computes)."
    ),
    store_id: str | None = typer.Option(None, help="heatmaps: one store only."),
    city: str | None = typer.Option(None, help="heatmaps: one city only."),
    low_price: str | None = typer.Option(
        None, help="heatmaps: low-price threshold in reais (default: the 10th percentile)."
    ),
    days: float = typer.Option(7.0, min=0.01, help="market-trends: window length in days."),
) -> None:
    """Run a Spark job in local mode (or on --master)."""
    from pulso.spark import JOBS

    if job not in JOBS:
        raise fail(f"unknown job {job!r}: choose {', '.join(JOBS)}")
    if sink not in ("store", "parquet"):
        raise fail(f"unknown --sink {sink!r}: use store or parquet")
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.spark import check_available

        check_available()
        spark_dir = settings.data_dir / "spark"
        if job == "stream-payments":
            _stream(
                settings,
                master,
                brokers=brokers,
                topic=topic,
                checkpoint=checkpoint or spark_dir / "checkpoint",
                sink=sink,
                windows_path=out or spark_dir / "windows",
                archive_url=(archive_url or _file_url(spark_dir / "archive")) if archive else None,
                fail_on_data_loss=fail_on_data_loss,
                max_offsets=max_offsets,
                continuous=continuous,
                timeout=timeout,
            )
        elif job == "heatmaps":
            today = datetime.now(UTC).date()
            first = start.date() if start else today - timedelta(days=7)
            last = end.date() if end else today - timedelta(days=1)
            _heatmaps(
                settings,
                master,
                source,
                out or spark_dir / "heatmaps",
                first,
                last,
                names,
                store_id,
                city,
                _reais(low_price),
            )
        else:
            _trends(settings, master, source, out or spark_dir / "market-trends", days)


def _file_url(path: Path) -> str:
    from pulso.buckets.urls import file_url

    return file_url(path.absolute())


def _reais(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise fail(f"--low-price {text!r} is not an amount in reais (e.g. 12.50)") from None
    if not value.is_finite() or value < 0:
        raise fail(f"--low-price {text!r} is not an amount in reais (e.g. 12.50)")
    return value


def stop_session(spark: Any) -> None:
    from pulso.spark.session import stop_session as stop

    stop(spark)


def _session(master: str, job: str) -> Any:
    from pulso.spark.session import spark_session

    console.print(f"starting Spark ({master})…")
    return spark_session(master, f"pulso-{job}")


def _stream(
    settings: Settings,
    master: str,
    *,
    brokers: str | None,
    topic: str,
    checkpoint: Path,
    sink: str,
    windows_path: Path,
    archive_url: str | None,
    fail_on_data_loss: bool,
    max_offsets: int | None,
    continuous: bool,
    timeout: float | None,
) -> None:
    from pulso.spark.stream_payments import StreamJob, run_stream_payments

    if brokers is None:
        target = settings.bus
        if target.kind != "kafka":
            raise fail(
                "stream-payments reads Kafka: set PULSO_BUS_URL=kafka://host:port or --brokers"
            )
        brokers = target.brokers
    config = StreamJob(
        brokers=brokers,
        checkpoint=str(checkpoint.absolute()),
        topic=topic,
        windows_sink=sink,
        windows_path=str(windows_path.absolute()),
        archive_url=archive_url,
        watermark_s=settings.window_out_of_orderness_s + settings.window_allowed_lateness_s,
        fail_on_data_loss=fail_on_data_loss,
        max_offsets_per_trigger=max_offsets,
        available_now=not continuous,
    )
    spark = _session(master, "stream-payments")
    started = time.perf_counter()
    try:
        report = run_stream_payments(
            spark, config, settings, timeout_s=timeout, on_progress=console.print
        )
    except Exception as e:  # a failed query: its cause, not a JVM traceback
        raise fail(f"stream-payments failed: {_first_line(e)}") from None
    finally:
        stop_session(spark)
    seconds = time.perf_counter() - started
    where = "stream_windows" if sink == "store" else str(windows_path)
    console.print(
        f"read {topic} through {report.source}: {report.windows_written:,} windows "
        f"written to {where}; {report.archived:,} events archived"
        + (f" to {archive_url}" if archive_url else "")
        + f" in {seconds:.1f} s"
    )
    if report.offsets:
        console.print(f"offsets now: {report.offsets.get('partitions', report.offsets)}")


def _heatmaps(
    settings: Settings,
    master: str,
    source: Path | None,
    out: Path,
    start: date,
    end: date,
    names: str | None,
    store_id: str | None,
    city: str | None,
    low_price: Decimal | None,
) -> None:
    from pulso.spark.batch import PAYMENT_COLUMNS, SPARK_HEATMAPS, HeatmapJob, heatmap_cells

    chosen = tuple(n.strip() for n in names.split(",") if n.strip()) if names else SPARK_HEATMAPS
    source = source or _export(settings, "payments", PAYMENT_COLUMNS)
    if not source.exists():
        raise fail(f"no Parquet at {source}")
    spark = _session(master, "heatmaps")
    started = time.perf_counter()
    try:
        job = HeatmapJob(
            str(source.absolute()),
            str(out.absolute()),
            start,
            end,
            chosen,
            store_id,
            city,
            low_price,
        )
        cells = heatmap_cells(spark, job)
    finally:
        stop_session(spark)
    grids = len(set(cells.column("grid").to_pylist()))
    console.print(
        f"{grids} heatmaps, {cells.num_rows:,} cells ({start:%d/%m/%Y}–{end:%d/%m/%Y}) "
        f"written to {out} in {time.perf_counter() - started:.1f} s"
    )


def _trends(settings: Settings, master: str, source: Path | None, out: Path, days: float) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pulso.spark.batch import SNAPSHOT_COLUMNS, TrendsJob, market_trends

    source = source or _export(settings, "product_snapshots", SNAPSHOT_COLUMNS)
    if not source.exists():
        raise fail(f"no Parquet at {source}")
    taken = pq.read_table(source, columns=["taken_at"]).column("taken_at")
    if len(taken) == 0:
        raise fail("no product snapshots: run `pulso market sync` first")
    until = pc.max(taken).as_py()
    spark = _session(master, "market-trends")
    try:
        table = market_trends(
            spark,
            TrendsJob(
                str(source.absolute()), str(out.absolute()), until - timedelta(days=days), until
            ),
        )
    finally:
        stop_session(spark)
    statuses = table.column("status").to_pylist()
    counts = ", ".join(f"{s} {statuses.count(s)}" for s in sorted(set(statuses)))
    categories = len(set(table.column("category_id").to_pylist()))
    console.print(f"{categories} categories, {table.num_rows} products ({counts}) written to {out}")


def _export(settings: Settings, table: str, columns: tuple[str, ...]) -> Path:
    """Export a store table to DATA_DIR/spark/<table>.parquet (the default input)."""
    from pulso.spark.batch import export_table
    from pulso.store import open_store

    path = settings.data_dir / "spark" / f"{table}.parquet"
    store = open_store(settings)
    try:
        rows = export_table(store, table, columns, path)
    finally:
        store.close()
    console.print(f"exported {rows:,} rows of {table} to {path}")
    return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if "Error" in line or "error" in line:
            return line.strip()[:500]
    return (text.splitlines() or [type(error).__name__])[0][:500]
