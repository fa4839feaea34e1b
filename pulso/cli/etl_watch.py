"""``pulso etl watch``: announce new files of a bucket on the bus's ``files`` topic.

Registered under the ``etl`` group as ``watch``. How detection works (and why a restart
neither misses nor repeats a file): :mod:`pulso.buckets.watch`.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.buckets.watch import BucketWatcher
    from pulso.domain.files import FileDetected


def watch(
    bucket: Annotated[
        str | None,
        typer.Option(
            help="Bucket to watch: file:///folder or s3://bucket/prefix; default:"
            " PULSO_BUCKET_URL, else the data dir's bucket folder."
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="List once, announce what is new, and exit.")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(min=0.05, help="Seconds between listings; default: PULSO_ETL_POLL_S."),
    ] = None,
    settle: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Announce a file only once unchanged for this many seconds (for folders"
            " that copiers write in place; pulso's own writes appear whole).",
        ),
    ] = 0.0,
) -> None:
    """Watch a bucket for new sales files (.csv, .csv.gz) and announce each on the bus.

    Each new object, or an object uploaded again under the same name, becomes one
    file.detected event on the files topic, which the ETL consumes. What was announced is
    remembered in the store, so a restart neither misses nor repeats a file. Ctrl-C stops.
    """
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.buckets import open_bucket
        from pulso.buckets.watch import BucketWatcher
        from pulso.bus import open_bus
        from pulso.store import open_store

        source = open_bucket(bucket or "", settings)
        bus = open_bus(settings)
        store = open_store(settings)
        try:
            watcher = BucketWatcher(source, bus, store, settle_s=settle)
            if once:
                found = watcher.scan()
                for payload in found:
                    _print_detected(payload)
                console.print(
                    f"{len(found)} new file(s) in {source.url}", markup=False, soft_wrap=True
                )
                return
            _run(watcher, source.url, interval or settings.etl_poll_s)
        finally:
            store.close()
            bus.close()
            source.close()


def _run(watcher: BucketWatcher, url: str, interval_s: float) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(
        f"watching {url} every {interval_s:g} s; Ctrl-C stops", markup=False, soft_wrap=True
    )
    try:
        watcher.run(interval_s, stop, on_detected=_print_detected)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("stopped")


def _print_detected(payload: FileDetected) -> None:
    console.print(f"detected {payload.url} ({_size(payload.size)})", markup=False, soft_wrap=True)


def _size(size_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:,.1f} {unit}"
    return f"{size_bytes} B"
