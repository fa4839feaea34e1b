"""Buckets by URL: a folder (``file://``, the embedded default) or S3 (``s3://bucket/prefix``).

``open_bucket(url, settings)`` gives a :class:`Bucket`; ``open_object(url, settings)`` a
binary stream of one object named by its URL. Only the S3 backend imports boto3, and only
when an ``s3://`` URL is opened. Errors: see :mod:`pulso.buckets.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from pulso.buckets.errors import (
    BucketAccessDeniedError,
    BucketError,
    BucketNotFoundError,
    BucketUnavailableError,
    BucketUrlError,
    ObjectNotFoundError,
)
from pulso.buckets.protocol import Bucket, ObjectInfo
from pulso.buckets.urls import parse_bucket_url, split_object_url

if TYPE_CHECKING:
    from pulso.config import Settings

__all__ = [
    "Bucket",
    "BucketAccessDeniedError",
    "BucketError",
    "BucketNotFoundError",
    "BucketUnavailableError",
    "BucketUrlError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "locate_object",
    "open_bucket",
    "open_object",
]


def open_bucket(url: str, settings: Settings, *, create: bool = False) -> Bucket:
    """The bucket ``url`` names (empty: ``PULSO_BUCKET_URL``, then the data dir's ``bucket``
    folder, created if missing). ``create`` makes a missing ``file://`` folder; S3 buckets
    must exist."""
    location = parse_bucket_url(url or settings.bucket_url, settings.data_dir)
    if location.kind == "file":
        from pulso.buckets.local import FileBucket

        assert location.folder is not None
        return FileBucket(location.folder, create=create or location.is_default)
    from pulso.buckets.s3 import S3Bucket, s3_client

    client = s3_client(settings)
    try:
        return S3Bucket(client, location.bucket, location.prefix, endpoint=settings.s3_endpoint_url)
    except BaseException:
        client.close()
        raise


def locate_object(url: str, settings: Settings) -> tuple[Bucket, str]:
    """The bucket holding the object ``url`` names, and the object's key in it (for writing
    beside it, e.g. a rejects file). The caller closes the bucket."""
    bucket_url, key = split_object_url(url)
    return open_bucket(bucket_url, settings), key


def open_object(url: str, settings: Settings) -> BinaryIO:
    """A binary stream of the object ``url`` names (``file:///abs/f.csv``,
    ``s3://bucket/key.csv``), read in chunks as consumed; close it when done."""
    bucket, key = locate_object(url, settings)
    try:
        return bucket.open_read(key)
    finally:
        bucket.close()  # an open S3 body keeps its own connection
