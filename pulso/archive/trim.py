"""Retention for the raw archive: remove whole hour folders older than a cutoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pulso.archive.archiver import hours, list_parts
from pulso.archive.layout import HourPartition
from pulso.buckets.protocol import Bucket


@dataclass(frozen=True, slots=True)
class TrimmedHour:
    hour: HourPartition
    files: int
    bytes: int


def trim_archive(bucket: Bucket, cutoff: datetime, *, dry_run: bool = False) -> list[TrimmedHour]:
    """Delete every hour folder that ends at or before ``cutoff`` (an hour partly newer than
    the cutoff is kept whole); return what was (or, with ``dry_run``, would be) removed."""
    removed: list[TrimmedHour] = []
    for hour, parts in hours(list_parts(bucket)):
        if hour.ends_at > cutoff:
            continue
        if not dry_run:
            for part in parts:
                bucket.delete(part.key)
        removed.append(TrimmedHour(hour, len(parts), sum(p.size for p in parts)))
    return removed
