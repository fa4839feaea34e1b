"""``pulso demo``: a realistic week for 20 stores through bus → pipeline → store, summarised."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors

if TYPE_CHECKING:
    from pulso.analytics.summary import PaymentsSummary
    from pulso.config import Settings

PUBLISH_CHUNK = 10_000


def demo(
    days: int = typer.Option(7, min=1, max=366, help="Days of traffic to generate."),
    stores: int = typer.Option(20, min=1, max=2_000, help="Number of stores."),
    cities: int = typer.Option(8, min=1, max=33, help="Number of cities the stores are in."),
    seed: int = typer.Option(42, help="Random seed: the same seed gives the same week."),
    malformed_rate: float = typer.Option(
        0.005,
        min=0.0,
        max=1.0,
        help="Malformed records mixed in per good event (each must end in the dead-letter).",
    ),
    report: bool = typer.Option(
        True,
        "--report/--no-report",
        help="Also write the week's report: 34 heatmap PNGs, the HTML page and the PDF.",
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Then start the API with the pipeline on the demo's data."
    ),
    port: int = typer.Option(8000, min=1, max=65535, help="Port for --serve."),
) -> None:
    """The main job: a week of PIX payments through the pipeline.

    Generates a realistic week for 20 stores in 8 cities (with some malformed events), streams
    it through bus → pipeline → store with a progress bar, prints the summary, and writes the
    week's payment report (heatmaps, HTML page, PDF). Everything lives under
    PULSO_DATA_DIR/demo (wiped at start): the bus log, the DuckDB file and the report folder.
    No server is needed.
    """
    base = load_settings_or_exit()
    settings = _demo_settings(base)
    with user_errors():
        from pulso.sources.payments_generator import (
            PaymentsConfig,
            local_today,
            period_start_date,
        )

        config = PaymentsConfig(
            start=period_start_date(days, today=local_today()),
            days=days,
            n_stores=stores,
            n_cities=cities,
            seed=seed,
            malformed_rate=malformed_rate,
        )
        started = time.perf_counter()
        produced = _stream(settings, config)
        summary, stored, dead = _summarise(settings)
    _print_summary(settings, summary, dead, time.perf_counter() - started)
    _check_exact(produced, stored, dead)
    if report:
        with user_errors():
            _write_report(settings, config.start, config.start + timedelta(days=days - 1))
    if serve:
        _serve(settings, port)


def _serve(settings: Settings, port: int) -> None:
    """The API (with the pipeline, the sales ETL and the report schedule) on the demo's data,
    and the dashboard reading it, until Ctrl-C."""
    from pulso.cli.serve import run_api, with_public_url
    from pulso.dashboard.launch import start_dashboard, stop_dashboard

    api = f"http://127.0.0.1:{port}"
    dashboard_port = port + 1 if port < 65535 else port - 1
    log_path = settings.data_dir / "dashboard.log"
    with log_path.open("ab") as log_file, user_errors():
        dashboard = start_dashboard(api, port=dashboard_port, output=log_file)
    console.print(
        f"serving the demo's data: API on {api} (docs at /docs), dashboard on "
        f"http://127.0.0.1:{dashboard_port} (log: {log_path}); "
        f"try  pulso pdv --api {api} --store LJ-0001 --amount 25,90",
        soft_wrap=True,
    )
    try:
        with user_errors():
            run_api(with_public_url(settings, "127.0.0.1", port), port=port, etl=True)
    finally:
        stop_dashboard(dashboard)


def _demo_settings(base: Settings) -> Settings:
    from pulso.config import duckdb_url

    demo_dir = (base.data_dir / "demo").resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    return base.model_copy(
        update={
            "data_dir": demo_dir,
            "bus_url": f"local://{(demo_dir / 'bus').as_posix()}",
            "store_url": duckdb_url(demo_dir / "pulso.duckdb"),
        }
    )


def _stream(settings: Settings, config: Any) -> Any:
    """Publish the generated records from a thread while the pipeline consumes them."""
    from pulso.bus import open_bus
    from pulso.domain.events import Topic
    from pulso.pipeline.factory import build_runner
    from pulso.sources.payments_generator import generate_payment_records
    from pulso.store import open_store

    bus = open_bus(settings)
    store = open_store(settings)
    runner = build_runner(settings, bus, store)
    published = [0]
    done = threading.Event()
    failure: list[BaseException] = []
    generation = generate_payment_records(config)

    def produce() -> None:
        try:
            chunk: list[tuple[bytes | None, bytes]] = []
            for record in generation:
                chunk.append(record)
                if len(chunk) >= PUBLISH_CHUNK:
                    bus.publish(Topic.PAYMENTS, chunk)
                    published[0] += len(chunk)
                    chunk = []
            if chunk:
                bus.publish(Topic.PAYMENTS, chunk)
                published[0] += len(chunk)
        except BaseException as e:  # re-raised in the main thread
            failure.append(e)
        finally:
            done.set()

    producer = threading.Thread(target=produce, name="pulso-demo-producer", daemon=True)
    progress, task = progress_bar("streaming payments", total=None)
    producer.start()
    try:
        with progress:

            def on_batch(result: Any, totals: Any) -> None:
                rate = totals.messages / max(time.perf_counter() - t0, 1e-9)
                total = published[0] if done.is_set() else None
                progress.update(
                    task, completed=totals.messages, total=total, rate=f"{rate:,.0f} events/s"
                )

            t0 = time.perf_counter()
            runner.run(
                stop=lambda s: bool(failure) or (done.is_set() and s.messages >= published[0]),
                on_batch=on_batch,
            )
        producer.join()
        if failure:
            raise failure[0]
    finally:
        runner.close()
        store.close()
        bus.close()
    return generation.stats


def _summarise(settings: Settings) -> tuple[PaymentsSummary, int, dict[str, int]]:
    from pulso.analytics.summary import payments_summary, stored_event_count
    from pulso.pipeline.deadletter import count_by_reason
    from pulso.store import open_store

    store = open_store(settings)
    try:
        return payments_summary(store), stored_event_count(store), count_by_reason(store)
    finally:
        store.close()


def _print_summary(
    settings: Settings, summary: PaymentsSummary, dead: dict[str, int], seconds: float
) -> None:
    from rich.table import Table

    from pulso.domain.money import format_brl
    from pulso.domain.timefmt import format_local

    console.print()
    kpis = Table(title="pulso demo — PIX payments", show_header=False, title_justify="left")
    kpis.add_column(style="bold")
    kpis.add_column(justify="right")
    kpis.add_row("period", f"{format_local(summary.first_at)} → {format_local(summary.last_at)}")
    kpis.add_row("stores / cities", f"{summary.stores} / {summary.cities}")
    kpis.add_row("charges", f"{summary.charges:,}")
    kpis.add_row("payments confirmed", f"{summary.confirmed:,}")
    kpis.add_row(
        "failed / expired / pending",
        f"{summary.failed:,} / {summary.expired:,} / {summary.pending:,}",
    )
    kpis.add_row("total confirmed", format_brl(summary.revenue))
    kpis.add_row("ticket médio", format_brl(summary.average_ticket))
    kpis.add_row(
        "confirmation p50 / p95",
        f"{_seconds(summary.confirmation_p50_s)} / {_seconds(summary.confirmation_p95_s)}",
    )
    console.print(kpis)
    top = Table("store", "city", "payments", "total", title="top stores", title_justify="left")
    for s in summary.top_stores:
        top.add_row(s.store_id, f"{s.city}/{s.uf}", f"{s.payments:,}", format_brl(s.revenue))
    console.print(top)
    dl = Table("reason", "count", title="dead-letter by reason", title_justify="left")
    for reason, n in dead.items():
        dl.add_row(reason, f"{n:,}")
    console.print(dl)
    console.print(f"done in {seconds:.1f} s; data in {settings.data_dir}")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _write_report(settings: Settings, start: date, end: date) -> None:
    from pulso.reports.payments_report import build_payments_report
    from pulso.store import open_store

    started = time.perf_counter()
    store = open_store(settings)
    try:
        with console.status("report") as status:
            report = build_payments_report(
                store,
                settings,
                start=start,
                end=end,
                folder=settings.data_dir / "relatorio",
                step=lambda name: status.update(f"report: {name}"),
            )
    finally:
        store.close()
    console.print(
        f"report for {report.period_text} in {time.perf_counter() - started:.1f} s: "
        f"{report.folder}",
        soft_wrap=True,
    )
    console.print(f"  PDF:  {report.pdf}", soft_wrap=True)
    console.print(f"  HTML: {report.html}", soft_wrap=True)
    console.print(f"  PNG:  {len(report.pictures)} mapa_calor_*.png", soft_wrap=True)
    console.print(f"  reading: {report.reading_file}", soft_wrap=True)


def _check_exact(produced: Any, stored: int, dead: dict[str, int]) -> None:
    dead_total = sum(dead.values())
    if stored == produced.good_events and dead_total == produced.malformed:
        console.print(
            f"[green]exact:[/] {stored:,} good events stored, {dead_total:,} malformed "
            "in the dead-letter"
        )
        return
    raise fail(
        f"counts differ: generated {produced.good_events:,} good / {produced.malformed:,} "
        f"malformed, stored {stored:,} / dead-lettered {dead_total:,}"
    )
