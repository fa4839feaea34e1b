"""Bucket URLs: ``file:///abs/folder``, ``file://relative/folder``, ``s3://bucket/prefix``.

An empty URL (or bare ``file://``) is the embedded default, the ``bucket`` folder of the data
dir. File URLs are percent-encoded as RFC 8089 has it (``file:///tmp/a%20b``); S3 URLs carry
keys as they are, as the AWS CLI writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote, unquote

from pulso.buckets.errors import BucketUrlError

FILE_PREFIX: Final = "file://"
S3_PREFIX: Final = "s3://"
DEFAULT_FOLDER: Final = "bucket"
MAX_KEY_BYTES: Final = 1024
_EXPECTED: Final = "expected file:///abs/folder, file://relative/folder or s3://bucket/prefix"
# S3 bucket naming rules (3-63 characters, lower case, digits, dots and hyphens).
_BUCKET_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class BucketLocation:
    """A parsed bucket URL: a folder, or an S3 bucket and a prefix (``""`` or ending ``/``)."""

    kind: Literal["file", "s3"]
    folder: Path | None = None
    bucket: str = ""
    prefix: str = ""
    is_default: bool = False

    @property
    def url(self) -> str:
        if self.kind == "file":
            assert self.folder is not None
            return file_url(self.folder)
        return f"{S3_PREFIX}{self.bucket}" + (f"/{self.prefix.rstrip('/')}" if self.prefix else "")


def parse_bucket_url(url: str, data_dir: Path) -> BucketLocation:
    """Parse a bucket URL; BucketUrlError names what was expected."""
    if url in ("", FILE_PREFIX):
        return BucketLocation(
            "file", folder=(data_dir / DEFAULT_FOLDER).absolute(), is_default=True
        )
    if url.startswith(FILE_PREFIX):
        raw = unquote(url.removeprefix(FILE_PREFIX).split("?", 1)[0].split("#", 1)[0])
        return BucketLocation("file", folder=Path(raw).absolute())
    if url.startswith(S3_PREFIX):
        bucket, _, prefix = url.removeprefix(S3_PREFIX).partition("/")
        if not _BUCKET_NAME.fullmatch(bucket):
            raise BucketUrlError(
                url, f"{bucket!r} is not an S3 bucket name (3-63 of a-z 0-9 . -); {_EXPECTED}"
            )
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix, url)
        return BucketLocation("s3", bucket=bucket, prefix=f"{prefix}/" if prefix else "")
    hint = f"; for a folder write {file_url(Path(url))}" if url.startswith("/") else ""
    raise BucketUrlError(url, _EXPECTED + hint)


def split_object_url(url: str) -> tuple[str, str]:
    """An object URL as (URL of the folder or prefix holding it, key within it)."""
    if url.startswith(FILE_PREFIX):
        head, _, name = url.rpartition("/")
        if not name:
            raise BucketUrlError(url, "expected the URL of a file such as file:///abs/sales.csv")
        folder = {"file:": "file://.", "file://": "file:///"}.get(head, head)
        return folder, check_key(unquote(name), url)
    if url.startswith(S3_PREFIX):
        bucket, _, key = url.removeprefix(S3_PREFIX).partition("/")
        folder, _, name = key.rpartition("/")
        if not name:
            raise BucketUrlError(url, "expected the URL of an object such as s3://bucket/sales.csv")
        check_key(name, url)
        return f"{S3_PREFIX}{bucket}" + (f"/{folder}" if folder else ""), name
    raise BucketUrlError(url, "expected an object URL file:///abs/file.csv or s3://bucket/key.csv")


def check_key(key: str, url: str) -> str:
    """``key`` if it is a safe relative object key, else BucketUrlError."""
    segments = key.split("/")
    if (
        not key
        or len(key.encode()) > MAX_KEY_BYTES
        or "\x00" in key
        or "\\" in key
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise BucketUrlError(
            url, f"{key!r} is not an object key (relative, '/'-separated, no '.' or '..')"
        )
    return key


def file_url(path: Path) -> str:
    """The ``file://`` URL of an absolute (or made absolute) path, percent-encoded."""
    return FILE_PREFIX + quote(path.absolute().as_posix(), safe="/")
