"""`pulso archive run|ls` and `pulso maintenance retention|backup|restore` as a user runs them:
what they print, and one clear line with a non-zero exit code for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeCreated
from pulso.store import open_store

NOW = "2026-11-24T12:00:00+00:00"
T_OLD = datetime(2026, 7, 1, 9, 15, tzinfo=UTC)  # older than 90 days before NOW
T_NEW = datetime(2026, 11, 20, 18, 45, tzinfo=UTC)


def pulso(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def publish(data_dir: Path, times: list[datetime]) -> None:
    bus = open_bus(load_settings(data_dir=data_dir, kafka_partitions=1))
    records: list[tuple[bytes | None, bytes]] = []
    for i, at in enumerate(times):
        cid = f"ch_{i:05d}"
        created = ChargeCreated(
            charge_id=cid,
            txid=f"T{i}",
            store_id="LJ-0001",
            city="Manaus",
            uf="AM",
            amount=Decimal("12.34"),
            created_at=at,
            expires_at=at + timedelta(hours=1),
        )
        records.append(
            (cid.encode(), encode_event(new_event(created, source="t", key=cid, occurred_at=at)))
        )
    records.append((None, b"not an event"))
    bus.publish(Topic.PAYMENTS, records)
    bus.close()


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A data dir whose bus holds 30 old and 50 recent events, folded by the pipeline and
    copied to the archive."""
    data = tmp_path / "data"
    publish(
        data,
        [T_OLD + timedelta(minutes=i) for i in range(30)]
        + [T_NEW + timedelta(minutes=i) for i in range(50)],
    )
    env = {"PULSO_DATA_DIR": str(data), "PULSO_KAFKA_PARTITIONS": "1"}
    ran = pulso("run", "--until-idle", cwd=tmp_path, **env)
    assert ran.returncode == 0, ran.stderr
    archived = pulso("archive", "run", "--until-idle", cwd=tmp_path, **env)
    assert archived.returncode == 0, archived.stderr
    assert "archived 80 events in 3 parts" in archived.stdout
    assert "1 skipped" in archived.stdout
    return data


def test_archive_ls(loaded: Path, tmp_path: Path) -> None:
    listed = pulso("archive", "ls", "--rows", cwd=tmp_path, PULSO_DATA_DIR=str(loaded))
    assert listed.returncode == 0, listed.stderr
    assert "3 hour partitions, 3 files" in listed.stdout
    assert "2026-07-01" in listed.stdout and "2026-11-20" in listed.stdout
    one_day = pulso(
        "archive", "ls", "--date", "2026-11-20", cwd=tmp_path, PULSO_DATA_DIR=str(loaded)
    )
    assert "2 hour partitions" in one_day.stdout  # 18:45 .. 19:34
    bad = pulso("archive", "ls", "--date", "20/11/2026", cwd=tmp_path, PULSO_DATA_DIR=str(loaded))
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr


def test_retention_dry_run_then_for_real(loaded: Path, tmp_path: Path) -> None:
    env = {"PULSO_DATA_DIR": str(loaded)}
    dry = pulso("maintenance", "retention", "--keep", "90d", "--dry-run", "--now", NOW,
                cwd=tmp_path, **env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would remove" in dry.stdout
    assert "raw_events" in dry.stdout and "30 rows" in dry.stdout
    assert "1 hour partitions" in dry.stdout
    assert "nothing removed" in dry.stdout
    real = pulso("maintenance", "retention", "--keep", "90d", "--now", NOW, cwd=tmp_path, **env)
    assert real.returncode == 0, real.stderr
    assert "removed:" in real.stdout
    assert "topic=payments/date=2026-07-01/hour=09/" in real.stdout
    store = open_store(load_settings(data_dir=loaded))
    try:
        assert store.query("SELECT count(*) FROM raw_events") == [(50,)]
        assert store.query("SELECT count(*) FROM payments") == [(50,)]
    finally:
        store.close()
    listed = pulso("archive", "ls", cwd=tmp_path, **env)
    assert "2 hour partitions" in listed.stdout


@pytest.mark.parametrize("keep", ["90", "90x", "ninety days", "0d", "-1d"])
def test_retention_refuses_bad_periods(keep: str, tmp_path: Path) -> None:
    result = pulso("maintenance", "retention", "--keep", keep, cwd=tmp_path)
    assert result.returncode == 2
    assert "--keep" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_backup_and_restore(loaded: Path, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    made = pulso("maintenance", "backup", "--out", str(out), cwd=tmp_path,
                 PULSO_DATA_DIR=str(loaded))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "raw_events" in made.stdout and "80 rows" in made.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dialect"] == "duckdb"

    fresh = {"PULSO_DATA_DIR": str(tmp_path / "fresh")}
    restored = pulso("maintenance", "restore", "--from", str(out), cwd=tmp_path, **fresh)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout and "duckdb backup" in restored.stdout
    again = pulso("maintenance", "restore", "--from", str(out), cwd=tmp_path, **fresh)
    assert again.returncode == 1
    assert "not empty" in again.stderr and "--force" in again.stderr
    forced = pulso("maintenance", "restore", "--from", str(out), "--force", cwd=tmp_path, **fresh)
    assert forced.returncode == 0, forced.stderr
    assert "replaced" in forced.stdout

    twice = pulso("maintenance", "backup", "--out", str(out), cwd=tmp_path, **fresh)
    assert twice.returncode == 1 and "not empty" in twice.stderr


def test_restore_refuses_bad_backups(loaded: Path, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    made = pulso("maintenance", "backup", "--out", str(out), cwd=tmp_path,
                 PULSO_DATA_DIR=str(loaded))  # fmt: skip
    assert made.returncode == 0, made.stderr
    env = {"PULSO_DATA_DIR": str(tmp_path / "other")}

    missing = pulso("maintenance", "restore", "--from", str(tmp_path / "nope"), cwd=tmp_path, **env)
    assert missing.returncode == 1 and "is not a folder" in missing.stderr

    parquet = out / "tables" / "raw_events.parquet"
    good = parquet.read_bytes()
    parquet.write_bytes(good[:-10] + b"0123456789")
    damaged = pulso("maintenance", "restore", "--from", str(out), cwd=tmp_path, **env)
    assert damaged.returncode == 1 and "checksum mismatch" in damaged.stderr
    assert not (tmp_path / "other").exists(), "the store was opened for a damaged backup"
    parquet.write_bytes(good)
    verified = pulso("maintenance", "restore", "--from", str(out), "--verify-only", cwd=tmp_path)
    assert verified.returncode == 0 and "checksums good" in verified.stdout

    (out / "manifest.json").write_text("{")
    corrupt = pulso("maintenance", "restore", "--from", str(out), cwd=tmp_path, **env)
    assert corrupt.returncode == 1 and "corrupt" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr


@pytest.mark.postgres
def test_duckdb_backup_into_postgres(loaded: Path, tmp_path: Path, postgres_url: str) -> None:
    out = tmp_path / "bk"
    made = pulso("maintenance", "backup", "--out", str(out), cwd=tmp_path,
                 PULSO_DATA_DIR=str(loaded))  # fmt: skip
    assert made.returncode == 0, made.stderr
    restored = pulso("maintenance", "restore", "--from", str(out), cwd=tmp_path,
                     PULSO_STORE_URL=postgres_url)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert "raw_events" in restored.stdout and "80 rows" in restored.stdout
