"""The sales-file bucket and the raw archive: a folder that takes files, or an S3 prefix
that lists with the configured endpoint and credentials."""

from __future__ import annotations

from typing import Any, Final

from pulso.config import Settings, redact_url
from pulso.doctor.folders import check_folder
from pulso.doctor.result import Finding, failed, first_line, ok
from pulso.errors import PulsoError

_CREDENTIAL_CODES: Final = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "403",
    }
)
_CREDENTIALS_FIX: Final = (
    "check PULSO_S3_ACCESS_KEY_ID / PULSO_S3_SECRET_ACCESS_KEY (or boto3's usual credentials) "
    "and that they may list the bucket"
)


def check_bucket(settings: Settings, timeout_s: float) -> list[Finding]:
    return [_check("bucket", settings.bucket_url, "PULSO_BUCKET_URL", settings, timeout_s)]


def check_archive(settings: Settings, timeout_s: float) -> list[Finding]:
    from pulso.archive import archive_url

    url = archive_url(settings)
    return [_check("archive", url, "PULSO_ARCHIVE_URL", settings, timeout_s)]


def _check(component: str, url: str, setting: str, settings: Settings, timeout_s: float) -> Finding:
    from pulso.buckets.urls import parse_bucket_url

    try:
        location = parse_bucket_url(url, settings.data_dir)
    except PulsoError as e:
        return failed(component, str(e), f"fix {setting}")
    if location.kind == "file":
        assert location.folder is not None
        return check_folder(component, location.folder, setting, created_on_use=True)
    return _check_s3(component, location.bucket, location.prefix, setting, settings, timeout_s)


def _check_s3(
    component: str,
    bucket: str,
    prefix: str,
    setting: str,
    settings: Settings,
    timeout_s: float,
) -> Finding:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = f"s3://{bucket}/{prefix}" + (
        f" at {redact_url(settings.s3_endpoint_url)}" if settings.s3_endpoint_url else " on AWS"
    )
    try:
        client = _client(settings, timeout_s)
    except PulsoError as e:
        return failed(component, str(e), _CREDENTIALS_FIX)
    try:
        answer = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except NoCredentialsError:
        return failed(component, f"{where}: no S3 credentials found", _CREDENTIALS_FIX)
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "404"):
            return failed(
                component,
                f"{where}: the bucket {bucket!r} does not exist",
                f"create it (aws s3 mb s3://{bucket}, or mc mb for MinIO) or fix {setting}",
            )
        if code in _CREDENTIAL_CODES:
            return failed(component, f"{where}: access refused ({code})", _CREDENTIALS_FIX)
        return failed(component, f"{where}: {code or first_line(e)}", f"check {setting}")
    except BotoCoreError as e:
        return failed(
            component,
            f"{where}: no answer ({type(e).__name__})",
            "check PULSO_S3_ENDPOINT_URL and that the S3 service runs (docker compose up -d minio)",
        )
    finally:
        client.close()
    listed = "has objects" if answer.get("KeyCount", 0) else "is empty"
    return ok(component, f"{where} lists ({listed})")


def _client(settings: Settings, timeout_s: float) -> Any:
    """An S3 client as pulso's own, with the doctor's timeout and a single attempt."""
    import boto3
    from botocore.config import Config

    from pulso.errors import ConfigError

    key_id = settings.s3_access_key_id
    secret = settings.s3_secret_access_key
    secret_value = secret.get_secret_value() if secret else ""
    if bool(key_id) != bool(secret_value):
        missing = "PULSO_S3_SECRET_ACCESS_KEY" if key_id else "PULSO_S3_ACCESS_KEY_ID"
        raise ConfigError(missing, "set both S3 credentials, or neither (boto3's usual chain)")
    endpoint = settings.s3_endpoint_url or None
    config = Config(
        region_name=settings.s3_region,
        s3={"addressing_style": "path"} if endpoint else {},
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
    )
    try:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret_value or None,
            config=config,
        )
    except Exception as e:  # a bad endpoint URL, an unknown AWS_PROFILE...
        raise ConfigError(
            "PULSO_S3_ENDPOINT_URL", f"cannot set up the S3 client ({type(e).__name__})"
        ) from e
