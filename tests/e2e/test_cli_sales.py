"""``pulso sales generate`` as a user runs it: a real subprocess writing to a file, a folder
bucket and an S3 bucket (moto's standalone server on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ARGS = ("sales", "generate", "--date", "2026-11-20", "--rows", "3000", "--seed", "7")
HEAVY = ("faker", "pyarrow", "numpy", "boto3", "duckdb", "pandas")


def pulso(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PULSO_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_same_seed_same_file_in_a_folder_bucket_and_a_local_file(tmp_path: Path) -> None:
    first = pulso(*ARGS, "--bad-rate", "0.02", "--out", "out/a.csv", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3,000" in first.stdout and "bad lines" in first.stdout
    dropped = pulso(
        *ARGS, "--bad-rate", "0.02", "--bucket", f"file://{tmp_path}/drop", cwd=tmp_path
    )
    assert dropped.returncode == 0, dropped.stderr
    assert f"file://{tmp_path}/drop/sales-2026-11-20.csv" in dropped.stdout
    data = (tmp_path / "out" / "a.csv").read_bytes()
    assert (tmp_path / "drop" / "sales-2026-11-20.csv").read_bytes() == data
    assert data.startswith(b"sale_id,sold_at,store_id,seller,product,category,quantity,")
    assert data.count(b"\n") == 3_001
    assert not [p.name for p in (tmp_path / "drop").iterdir() if p.name.startswith(".")]


def test_default_bucket_is_the_data_dirs_folder(tmp_path: Path) -> None:
    result = pulso(*ARGS, cwd=tmp_path, PULSO_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "bucket" / "sales-2026-11-20.csv").stat().st_size > 100_000


def test_s3_bucket_gets_the_same_bytes(tmp_path: Path, moto_endpoint: str) -> None:
    import boto3

    name = f"pulso-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="secret",
    )
    client.create_bucket(Bucket=name)
    env = {
        "PULSO_S3_ENDPOINT_URL": moto_endpoint,
        "PULSO_S3_ACCESS_KEY_ID": "AKIATEST",
        "PULSO_S3_SECRET_ACCESS_KEY": "secret",
    }
    result = pulso(*ARGS, "--bucket", f"s3://{name}/daily", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert f"s3://{name}/daily/sales-2026-11-20.csv" in result.stdout
    local = pulso(*ARGS, "--out", "local.csv", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    stored = client.get_object(Bucket=name, Key="daily/sales-2026-11-20.csv")["Body"].read()
    assert stored == (tmp_path / "local.csv").read_bytes()

    missing = pulso(*ARGS, "--bucket", "s3://no-such-bucket-here", cwd=tmp_path, **env)
    assert missing.returncode == 1
    assert "no such S3 bucket" in missing.stderr and "Traceback" not in missing.stderr
    assert "secret" not in missing.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--rows", "0"), "--rows"),
        (("--bad-rate", "0.8"), "--bad-rate"),
        (("--out", "a.csv", "--bucket", "file:///tmp"), "not both"),
        (("--bucket", "gs://elsewhere"), "s3://bucket/prefix"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    result = pulso(*ARGS, *extra, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from pulso.cli import app;"
        "r = CliRunner().invoke(app, ['sales', 'generate', '--help']); print(r.output);"
        f"print('HEAVY:', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--bad-rate" in out.stdout and "--bucket" in out.stdout
    assert "HEAVY: []" in out.stdout
