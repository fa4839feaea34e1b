"""The bucket watcher: new objects become ``file.detected`` events on the real local bus, and
the seen map in the real store makes a restart neither miss nor repeat a file. Buckets: a
folder, and S3 through moto's standalone server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pulso.buckets import Bucket, open_bucket
from pulso.buckets import s3 as s3_backend
from pulso.buckets.watch import BucketWatcher, is_candidate, rejects_key
from pulso.bus import Bus, open_bus
from pulso.cli import etl_watch
from pulso.config import Settings
from pulso.domain.events import Topic, decode_event
from pulso.domain.files import FileDetected
from pulso.errors import BusError
from pulso.store import Store, open_store


@dataclass
class Rig:
    """A bucket, and the settings whose bus and store the watcher uses."""

    settings: Settings
    bucket_url: str
    opened: list[Any]

    def bucket(self) -> Bucket:
        return self.keep(open_bucket(self.bucket_url, self.settings))

    def watcher(self, **options: Any) -> BucketWatcher:
        bus = self.keep(open_bus(self.settings))
        store = self.keep(open_store(self.settings))
        return BucketWatcher(self.bucket(), bus, store, **options)

    def restart(self) -> None:
        """Close every bus, store and bucket opened so far, as a stopped process would."""
        while self.opened:
            self.opened.pop().close()

    def keep(self, resource: Any) -> Any:
        self.opened.append(resource)
        return resource


@pytest.fixture(params=["file", "s3"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, settings_factory: Any) -> Iterator[Rig]:
    if request.param == "file":
        settings = settings_factory()
        url = f"file://{tmp_path}/drop"
        open_bucket(url, settings, create=True)
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        settings = settings_factory(
            s3_endpoint_url=endpoint, s3_access_key_id="AKIATEST", s3_secret_access_key="secret"
        )
        name = f"pulso-{uuid.uuid4().hex[:12]}"
        client = s3_backend.s3_client(settings)
        client.create_bucket(Bucket=name)
        client.close()
        url = f"s3://{name}/incoming"
    made = Rig(settings, url, [])
    yield made
    made.restart()


def announced(settings: Settings) -> list[tuple[bytes | None, FileDetected]]:
    """Every file.detected event on the files topic, with its message key, in order."""
    bus = open_bus(settings)
    consumer = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [Topic.FILES])
    found: list[tuple[bytes | None, FileDetected]] = []
    try:
        while messages := consumer.poll_batch(1_000, 0.2):
            for message in messages:
                event = decode_event(message.value)
                assert event.type == "file.detected" and event.source == "etl.watch"
                found.append((message.key, event.data))
    finally:
        consumer.close()
        bus.close()
    return sorted(found, key=lambda item: (item[1].url, item[1].etag))


def test_new_files_are_announced_once(rig: Rig) -> None:
    bucket = rig.bucket()
    a = bucket.put_bytes("2026/sales-2026-11-20.csv", b"a,b\n1,2\n")
    b = bucket.put_bytes("sales-2026-11-21.csv.gz", b"\x1f\x8b not really")
    for ignored in ("notes.txt", "sales.rejects.csv", "_staging/x.csv", "x.csv.part"):
        bucket.put_bytes(ignored, b"x")
    watcher = rig.watcher()
    detected = watcher.scan()
    assert [d.url for d in detected] == [a.url, b.url]
    assert watcher.scan() == []
    events = announced(rig.settings)
    assert [data for _, data in events] == [
        FileDetected(url=i.url, size=i.size, etag=i.etag, modified_at=i.modified_at) for i in (a, b)
    ]
    assert [key for key, _ in events] == [a.url.encode(), b.url.encode()]


def test_restart_neither_misses_nor_repeats(rig: Rig) -> None:
    bucket = rig.bucket()
    bucket.put_bytes("b-day.csv", b"1")
    bucket.put_bytes("c-day.csv", b"1")
    assert len(rig.watcher().scan()) == 2
    rig.restart()

    bucket = rig.bucket()
    early = bucket.put_bytes("a-late-upload-of-an-early-day.csv", b"sorts before the others")
    again = bucket.put_bytes("c-day.csv", b"uploaded again with other content")
    watcher = rig.watcher()
    assert sorted(d.url for d in watcher.scan()) == sorted([early.url, again.url])
    assert watcher.scan() == []
    rig.restart()

    assert rig.watcher().scan() == []
    events = announced(rig.settings)
    assert len(events) == 4
    assert len({(data.url, data.etag) for _, data in events}) == 4


def test_deleted_then_restored_is_announced_again(rig: Rig) -> None:
    bucket = rig.bucket()
    bucket.put_bytes("day.csv", b"1")
    watcher = rig.watcher()
    assert len(watcher.scan()) == 1
    bucket.delete("day.csv")
    assert watcher.scan() == []
    assert watcher.seen == {}  # pruned: the map never outgrows the bucket
    bucket.put_bytes("day.csv", b"1")
    assert len(watcher.scan()) == 1


def test_the_mark_is_saved_only_after_the_bus_took_the_events(rig: Rig) -> None:
    bucket = rig.bucket()
    info = bucket.put_bytes("day.csv", b"1")
    bus: Bus = open_bus(rig.settings)
    store: Store = rig.keep(open_store(rig.settings))
    watcher = BucketWatcher(rig.bucket(), bus, store)
    bus.close()  # the broker is gone
    with pytest.raises(BusError):
        watcher.scan()
    assert watcher.seen == {}
    rig.restart()
    assert [d.url for d in rig.watcher().scan()] == [info.url]


def test_settle_waits_until_a_file_stops_changing(tmp_path: Path, settings_factory: Any) -> None:
    rig = Rig(settings_factory(), f"file://{tmp_path}/drop", [])
    open_bucket(rig.bucket_url, rig.settings, create=True)
    bucket = rig.bucket()
    info = bucket.put_bytes("day.csv", b"being copied")
    now = [info.modified_at + timedelta(seconds=1)]
    watcher = rig.watcher(settle_s=5.0, clock=lambda: now[0])
    assert watcher.scan() == []
    now[0] += timedelta(seconds=10)
    assert [d.url for d in watcher.scan()] == [info.url]
    rig.restart()


def test_run_announces_files_while_running(rig: Rig) -> None:
    watcher = rig.watcher()
    stop = threading.Event()
    seen: list[FileDetected] = []
    thread = threading.Thread(target=watcher.run, args=(0.05, stop, seen.append))
    thread.start()
    try:
        info = rig.bucket().put_bytes("live.csv", b"1")
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [d.url for d in seen] == [info.url]


@pytest.mark.postgres
def test_the_seen_map_survives_on_postgresql(
    postgres_url: str, tmp_path: Path, settings_factory: Any
) -> None:
    rig = Rig(settings_factory(store_url=postgres_url), f"file://{tmp_path}/drop", [])
    open_bucket(rig.bucket_url, rig.settings, create=True)
    rig.bucket().put_bytes("day.csv", b"1")
    assert len(rig.watcher().scan()) == 1
    rig.restart()
    watcher = rig.watcher()
    assert watcher.scan() == []
    assert list(watcher.seen) == ["day.csv"]
    rig.restart()


def test_candidates_and_rejects_names() -> None:
    assert is_candidate("sales-2026-11-20.csv") and is_candidate("2026/11/day.csv.gz")
    assert not is_candidate("sales-2026-11-20.rejects.csv")
    assert not is_candidate(rejects_key("2026/sales.csv.gz"))
    assert rejects_key("2026/sales.csv.gz") == "2026/sales.rejects.csv"
    assert not is_candidate(".hidden.csv") and not is_candidate("_tmp/day.csv")
    assert not is_candidate("day.csv.tmp") and not is_candidate("day.txt")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("watch")(etl_watch.watch)

    @app.callback()
    def _group() -> None:
        """The etl group, as the lead registers it."""

    return app


def test_cli_watch_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    drop = tmp_path / "data" / "bucket"
    drop.mkdir(parents=True)
    (drop / "sales-2026-11-20.csv").write_bytes(b"x" * 2_500)
    runner = CliRunner()
    first = runner.invoke(_cli(), ["watch", "--once"])
    assert first.exit_code == 0, first.output
    assert f"detected file://{drop}/sales-2026-11-20.csv (2.5 kB)" in first.output
    assert "1 new file(s)" in first.output
    second = runner.invoke(_cli(), ["watch", "--once"])
    assert second.exit_code == 0, second.output
    assert "0 new file(s)" in second.output and "detected" not in second.output


def test_cli_watch_bad_bucket_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["watch", "--once", "--bucket", f"file://{tmp_path}/no"])
    assert result.exit_code == 1
    assert "no such folder" in result.output and "Traceback" not in result.output
