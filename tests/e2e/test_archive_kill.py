"""kill -9 of `pulso archive run` at several points, then restarts: every event on the bus is
in the archive exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from pulso.archive import open_archive
from pulso.archive.archiver import list_parts, read_archive
from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeCreated

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
EVENTS = 30_000


def fill_bus(data_dir: Path) -> set[uuid.UUID]:
    bus = open_bus(load_settings(data_dir=data_dir))
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(EVENTS):
        at = T0 + timedelta(seconds=i // 2)  # 10:00 .. ~14:10, five hour folders
        cid = f"ch_{i:06d}"
        created = ChargeCreated(
            charge_id=cid,
            txid=f"T{i}",
            store_id="LJ-0001",
            city="Natal",
            uf="RN",
            amount=Decimal(i % 90 + 1),
            created_at=at,
            expires_at=at + timedelta(hours=1),
        )
        event = new_event(created, source="t", key=cid, occurred_at=at)
        records.append((cid.encode(), encode_event(event)))
    bus.publish(Topic.PAYMENTS, records)
    bus.close()
    return {uuid.UUID(msgspec.json.decode(v)["event_id"]) for _, v in records}


def archiver(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(
        PULSO_DATA_DIR=str(data_dir), PULSO_ARCHIVE_BATCH_SIZE="700", PULSO_ARCHIVE_POLL_S="0.2"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "pulso", "archive", "run", "--until-idle"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def parquet_files(data_dir: Path) -> int:
    return sum(1 for _ in data_dir.rglob("*.parquet"))


def kill_after_new_files(proc: subprocess.Popen[bytes], data_dir: Path, new_files: int) -> bool:
    """SIGKILL ``proc`` once it has written ``new_files`` more Parquet files than it found, so
    the kill lands mid-run however fast the machine is; False when it finished first."""
    target = parquet_files(data_dir) + new_files
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if parquet_files(data_dir) >= target:
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


def test_kill_9_and_restart_archive_every_event_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    expected = fill_bus(data_dir)
    kills = 0
    for new_files in (1, 2, 3, 5):  # kills at different depths into a run
        proc = archiver(data_dir)
        kills += kill_after_new_files(proc, data_dir, new_files)
        proc.wait(timeout=60)
    final = archiver(data_dir)
    _out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert kills >= 1, "the archiver finished before any kill: make the bus bigger"
    bucket = open_archive(load_settings(data_dir=data_dir))
    try:
        ids = read_archive(bucket).column("event_id").to_pylist()
        assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events archived twice"
        assert set(ids) == expected
        assert {p.hour.hour for p in list_parts(bucket)} == {10, 11, 12, 13, 14}
    finally:
        bucket.close()
