"""Buckets by URL, one contract for both backends: a folder (file://) and S3 through moto's
standalone server (a real HTTP S3 endpoint on loopback, boto3 configured by the settings)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pulso.buckets import (
    Bucket,
    BucketAccessDeniedError,
    BucketNotFoundError,
    BucketUnavailableError,
    BucketUrlError,
    ObjectNotFoundError,
    locate_object,
    open_bucket,
    open_object,
)
from pulso.buckets import s3 as s3_backend
from pulso.buckets.urls import parse_bucket_url, split_object_url
from pulso.config import Settings
from pulso.errors import ConfigError

SECRET = "moto-secret-key-1234567890"


@pytest.fixture
def s3_settings(
    moto_endpoint: str, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings: Settings = settings_factory(
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="AKIATESTTESTTEST",
        s3_secret_access_key=SECRET,
    )
    return settings


def _new_s3_bucket(settings: Settings) -> str:
    name = f"pulso-{uuid.uuid4().hex[:12]}"
    client = s3_backend.s3_client(settings)
    client.create_bucket(Bucket=name)
    client.close()
    return name


@pytest.fixture(params=["file", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Bucket, Settings]]:
    """An empty bucket of each kind with a prefix (a sub-folder, an S3 key prefix), and the
    settings that reach it."""
    if request.param == "file":
        settings: Settings = request.getfixturevalue("settings_factory")()
        opened = open_bucket(f"file://{tmp_path}/drop", settings, create=True)
    else:
        settings = request.getfixturevalue("s3_settings")
        opened = open_bucket(f"s3://{_new_s3_bucket(settings)}/daily/in", settings)
    yield opened, settings
    opened.close()


@pytest.fixture
def bucket(target: tuple[Bucket, Settings]) -> Bucket:
    return target[0]


def test_put_list_stat_read_delete(bucket: Bucket) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    bucket.put_bytes("b.csv", b"second")
    bucket.put_bytes("a.csv", b"first")
    bucket.put_bytes("2026/11/c.csv", b"nested")
    listed = bucket.list_objects()
    assert [o.key for o in listed] == ["2026/11/c.csv", "a.csv", "b.csv"]  # key order
    a = listed[1]
    assert a.size == 5 and a.etag and a.url == bucket.url_of("a.csv")
    assert a.modified_at.tzinfo is not None and a.modified_at >= before
    assert bucket.stat("a.csv") == a
    assert [o.key for o in bucket.list_objects("2026/")] == ["2026/11/c.csv"]
    with bucket.open_read("2026/11/c.csv") as stream:
        assert stream.read() == b"nested"
    bucket.delete("b.csv")
    bucket.delete("b.csv")  # already gone: not an error
    assert [o.key for o in bucket.list_objects()] == ["2026/11/c.csv", "a.csv"]
    with pytest.raises(ObjectNotFoundError) as raised:
        bucket.stat("b.csv")
    assert raised.value.url == bucket.url_of("b.csv")


def test_a_large_object_streams_in_chunks(target: tuple[Bucket, Settings], tmp_path: Path) -> None:
    bucket, settings = target
    local = tmp_path / "big.bin"
    pattern = bytes(range(256)) * 4096  # 1 MiB
    with local.open("wb") as out:
        for _ in range(12):
            out.write(pattern)
    info = bucket.upload("big.bin", local)
    assert info.size == 12 * len(pattern)
    read = 0
    with open_object(info.url, settings) as stream:
        while chunk := stream.read(256 * 1024):
            assert len(chunk) <= 256 * 1024
            assert chunk == pattern[: len(chunk)]  # chunk boundaries fall on the pattern
            read += len(chunk)
    assert read == info.size


def test_s3_uploads_large_files_in_parts(
    s3_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_backend, "_PART_BYTES", 5 << 20)  # S3's smallest part
    name = _new_s3_bucket(s3_settings)
    local = tmp_path / "parts.csv"
    local.write_bytes(b"x" * (11 << 20))
    bucket = open_bucket(f"s3://{name}", s3_settings)
    info = bucket.upload("parts.csv", local)
    assert info.size == 11 << 20
    assert info.etag.endswith("-3")  # S3's ETag of a three-part upload


def test_open_write_stores_all_or_nothing(bucket: Bucket) -> None:
    with bucket.open_write("day.csv") as out:
        out.write(b"header\n")
        assert bucket.list_objects() == []  # nothing visible while it is written
        out.write(b"row\n")
    assert bucket.stat("day.csv").size == 11
    with pytest.raises(RuntimeError), bucket.open_write("broken.csv") as out:
        out.write(b"half")
        raise RuntimeError("generator died")
    assert [o.key for o in bucket.list_objects()] == ["day.csv"]


def test_rewriting_a_key_changes_its_etag(bucket: Bucket) -> None:
    first = bucket.put_bytes("day.csv", b"version 1")
    second = bucket.put_bytes("day.csv", b"version 2")
    assert first.etag != second.etag
    with bucket.open_read("day.csv") as stream:
        assert stream.read() == b"version 2"


def test_missing_object_and_bad_keys(bucket: Bucket) -> None:
    with pytest.raises(ObjectNotFoundError):
        bucket.open_read("nope.csv")
    for key in ("../escape.csv", "/abs.csv", "a//b.csv", "", "a/./b.csv"):
        with pytest.raises(BucketUrlError):
            bucket.put_bytes(key, b"x")


def test_locate_object_gives_the_bucket_beside_it(target: tuple[Bucket, Settings]) -> None:
    bucket, settings = target
    info = bucket.put_bytes("2026/sales.csv", b"x")
    beside, key = locate_object(info.url, settings)
    assert key == "sales.csv"
    beside.put_bytes("sales.rejects.csv", b"rejected")
    assert [o.key for o in bucket.list_objects("2026/")] == [
        "2026/sales.csv",
        "2026/sales.rejects.csv",
    ]
    beside.close()


def test_folder_listing_hides_dot_files(tmp_path: Path, settings_factory: Any) -> None:
    folder = tmp_path / "drop"
    (folder / ".cache").mkdir(parents=True)
    (folder / ".cache" / "x.csv").write_bytes(b"x")
    (folder / ".upload.csv.tmp").write_bytes(b"x")
    (folder / "sales.csv").write_bytes(b"x")
    bucket = open_bucket(f"file://{folder}", settings_factory())
    assert [o.key for o in bucket.list_objects()] == ["sales.csv"]


def test_default_bucket_is_the_data_dirs_folder(settings_factory: Any, tmp_path: Path) -> None:
    settings = settings_factory(data_dir=tmp_path / "data")
    bucket = open_bucket("", settings)
    assert bucket.url == f"file://{tmp_path}/data/bucket"
    assert (tmp_path / "data" / "bucket").is_dir()
    relative = open_bucket("file://drop", settings, create=True)  # relative to the cwd
    assert relative.url == f"file://{Path.cwd()}/drop"


def test_missing_folder_is_bucket_not_found(settings_factory: Any, tmp_path: Path) -> None:
    with pytest.raises(BucketNotFoundError) as raised:
        open_bucket(f"file://{tmp_path}/nowhere", settings_factory())
    assert "PULSO_BUCKET_URL" in str(raised.value)


def test_missing_s3_bucket(s3_settings: Settings) -> None:
    with pytest.raises(BucketNotFoundError) as raised:
        open_bucket("s3://no-such-bucket-here/x", s3_settings)
    assert raised.value.url == "s3://no-such-bucket-here/x"


def test_wrong_credentials_are_access_denied_without_secrets(s3_settings: Settings) -> None:
    from moto.core.authorization import enable_iam_authentication

    name = _new_s3_bucket(s3_settings)
    with enable_iam_authentication(), pytest.raises(BucketAccessDeniedError) as raised:
        open_bucket(f"s3://{name}", s3_settings)
    message = str(raised.value)
    assert "PULSO_S3_ACCESS_KEY_ID" in message and SECRET not in message
    assert "AKIATESTTESTTEST" not in message


def test_half_configured_credentials_name_the_missing_setting(s3_settings: Settings) -> None:
    settings = s3_settings.model_copy(update={"s3_secret_access_key": None})
    with pytest.raises(ConfigError) as raised:
        open_bucket("s3://some-bucket", settings)
    assert raised.value.variable == "PULSO_S3_SECRET_ACCESS_KEY"


def test_unreachable_endpoint_is_unavailable(s3_settings: Settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = s3_settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(BucketUnavailableError) as raised:
        open_bucket("s3://some-bucket", settings)
    assert "PULSO_S3_ENDPOINT_URL" in str(raised.value) and SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    ["gs://bucket/x", "/tmp/folder", "s3://x", "s3://Upper_Case", "s3://ok-name/../up", "ftp://a"],
)
def test_bad_bucket_urls(url: str, settings_factory: Any) -> None:
    with pytest.raises(BucketUrlError) as raised:
        open_bucket(url, settings_factory())
    assert "s3://bucket/prefix" in str(raised.value) or "not an" in str(raised.value)


def test_url_parsing() -> None:
    data = Path("/srv/data")
    assert parse_bucket_url("s3://my-bucket", data).prefix == ""
    assert parse_bucket_url("s3://my-bucket/a/b/", data).prefix == "a/b/"
    assert parse_bucket_url("s3://my-bucket/a/b/", data).url == "s3://my-bucket/a/b"
    assert parse_bucket_url("file:///srv/my%20drop", data).folder == Path("/srv/my drop")
    assert parse_bucket_url("file:///srv/my%20drop", data).url == "file:///srv/my%20drop"
    assert parse_bucket_url("", data).folder == Path("/srv/data/bucket")
    assert split_object_url("s3://my-bucket/in/2026/sales.csv") == (
        "s3://my-bucket/in/2026",
        "sales.csv",
    )
    assert split_object_url("s3://my-bucket/sales.csv") == ("s3://my-bucket", "sales.csv")
    assert split_object_url("file:///srv/a%20b/sales.csv") == ("file:///srv/a%20b", "sales.csv")
    for bad in ("s3://my-bucket/", "file:///srv/", "http://x/y.csv"):
        with pytest.raises(BucketUrlError):
            split_object_url(bad)


def test_concurrent_readers_of_one_s3_object(s3_settings: Settings) -> None:
    name = _new_s3_bucket(s3_settings)
    bucket = open_bucket(f"s3://{name}", s3_settings)
    info = bucket.put_bytes("shared.csv", b"0123456789" * 10_000)
    results: list[bytes] = []

    def read() -> None:
        with open_object(info.url, s3_settings) as stream:
            results.append(stream.read())

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"0123456789" * 10_000] * 3
