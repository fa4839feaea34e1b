"""An S3 bucket and prefix (``s3://``) on AWS or any S3-compatible service (MinIO, moto...).

The only module that imports boto3. Endpoint, region and credentials come from the settings
(``PULSO_S3_*``); with no access key, boto3's usual chain (environment, profile, instance
role) applies. A custom endpoint is addressed path-style (``http://host:port/bucket/key``),
which every S3-compatible service understands. Large uploads go multipart.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO, Final

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from pulso.buckets.errors import (
    BucketAccessDeniedError,
    BucketError,
    BucketNotFoundError,
    BucketUnavailableError,
    ObjectNotFoundError,
)
from pulso.buckets.protocol import ObjectInfo
from pulso.buckets.urls import S3_PREFIX, check_key
from pulso.closing import Closing
from pulso.config import Settings, redact_url
from pulso.errors import ConfigError

_READ_BUFFER_BYTES: Final = 1 << 20
_PART_BYTES: Final = 64 << 20
_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidToken",
        "AccountProblem",
    }
)
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
_UNREACHABLE: Final = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ResponseStreamingError,
    HTTPClientError,
)
_CREDENTIALS_HINT: Final = "check PULSO_S3_ACCESS_KEY_ID / PULSO_S3_SECRET_ACCESS_KEY"


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client configured by the settings (nothing is sent yet)."""
    key_id = settings.s3_access_key_id
    secret = settings.s3_secret_access_key
    if bool(key_id) != bool(secret and secret.get_secret_value()):
        missing = "PULSO_S3_SECRET_ACCESS_KEY" if key_id else "PULSO_S3_ACCESS_KEY_ID"
        raise ConfigError(missing, "set both S3 credentials, or neither (boto3's usual chain)")
    endpoint = settings.s3_endpoint_url or None
    config = Config(
        region_name=settings.s3_region,
        s3={"addressing_style": "path"} if endpoint else {},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        # Checksums only where S3 requires them: not every S3-compatible service accepts the
        # CRC headers newer botocore adds by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        with _SESSION_LOCK:  # creating clients from one session is not thread-safe
            return _session().client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id=key_id or None,
                aws_secret_access_key=secret.get_secret_value() if key_id and secret else None,
                config=config,
            )
    except (BotoCoreError, ValueError) as e:  # a bad endpoint URL, an unknown AWS_PROFILE...
        raise ConfigError(
            "PULSO_S3_ENDPOINT_URL",
            f"cannot set up the S3 client ({type(e).__name__}); expected an endpoint such as"
            " http://127.0.0.1:9000 (or empty for AWS), and AWS_PROFILE unset or valid",
        ) from e


_SESSION_LOCK: Final = threading.Lock()


@functools.cache
def _session() -> Any:
    """One boto3 session for the process: it caches the service models, so a client costs
    ~15 ms instead of ~250 ms (the ETL opens one per file)."""
    return boto3.session.Session()


class S3Bucket(Closing):
    """The objects under one prefix (``""`` or ending ``/``) of one S3 bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, endpoint: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._endpoint = redact_url(endpoint) if endpoint else "AWS S3"
        self._url = f"{S3_PREFIX}{bucket}" + (f"/{prefix.rstrip('/')}" if prefix else "")
        with self._errors(self._url, "read the bucket", key_level=False):
            client.head_bucket(Bucket=bucket)

    @property
    def url(self) -> str:
        return self._url

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[ObjectInfo] = []
        with self._errors(self._url, "list the bucket", key_level=False):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", ()):
                    info = self._listed(item)
                    if info is not None:
                        found.append(info)
        return found

    def stat(self, key: str) -> ObjectInfo:
        url = self.url_of(key)
        with self._errors(url, "read the object"):
            head = self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        return ObjectInfo(
            key=key,
            url=url,
            size=int(head["ContentLength"]),
            etag=str(head.get("ETag", "")).strip('"'),
            modified_at=head["LastModified"].astimezone(UTC),
        )

    def open_read(self, key: str) -> BinaryIO:
        url = self.url_of(key)
        with self._errors(url, "read the object"):
            body = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        return io.BufferedReader(_BodyReader(body, url, self), buffer_size=_READ_BUFFER_BYTES)

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        self.url_of(key)  # checks the key before any work is done
        fd, staging = tempfile.mkstemp(prefix="pulso-upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            self.upload(key, Path(staging))
        finally:
            os.unlink(staging)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        with self._errors(self.url_of(key), "write the object"):
            self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        return self.stat(key)

    def upload(self, key: str, path: Path) -> ObjectInfo:
        url = self.url_of(key)
        if not path.is_file():
            raise BucketError(str(path), "no such file to upload")
        config = TransferConfig(multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES)
        with self._errors(url, "write the object"):
            self._client.upload_file(str(path), self.bucket, self.prefix + key, Config=config)
        return self.stat(key)

    def delete(self, key: str) -> None:
        with self._errors(self.url_of(key), "delete the object"):
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def url_of(self, key: str) -> str:
        return f"{S3_PREFIX}{self.bucket}/{self.prefix}{check_key(key, self._url)}"

    def close(self) -> None:
        self._client.close()

    def _listed(self, item: dict[str, Any]) -> ObjectInfo | None:
        key = str(item["Key"])[len(self.prefix) :]
        if not key or key.endswith("/"):  # folder markers some tools create
            return None
        return ObjectInfo(
            key=key,
            url=f"{S3_PREFIX}{self.bucket}/{self.prefix}{key}",
            size=int(item["Size"]),
            etag=str(item.get("ETag", "")).strip('"'),
            modified_at=item["LastModified"].astimezone(UTC),
        )

    @contextmanager
    def _errors(self, url: str, action: str, *, key_level: bool = True) -> Iterator[None]:
        try:
            yield
        except S3UploadFailedError as e:
            cause = e.__context__
            raise self.translate(cause if cause else e, url, action, key_level) from e
        except (ClientError, BotoCoreError) as e:
            raise self.translate(e, url, action, key_level) from e

    def translate(
        self, error: BaseException, url: str, action: str, key_level: bool = True
    ) -> BucketError:
        """The bucket error an S3 failure means (no secrets: the message is built here)."""
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket" or (code in _MISSING_CODES and not key_level):
                return BucketNotFoundError(
                    self._url, "no such S3 bucket; create it, or fix PULSO_BUCKET_URL / --bucket"
                )
            if code in _MISSING_CODES:
                return ObjectNotFoundError(url, "no such object in the bucket")
            if code in _DENIED_CODES:
                return BucketAccessDeniedError(
                    url, f"access denied ({code}) trying to {action}; {_CREDENTIALS_HINT}"
                )
            return BucketError(url, f"S3 refused to {action} ({code or 'unknown error'})")
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return BucketAccessDeniedError(url, f"no S3 credentials found; {_CREDENTIALS_HINT}")
        if isinstance(error, _UNREACHABLE):
            return BucketUnavailableError(
                url,
                f"cannot reach {self._endpoint} to {action}; "
                "check PULSO_S3_ENDPOINT_URL and that the service is up",
            )
        return BucketError(url, f"cannot {action} ({type(error).__name__})")


class _BodyReader(io.RawIOBase):
    """An S3 response body as a raw stream, its failures turned into bucket errors."""

    def __init__(self, body: Any, url: str, bucket: S3Bucket) -> None:
        self._body = body
        self._url = url
        self._bucket = bucket

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (ClientError, BotoCoreError) as e:
            raise self._bucket.translate(e, self._url, "read the object") from e
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
