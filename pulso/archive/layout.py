"""Where the raw archive keeps what: Hive-style partitions by topic, date and hour (UTC).

``topic=payments/date=2026-11-24/hour=13/part-p0002-o00000000000000123456.parquet``

A part holds the events of one bus partition, read in one archiver batch, whose
``occurred_at`` falls in that hour (UTC). It is named by the bus partition and the offset of
its first event: the offset of the first event of that hour at or after the position the
batch started from. A batch replayed after a crash starts from the same committed position,
so it computes the same names and overwrites the parts written before the crash, whatever
its size (see docs/maintenance.md for the argument).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import pyarrow as pa

from pulso.buckets.protocol import ObjectInfo
from pulso.buckets.urls import file_url
from pulso.config import Settings

DEFAULT_FOLDER: Final = "archive"

ARCHIVE_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.uuid(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
"""The columns of ``raw_events``, typed as the store types them."""

_PART: Final = re.compile(
    r"topic=(?P<topic>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"part-p(?P<partition>\d+)-o(?P<offset>\d+)\.parquet"
)


@dataclass(frozen=True, slots=True, order=True)
class HourPartition:
    """One ``topic=/date=/hour=`` folder of the archive."""

    topic: str
    day: date
    hour: int

    @property
    def prefix(self) -> str:
        return f"topic={self.topic}/date={self.day.isoformat()}/hour={self.hour:02d}/"

    @property
    def starts_at(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, self.hour, tzinfo=UTC)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(hours=1)

    @classmethod
    def of(cls, topic: str, at: datetime) -> HourPartition:
        utc = at.astimezone(UTC)
        return cls(topic, utc.date(), utc.hour)


@dataclass(frozen=True, slots=True)
class ArchivePart:
    """One Parquet file of the archive, as its key names it."""

    hour: HourPartition
    partition: int
    first_offset: int
    size: int = 0

    @property
    def key(self) -> str:
        return part_key(self.hour, self.partition, self.first_offset)


def part_key(hour: HourPartition, partition: int, first_offset: int) -> str:
    return f"{hour.prefix}part-p{partition:04d}-o{first_offset:020d}.parquet"


def parse_part(info: ObjectInfo) -> ArchivePart | None:
    """The part an object's key names, or None for anything else in the bucket."""
    match = _PART.fullmatch(info.key)
    if match is None:
        return None
    try:
        day = date.fromisoformat(match["date"])
    except ValueError:
        return None
    hour = int(match["hour"])
    if hour > 23:
        return None
    return ArchivePart(
        HourPartition(match["topic"], day, hour),
        int(match["partition"]),
        int(match["offset"]),
        info.size,
    )


def archive_url(settings: Settings) -> str:
    """``PULSO_ARCHIVE_URL``, else the ``archive`` folder of the data dir."""
    return settings.archive_url or file_url(settings.data_dir / DEFAULT_FOLDER)


def archive_topics(settings: Settings) -> tuple[str, ...]:
    return tuple(t.strip() for t in settings.archive_topics.split(",") if t.strip())
