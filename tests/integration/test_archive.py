"""The raw archive: partitions by topic, UTC date and hour; one copy of every event, even when
the archiver dies between writing parts and committing offsets; a folder or S3 (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from pulso.archive import open_archive
from pulso.archive.archiver import Archiver, archive_messages, list_parts, read_archive
from pulso.archive.layout import ARCHIVE_SCHEMA, HourPartition, parse_part
from pulso.archive.trim import trim_archive
from pulso.buckets import s3 as s3_backend
from pulso.buckets.local import FileBucket
from pulso.buckets.protocol import Bucket
from pulso.bus import open_bus
from pulso.bus.protocol import Bus, Consumer, Message, TopicPartition
from pulso.config import Settings
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeCreated

T0 = datetime(2026, 11, 24, 12, 40, tzinfo=UTC)


def event_bytes(i: int, at: datetime) -> bytes:
    cid = f"ch_{i:06d}"
    created = ChargeCreated(
        charge_id=cid,
        txid=f"T{i}",
        store_id=f"LJ-{i % 5:04d}",
        city="Recife",
        uf="PE",
        amount=Decimal(i % 300 + 1) / 4,
        created_at=at,
        expires_at=at + timedelta(hours=1),
    )
    return encode_event(new_event(created, source="test", key=cid, occurred_at=at))


def fill(bus: Bus, count: int, *, step_s: float = 1.0, late_every: int = 0) -> list[bytes]:
    """``count`` events ``step_s`` apart from T0; every ``late_every``-th is an hour late."""
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(count):
        at = T0 + timedelta(seconds=i * step_s)
        if late_every and i % late_every == 0:
            at -= timedelta(hours=1)
        records.append((f"ch_{i:06d}".encode(), event_bytes(i, at)))
    bus.publish(Topic.PAYMENTS, records)
    return [value for _, value in records]


def archived_ids(bucket: Bucket) -> list[uuid.UUID]:
    table = read_archive(bucket)
    return [u for u in table.column("event_id").to_pylist()]


def expected_ids(values: list[bytes]) -> set[uuid.UUID]:
    import msgspec

    return {uuid.UUID(msgspec.json.decode(v)["event_id"]) for v in values}


# --- layout ---------------------------------------------------------------------------


def test_hour_partition_is_utc_whatever_the_offset() -> None:
    sao_paulo = datetime(2026, 11, 24, 19, 30, tzinfo=ZoneInfo("America/Sao_Paulo"))
    assert HourPartition.of("payments", sao_paulo).prefix == (
        "topic=payments/date=2026-11-24/hour=22/"
    )
    # 23:30 in São Paulo is already the next day in UTC.
    late = datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("America/Sao_Paulo"))
    assert HourPartition.of("payments", late).prefix == "topic=payments/date=2026-11-25/hour=02/"


def test_messages_split_by_hour_and_partition(tmp_path: Path) -> None:
    bucket = FileBucket(tmp_path / "archive", create=True)
    values = [event_bytes(i, T0 + timedelta(minutes=10 * i)) for i in range(6)]  # 12:40..13:30
    messages = [Message("payments", i % 2, 100 + i, None, v) for i, v in enumerate(values)]
    messages.append(Message("payments", 0, 200, None, b"not json"))
    at = datetime(2026, 11, 24, 14, tzinfo=UTC)
    batch = archive_messages(bucket, messages, at)
    assert (batch.messages, batch.archived, batch.skipped) == (7, 6, 1)
    keys = [p.key for p in list_parts(bucket)]
    assert keys == [
        "topic=payments/date=2026-11-24/hour=12/part-p0000-o00000000000000000100.parquet",
        "topic=payments/date=2026-11-24/hour=12/part-p0001-o00000000000000000101.parquet",
        "topic=payments/date=2026-11-24/hour=13/part-p0000-o00000000000000000102.parquet",
        "topic=payments/date=2026-11-24/hour=13/part-p0001-o00000000000000000103.parquet",
    ]
    part = pq.read_table(tmp_path / "archive" / keys[2])
    assert part.schema.names == ARCHIVE_SCHEMA.names
    assert part.num_rows == 2
    row = part.to_pylist()[0]
    assert row["topic"] == "payments" and row["type"] == "pix.charge.created"
    assert row["occurred_at"] == T0 + timedelta(minutes=20)
    assert row["received_at"] == at
    assert row["payload"] == values[2]
    assert isinstance(row["event_id"], uuid.UUID)


def test_other_objects_in_the_bucket_are_not_parts(tmp_path: Path) -> None:
    bucket = FileBucket(tmp_path, create=True)
    bucket.put_bytes("README.txt", b"x")
    bucket.put_bytes("topic=payments/date=2026-13-01/hour=01/part-p0-o1.parquet", b"x")
    bucket.put_bytes("topic=payments/date=2026-11-01/hour=25/part-p0-o1.parquet", b"x")
    assert list_parts(bucket) == []
    assert parse_part(bucket.stat("README.txt")) is None


# --- exactly once through crashes --------------------------------------------------------


class CrashingConsumer:
    """Delegates to a real consumer; the n-th commit raises, as if the process died after
    writing the batch's parts and before committing its offsets."""

    def __init__(self, inner: Consumer, crash_on_commit: int) -> None:
        self._inner = inner
        self._commits = 0
        self._crash_on = crash_on_commit

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        return self._inner.poll_batch(max_messages, timeout_s)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._commits += 1
        if self._commits == self._crash_on:
            raise RuntimeError("killed before the commit")
        self._inner.commit(offsets)

    def close(self) -> None:
        self._inner.close()


class CrashingBus:
    def __init__(self, inner: Bus, crash_on_commit: int) -> None:
        self._inner = inner
        self._crash_on = crash_on_commit

    def consumer(self, group: str, topics: Any) -> Consumer:
        return CrashingConsumer(self._inner.consumer(group, topics), self._crash_on)


def run_until_idle(bus: Any, bucket: Bucket, batch_size: int) -> None:
    import threading

    archiver = Archiver(
        bus, bucket, topics=("payments",), batch_size=batch_size, poll_timeout_s=0.05
    )
    try:
        archiver.run(threading.Event(), until_idle=True)
    finally:
        archiver.close()


@pytest.mark.parametrize(
    ("first_batch", "crash_on", "second_batch"),
    [(500, 1, 500), (300, 3, 1000), (1000, 2, 170), (64, 5, 9999)],
)
def test_crash_between_parts_and_commit_leaves_no_duplicates_nor_gaps(
    settings_factory: Callable[..., Settings],
    first_batch: int,
    crash_on: int,
    second_batch: int,
) -> None:
    settings = settings_factory(kafka_partitions=3)
    bus = open_bus(settings)
    bucket = open_archive(settings)
    try:
        # 3,000 events over 50 minutes from 12:40 (three hours), every 7th an hour late.
        values = fill(bus, 3000, step_s=1.0, late_every=7)
        with pytest.raises(RuntimeError, match="killed"):
            run_until_idle(CrashingBus(bus, crash_on), bucket, first_batch)
        # The replay starts from the last commit with a different batch size.
        run_until_idle(bus, bucket, second_batch)
        ids = archived_ids(bucket)
        assert len(ids) == len(set(ids)), "an event was archived twice"
        assert set(ids) == expected_ids(values), "an event is missing from the archive"
        # Every row sits in the hour folder its occurred_at names.
        for part in list_parts(bucket):
            table = pq.read_table(bucket.open_read(part.key))
            for at in table.column("occurred_at").to_pylist():
                assert HourPartition.of("payments", at) == part.hour
    finally:
        bucket.close()
        bus.close()


def test_resumes_where_it_committed(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    bus = open_bus(settings)
    bucket = open_archive(settings)
    try:
        first = fill(bus, 400)
        run_until_idle(bus, bucket, 128)
        second = fill(bus, 250, step_s=30)
        run_until_idle(bus, bucket, 1000)
        ids = archived_ids(bucket)
        assert len(ids) == 650 and set(ids) == expected_ids(first + second)
    finally:
        bucket.close()
        bus.close()


# --- S3 ----------------------------------------------------------------------------------


@pytest.fixture
def s3_settings(
    moto_endpoint: str, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    base: Settings = settings_factory(
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="AKIATESTTESTTEST",
        s3_secret_access_key="secret-test-key",
    )
    name = f"pulso-{uuid.uuid4().hex[:12]}"
    client = s3_backend.s3_client(base)
    client.create_bucket(Bucket=name)
    client.close()
    yield base.model_copy(update={"archive_url": f"s3://{name}/raw"})


def test_s3_archive_with_crash_and_retention(s3_settings: Settings) -> None:
    bus = open_bus(s3_settings)
    bucket = open_archive(s3_settings)
    try:
        assert bucket.url.startswith("s3://")
        values = fill(bus, 1200, step_s=6.0, late_every=11)  # 12:40 .. 14:40
        with pytest.raises(RuntimeError):
            run_until_idle(CrashingBus(bus, 2), bucket, 200)
        run_until_idle(bus, bucket, 700)
        ids = archived_ids(bucket)
        assert len(ids) == len(set(ids)) and set(ids) == expected_ids(values)
        hours = sorted({p.hour.hour for p in list_parts(bucket)})
        assert hours == [11, 12, 13, 14]
        removed = trim_archive(bucket, datetime(2026, 11, 24, 13, tzinfo=UTC))
        assert [h.hour.hour for h in removed] == [11, 12]
        assert sorted({p.hour.hour for p in list_parts(bucket)}) == [13, 14]
    finally:
        bucket.close()
        bus.close()


# --- retention of the archive -------------------------------------------------------------


def test_trim_removes_whole_hours_that_ended_before_the_cutoff(tmp_path: Path) -> None:
    bucket = FileBucket(tmp_path, create=True)
    values = [event_bytes(i, T0 + timedelta(minutes=30 * i)) for i in range(5)]  # 12:40..14:40
    archive_messages(bucket, [Message("payments", 0, i, None, v) for i, v in enumerate(values)], T0)
    cutoff = datetime(2026, 11, 24, 13, 59, tzinfo=UTC)  # hour 13 ends after: kept whole
    dry = trim_archive(bucket, cutoff, dry_run=True)
    assert [h.hour.hour for h in dry] == [12]
    assert len(list_parts(bucket)) == 3
    done = trim_archive(bucket, cutoff)
    assert [(h.hour.hour, h.files) for h in done] == [(12, 1)]
    assert done[0].bytes > 0
    assert sorted({p.hour.hour for p in list_parts(bucket)}) == [13, 14]
    assert not (tmp_path / "topic=payments" / "date=2026-11-24" / "hour=12").exists() or not any(
        (tmp_path / "topic=payments" / "date=2026-11-24" / "hour=12").iterdir()
    )


# --- inside `pulso up` ----------------------------------------------------------------------


def test_archive_thread_copies_what_is_published_while_it_runs(
    settings_factory: Callable[..., Settings],
) -> None:
    import time

    from pulso.archive.service import ArchiveThread

    settings = settings_factory(archive_poll_s=0.05)
    bus = open_bus(settings)
    thread = ArchiveThread(settings, bus)
    try:
        thread.start()
        assert thread.problem() is None
        values = fill(bus, 500)
        bucket = open_archive(settings)
        deadline = time.monotonic() + 30  # a guard against hanging, not a speed assertion
        while len(read_archive(bucket)) < 500:
            assert time.monotonic() < deadline, "the archive thread never caught up"
            time.sleep(0.05)
        assert set(archived_ids(bucket)) == expected_ids(values)
        bucket.close()
    finally:
        thread.stop()
        bus.close()
    assert thread.problem() == "not running"
