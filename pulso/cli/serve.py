"""``pulso up``: the HTTP API and the pipeline in one process (the embedded profile).

One process owns the DuckDB file, so the API's charge ledger and the pipeline share the one
Store object; the pipeline runs in a background thread and writes the ``payments`` facts
from the lifecycle events the API publishes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from pulso.alerts import AlertThread
    from pulso.bus.protocol import Bus
    from pulso.cli.worker import WorkerPool
    from pulso.config import Settings
    from pulso.pix.stores import StoreRegistry
    from pulso.reports.schedule import ReportScheduler
    from pulso.store.protocol import Store

log = logging.getLogger(__name__)

DRAIN_S = 10.0

DEFAULT_LINGER_S = 0.1
"""``--pipeline-linger``: the wait after a small batch. It adds to the latency of the alerts
of the next batch, hence small (docs/alerts.md, "Latency")."""
LINGER_BELOW_MESSAGES = 1_000
"""A batch smaller than this is followed by the linger; a bigger one by the next poll at once
(traffic is heavy, the next batch is already waiting: a wait would only delay its alerts)."""


def linger_after(messages: int, linger_s: float) -> float:
    """How long the pipeline waits after a batch of ``messages``: ``linger_s`` after a small
    one, so that a trickle of events is folded a few times a second rather than one
    transaction per handful of events (each saves the offsets and the stream state), and
    nothing after a big one."""
    return linger_s if messages < LINGER_BELOW_MESSAGES else 0.0


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
    pipeline: Annotated[
        bool, typer.Option("--pipeline/--no-pipeline", help="Run the pipeline in this process too.")
    ] = True,
    reconcile_every_s: Annotated[
        float,
        typer.Option("--reconcile-every", min=0.1, help="Seconds between reconciler passes."),
    ] = 5.0,
    pipeline_linger_s: Annotated[
        float,
        typer.Option(
            "--pipeline-linger",
            min=0.0,
            max=60.0,
            help=(
                "Seconds the pipeline waits after a small batch (fewer than 1.000 messages), "
                "so the next one is larger; none after a big one."
            ),
        ),
    ] = DEFAULT_LINGER_S,
    stores: Annotated[
        Path | None,
        typer.Option(help="CSV of stores to register (header: store_id,name,city,uf)."),
    ] = None,
    demo_stores: Annotated[
        int,
        typer.Option(
            min=0,
            help="When no store is registered yet, register the N stores the generator "
            "invents (LJ-0001...); 0 registers none.",
        ),
    ] = 20,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (uvicorn's access log).")
    ] = False,
    etl: Annotated[
        bool,
        typer.Option(
            "--etl/--no-etl",
            help="Watch PULSO_BUCKET_URL for daily sales files and load each (etl watch + "
            "etl consume in this process).",
        ),
    ] = True,
    reports: Annotated[
        bool,
        typer.Option(
            "--reports/--no-reports",
            help="Send the daily report at PULSO_REPORT_DAILY_AT and the weekly one on "
            "PULSO_REPORT_WEEKLY_DAY to the configured channels.",
        ),
    ] = True,
    alerts: Annotated[
        bool,
        typer.Option(
            "--alerts/--no-alerts",
            help="Throttle and deliver detector alerts to the PULSO_ALERT_CHANNELS (the alert "
            "dispatcher in this process).",
        ),
    ] = True,
    archive: Annotated[
        bool,
        typer.Option(
            "--archive/--no-archive",
            help="Copy every event to the raw archive (PULSO_ARCHIVE_URL) in this process.",
        ),
    ] = True,
    profile: Annotated[
        str | None,
        typer.Option(
            help="embedded (the pipeline on a thread) or cluster (N `pulso worker` processes "
            "in one Kafka consumer group; needs Kafka and PostgreSQL). Default: PULSO_PROFILE.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Pipeline workers of the cluster profile (default: PULSO_WORKERS)."
        ),
    ] = None,
) -> None:
    """Serve the PIX API (OpenAPI docs at /docs) with the pipeline, until Ctrl-C.

    PSP webhooks are expected at PULSO_PUBLIC_URL (default: this host and port). Without
    PULSO_API_TOKEN the API is open to anyone who can reach it.
    """
    settings = load_settings_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    worker_count = _cluster_workers(settings, profile, workers, pipeline)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; exiting through
    # SystemExit then runs run_api's clean-up (workers stopped, pipeline drained).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with user_errors():
        run_api(
            with_public_url(settings, host, port),
            host=host,
            port=port,
            pipeline=pipeline,
            reconcile_every_s=reconcile_every_s,
            linger_s=pipeline_linger_s,
            stores_csv=stores,
            demo_stores=demo_stores,
            access_log=access_log,
            reports=reports,
            etl=etl,
            alerts=alerts,
            archive=archive,
            workers=worker_count,
        )


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _cluster_workers(
    settings: Settings, profile: str | None, workers: int | None, pipeline: bool
) -> int:
    """How many worker processes to start: 0 for the embedded profile (the pipeline thread);
    the cluster profile refuses an embedded-only bus or store."""
    from pulso.cli.output import fail
    from pulso.cli.worker import require_cluster

    chosen = profile or settings.profile
    if chosen not in ("embedded", "cluster"):
        raise fail(f"--profile must be embedded or cluster, got {chosen!r}")
    if chosen == "embedded":
        return 0
    require_cluster(settings, "the cluster profile")
    return (workers or settings.workers) if pipeline else 0


def run_api(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    pipeline: bool = True,
    reconcile_every_s: float = 5.0,
    linger_s: float = DEFAULT_LINGER_S,
    stores_csv: Path | None = None,
    demo_stores: int = 20,
    access_log: bool = False,
    reports: bool = False,
    etl: bool = False,
    alerts: bool = False,
    archive: bool = False,
    workers: int = 0,
) -> None:
    """Serve the API (and the pipeline and the report scheduler, on threads) over
    ``settings`` until Ctrl-C."""
    import uvicorn

    from pulso.api import create_app
    from pulso.archive.service import ArchiveThread
    from pulso.bus import open_bus
    from pulso.pix.providers import open_psp
    from pulso.pix.stores import StoreRegistry
    from pulso.store import open_store

    store = open_store(settings)
    bus = open_bus(settings)
    psp = open_psp(settings)
    worker: _PipelineThread | None = None
    scheduler: ReportScheduler | None = None
    sales_etl: _SalesEtl | None = None
    archiver: ArchiveThread | None = None
    alert_thread: AlertThread | None = None
    pool: WorkerPool | None = None
    try:
        registry = StoreRegistry(store)
        _register_stores(registry, stores_csv, demo_stores)
        if workers:  # cluster profile: the pipeline runs in `pulso worker` processes
            from pulso.cli.worker import WorkerPool

            pool, pipeline = WorkerPool(settings, workers), False
        worker = _PipelineThread(settings, bus, store, linger_s=linger_s) if pipeline else None
        checks = {"pipeline": worker.problem} if worker is not None else {}
        if pool is not None:
            checks = {"workers": pool.problem}
        # Not a readiness check either: a channel that is down is retried and shown in
        # GET /v1/alerts; the API serves charges regardless.
        alert_thread = _alert_thread(settings, store, bus) if alerts else None
        if worker is not None and alert_thread is not None:
            worker.after_batch = alert_thread.wake  # alerts of a batch go out at its commit
        # Not a readiness check: the API serves whether or not the archive keeps up, and the
        # archive's own consumer group resumes where it stopped.
        archiver = ArchiveThread(settings, bus) if archive else None
        app = create_app(
            settings,
            store=store,
            bus=bus,
            psp=psp,
            registry=registry,
            reconcile_interval_s=reconcile_every_s,
            health_checks=checks,
        )
        if worker is not None:
            worker.start()
        if pool is not None:
            pool.start()
            _print_pool(pool)
        if reports:
            scheduler = _start_report_scheduler(settings, store)
        if etl:
            sales_etl = _SalesEtl(settings, bus, store)
            sales_etl.start()
        if alert_thread is not None:
            alert_thread.start()
        if archiver is not None:
            archiver.start()
            console.print(f"raw archive: {archiver.url}", markup=False, soft_wrap=True)
        console.print(
            f"pulso API on http://{host}:{port} (docs: /docs; PSP {psp.name}, store "
            f"{store.dialect}, bus {settings.bus.kind}, pipeline "
            f"{f'{workers} workers' if pool is not None else 'on' if pipeline else 'off'})"
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=access_log,
            log_level="warning",
            http=_http_protocol(),
        )
        uvicorn.Server(config).run()
    finally:
        if archiver is not None:
            archiver.stop()
        if alert_thread is not None:
            alert_thread.stop()
        if sales_etl is not None:
            sales_etl.stop()
        if scheduler is not None:
            scheduler.stop()
        if worker is not None:
            worker.stop()
        if pool is not None:
            pool.stop()
        psp.close()
        bus.close()
        store.close()


def _print_pool(pool: WorkerPool) -> None:
    console.print(f"pipeline: {pool.count} worker processes (pids {pool.pids()})")
    if pool.stateful:
        console.print(
            "the event-time windows and the fraud scoring run in one worker at a time (elected "
            "by a PostgreSQL lock); the others are hot standbys"
        )


def _alert_thread(settings: Settings, store: Store, bus: Bus) -> AlertThread:
    from pulso.alerts import AlertThread, dispatcher_from_settings

    dispatcher = dispatcher_from_settings(settings, store, bus)
    channels = ", ".join(dispatcher.channels) or "no channel: stored and published only"
    console.print(f"alerts: throttled per {settings.alert_throttle_s:g} s ({channels})")
    return AlertThread(dispatcher)


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with each answer written in one system call (pulso.api.http_protocol);
    uvicorn's own choice when httptools is not installed."""
    try:
        from pulso.api.http_protocol import CoalescingHttpToolsProtocol
    except ImportError:
        return "auto"
    return CoalescingHttpToolsProtocol


def _start_report_scheduler(settings: Settings, store: Store) -> ReportScheduler:
    from pulso.notify import configured_channels
    from pulso.reports.schedule import ReportSchedule, ReportScheduler
    from pulso.reports.send import scheduled_report_job

    schedule = ReportSchedule.from_settings(settings)
    scheduler = ReportScheduler(schedule, scheduled_report_job(store, settings))
    scheduler.start()
    channels = ", ".join(configured_channels(settings)) or "no channel configured: files only"
    console.print(f"reports: {schedule.describe()} ({channels})")
    return scheduler


class _SalesEtl:
    """The sales ETL inside ``pulso up``: the bucket watcher and the file consumer, each on
    its own thread, sharing the process's bus and store (the DuckDB file has one owner)."""

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        from pulso.buckets import open_bucket
        from pulso.buckets.watch import BucketWatcher
        from pulso.etl.consume import FileConsumer

        self._bucket = open_bucket("", settings)
        self._watcher = BucketWatcher(self._bucket, bus, store)
        self._consumer = FileConsumer(bus, store, settings)
        self._interval_s = settings.etl_poll_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, name="pulso-etl-watch", daemon=True),
            threading.Thread(target=self._consume, name="pulso-etl-consume", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        console.print(
            f"sales ETL: watching {self._bucket.url} every {self._interval_s:g} s",
            markup=False,
            soft_wrap=True,
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._bucket.close()

    def _watch(self) -> None:
        try:
            self._watcher.run(self._interval_s, self._stop)
        except Exception:
            log.exception("the bucket watcher stopped")

    def _consume(self) -> None:
        try:
            self._consumer.run(cancel=self._stop)
        except Exception:
            log.exception("the sales ETL consumer stopped")


def with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Point PSP webhooks at this server unless PULSO_PUBLIC_URL says otherwise."""
    if "public_url" in settings.model_fields_set:
        return settings
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return settings.model_copy(update={"public_url": f"http://{reachable}:{port}"})


def _register_stores(registry: StoreRegistry, stores_csv: Path | None, demo_stores: int) -> None:
    from pulso.pix.stores import demo_stores as make_demo_stores
    from pulso.pix.stores import read_stores_csv

    if stores_csv is not None:
        count = registry.register(read_stores_csv(stores_csv))
        console.print(f"registered {count} stores from {stores_csv}")
    if demo_stores and registry.count() == 0:
        count = registry.register(make_demo_stores(demo_stores))
        console.print(f"registered {count} demo stores (LJ-0001...)")


class _PipelineThread:
    """The pipeline runner on a background thread, stopped by an event.

    After a small batch it lingers ``linger_s`` (``linger_after``) so that batches grow: a
    batch costs the pipeline about the same whether it folds 10 events or 1,000, so at a
    trickle many tiny batches would keep the store busy for nothing. After a big batch it
    polls again at once: every wait adds to the latency of the next batch's alerts (a fixed
    0.5 s after every batch kept event -> alert p99 above 1 s at 5,000 payments/s).

    One ``step()`` at a time, not the runner's ``run()`` loop (which prepares a batch while
    the previous one is written): that loop gives ~1.1x the batches a second when the pipeline
    is saturated, but at 5,000 payments/s a batch then waits for the previous write and the
    alerts come later (bench_alerts.py, same machine, back to back: event -> alert p50 494 ms
    and p99 786 ms with ``run()`` against 299 ms and 647 ms with ``step()``).
    """

    def __init__(self, settings: Settings, bus: Bus, store: Store, *, linger_s: float) -> None:
        from pulso.pipeline.factory import build_runner

        self._runner = build_runner(settings, bus, store)
        self._linger_s = linger_s
        self.after_batch: Callable[[], None] | None = None
        """Called after each batch committed (``pulso up`` wakes the alert dispatcher)."""
        self._cancel = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="pulso-pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def problem(self) -> str | None:
        """None while the pipeline runs; what stopped it otherwise (a readiness check)."""
        if self._failure is not None:
            return self._failure
        return None if self._thread.is_alive() else "not running"

    def _drain(self) -> None:
        """On the way out, fold what the API published before it stopped (bounded in time,
        the bus keeps the rest for the next start)."""
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and self._runner.step() is not None:
            pass

    def stop(self, timeout_s: float = 30.0) -> None:
        self._cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._runner.close()

    def _run(self) -> None:
        try:
            while not self._cancel.is_set():
                result = self._runner.step()
                if result is not None:
                    if self.after_batch is not None:
                        self.after_batch()
                    if self._linger_s and linger_after(result.messages, self._linger_s):
                        self._cancel.wait(self._linger_s)
            self._drain()
        except Exception as e:  # reported by /readyz; the API keeps serving charges
            self._failure = f"{type(e).__name__}: {e}"
            log.exception("the pipeline stopped")
