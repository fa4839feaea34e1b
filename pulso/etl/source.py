"""Where a sales file is: a local path or a bucket URL (``file://``, ``s3://``), opened through
:mod:`pulso.buckets` for a streaming read; its rejects file goes beside it."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from pulso.buckets import (
    Bucket,
    BucketError,
    BucketUnavailableError,
    locate_object,
)
from pulso.buckets.urls import file_url
from pulso.buckets.watch import REJECTS_MARK, rejects_key
from pulso.etl.errors import SourceError

if TYPE_CHECKING:
    from pulso.config import Settings


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A sales file; ``url`` names it in run records (``file:///abs/path`` or ``s3://…``)."""

    url: str

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_rejects_file(self) -> bool:
        return REJECTS_MARK in self.name

    @property
    def is_gzip(self) -> bool:
        return self.name.lower().endswith(".gz")


def locate(url_or_path: str | Path) -> SourceFile:
    """The file a command line or an event names: a path, or a ``file://``/``s3://`` URL."""
    text = str(url_or_path)
    if len(urlsplit(text).scheme) > 1:  # a URL (one letter would be a Windows drive)
        return SourceFile(text)
    return SourceFile(file_url(Path(os.path.abspath(Path(text).expanduser()))))


class OpenedSource:
    """The bucket holding a source file, for reading the file and writing beside it."""

    def __init__(self, source: SourceFile, bucket: Bucket, key: str) -> None:
        self.source = source
        self._bucket = bucket
        self._key = key

    def size(self) -> int:
        with _as_source_error(self.source.url):
            return self._bucket.stat(self._key).size

    def open_stream(self) -> BinaryIO:
        with _as_source_error(self.source.url):
            return self._bucket.open_read(self._key)

    def put_rejects(self, local: Path) -> str:
        """Store the local file ``local`` as this file's rejects file; return its URL."""
        key = rejects_key(self._key)
        self._bucket.upload(key, local)
        return self._bucket.url_of(key)


@contextmanager
def opened(source: SourceFile, settings: Settings) -> Iterator[OpenedSource]:
    with _as_source_error(source.url):
        bucket, key = locate_object(source.url, settings)
    try:
        yield OpenedSource(source, bucket, key)
    finally:
        bucket.close()


@contextmanager
def _as_source_error(url: str) -> Iterator[None]:
    """Bucket errors become "this file cannot be read", but an unreachable endpoint, which
    is worth retrying, stays what it is."""
    try:
        yield
    except BucketUnavailableError:
        raise
    except BucketError as e:
        raise SourceError(url, e.problem) from e


class HashingReader(io.RawIOBase):
    """A read-only stream that hashes (sha256) and counts the bytes as they pass."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._count(data)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._count(data)
        return data

    def unclosable(self) -> io.RawIOBase:
        """This stream for a reader that closes what it is given (Arrow's gzip stream does):
        the hash must still read to the end."""
        return _Unclosable(self)

    def hexdigest(self) -> str:
        """The sha256 of every byte of the stream (reads what the consumer left unread)."""
        while self.read(1 << 20):
            pass
        return self._sha256.hexdigest()

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _count(self, data: bytes) -> None:
        self._sha256.update(data)
        self.bytes_read += len(data)


class _Unclosable(io.RawIOBase):
    def __init__(self, raw: HashingReader) -> None:
        super().__init__()
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._raw.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)
