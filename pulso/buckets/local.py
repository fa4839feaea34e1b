"""A folder as a bucket (``file://``): the embedded profile's drop zone.

Writes go to a hidden temporary file in the destination folder and are renamed into place,
so a watcher lists either the whole object or nothing. Names starting with ``.`` are hidden
from listings (the temporary files among them).
"""

from __future__ import annotations

import os
import stat as stat_flags
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pulso.buckets.errors import BucketError, BucketNotFoundError, ObjectNotFoundError
from pulso.buckets.protocol import ObjectInfo
from pulso.buckets.urls import check_key, file_url
from pulso.closing import Closing

_COPY_CHUNK_BYTES = 8 << 20


class FileBucket(Closing):
    """The objects under one folder."""

    def __init__(self, folder: Path, *, create: bool = False) -> None:
        self.folder = folder.absolute()
        self._url = file_url(self.folder)
        if create:
            self._mkdir(self.folder)
        if not self.folder.is_dir():
            raise BucketNotFoundError(
                self._url, "no such folder; create it, or fix PULSO_BUCKET_URL / --bucket"
            )

    @property
    def url(self) -> str:
        return self._url

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        found = [info for info in self._walk(self.folder, "") if info.key.startswith(prefix)]
        return sorted(found, key=lambda info: info.key.encode())

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise self._missing(key) from None
        except OSError as e:
            raise self._failed(key, "cannot read", e) from e
        if not stat_flags.S_ISREG(st.st_mode):
            raise self._missing(key)
        return self._info(key, st)

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._missing(key) from None
        except OSError as e:
            raise self._failed(key, "cannot read", e) from e

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        self._mkdir(path.parent)
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            with staging.open("wb") as out:
                yield out
            os.replace(staging, path)
        except OSError as e:
            staging.unlink(missing_ok=True)
            raise self._failed(key, "cannot write", e) from e
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        with self.open_write(key) as out:
            out.write(data)
        return self.stat(key)

    def upload(self, key: str, path: Path) -> ObjectInfo:
        try:
            source = path.open("rb")
        except OSError as e:
            raise BucketError(str(path), f"cannot read the file to upload ({e.strerror})") from e
        with source, self.open_write(key) as out:
            while chunk := source.read(_COPY_CHUNK_BYTES):
                out.write(chunk)
        return self.stat(key)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as e:
            raise self._failed(key, "cannot delete", e) from e

    def url_of(self, key: str) -> str:
        return file_url(self._path(key))

    def close(self) -> None:
        """Nothing to release."""

    def _walk(self, folder: Path, key_prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return  # removed while listing
        except OSError as e:
            raise BucketError(self._url, f"cannot list {folder} ({e.strerror})") from e
        for entry in entries:
            if entry.name.startswith("."):
                continue
            key = key_prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key + "/")
            elif entry.is_file():
                try:
                    yield self._info(key, entry.stat())
                except FileNotFoundError:
                    continue  # deleted between scandir and stat

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            url=file_url(self.folder / key),
            size=st.st_size,
            etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
            modified_at=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
        )

    def _path(self, key: str) -> Path:
        return self.folder / check_key(key, self._url)

    def _mkdir(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BucketError(file_url(folder), f"cannot create the folder ({e.strerror})") from e

    def _missing(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(self.url_of(key), "no such file in the bucket folder")

    def _failed(self, key: str, action: str, error: OSError) -> BucketError:
        return BucketError(self.url_of(key), f"{action} ({error.strerror or error})")
