"""The bucket protocol: list, read as a stream, write whole objects, delete.

Keys are relative to the bucket URL's folder or prefix and use ``/`` between segments, as S3
does. Listings come in key order (UTF-8 byte order, S3's order) on every backend.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object as listed.

    ``etag`` changes whenever the object is written again: S3's ETag, or for a folder
    ``inode-mtime-size`` (not a content hash; the ETL computes its own checksum).
    """

    key: str
    url: str
    size: int
    etag: str
    modified_at: datetime  # tz-aware (UTC)


class Bucket(Protocol):
    """A folder (``file://``) or an S3 bucket and prefix (``s3://``)."""

    @property
    def url(self) -> str:
        """The bucket's URL (no credentials in it)."""
        ...

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """The object under ``key``; ObjectNotFoundError when there is none."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A binary stream of the object, read in chunks as consumed (close it when done)."""
        ...

    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A binary stream whose content becomes the object when the block ends without an
        error, all at once (a reader never sees half an object); nothing is stored if it
        raises."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` under ``key`` (replacing any object there)."""
        ...

    def upload(self, key: str, path: Path) -> ObjectInfo:
        """Store the local file ``path`` under ``key`` (S3: multipart when large)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def url_of(self, key: str) -> str:
        """The URL naming the object under ``key`` (what :func:`open_object` accepts)."""
        ...

    def close(self) -> None: ...
