"""The raw archive: every event on the bus as Parquet, partitioned by topic, date and hour.

``open_archive(settings)`` gives the bucket (``PULSO_ARCHIVE_URL``: a folder or S3);
:class:`~pulso.archive.archiver.Archiver` fills it; :mod:`pulso.archive.trim` empties old hours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pulso.archive.layout import archive_topics, archive_url

if TYPE_CHECKING:
    from pulso.buckets.protocol import Bucket
    from pulso.config import Settings

__all__ = ["archive_topics", "archive_url", "open_archive"]


def open_archive(settings: Settings) -> Bucket:
    """The archive's bucket; a missing ``file://`` folder is created."""
    from pulso.buckets import open_bucket

    return open_bucket(archive_url(settings), settings, create=True)
