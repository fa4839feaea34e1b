"""kill -9 of a running pipeline, at several points, then a restart: the totals equal those of
an uninterrupted run over the same bus log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pulso.config import load_settings
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CHARGES = 12_000
# Each run is killed once the pipeline has committed this share of the bus log (each restart
# resumes from the last commit, a few percent below): kills at different depths into a run,
# however fast the machine is. A commit covers at most 4 × PULSO_BATCH_SIZE records (7% of
# the log), so the last target still leaves work to kill.
KILL_AT_SHARES = (0.1, 0.3, 0.5, 0.7)


def fill_bus(data_dir: Path) -> int:
    from pulso.bus import open_bus

    bus = open_bus(load_settings(data_dir=data_dir))
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(CHARGES):
        created_at = T0 + timedelta(seconds=i)
        cid = f"ch_{i:06d}"
        created = ChargeCreated(
            charge_id=cid,
            txid=f"T{i}",
            store_id=f"LJ-{i % 7:04d}",
            city="Curitiba",
            uf="PR",
            amount=Decimal(i % 500 + 1) / 4,
            created_at=created_at,
            expires_at=created_at + timedelta(hours=1),
        )
        records.append(
            (
                cid.encode(),
                encode_event(new_event(created, source="t", key=cid, occurred_at=created_at)),
            )
        )
        if i % 5:
            at = created_at + timedelta(seconds=i % 90)
            paid = ChargeConfirmed(charge_id=cid, confirmed_at=at, amount_paid=created.amount)
            records.append(
                (cid.encode(), encode_event(new_event(paid, source="t", key=cid, occurred_at=at)))
            )
        if i % 1000 == 0:
            records.append((None, b'{"broken": '))
    bus.publish(Topic.PAYMENTS, records)
    bus.close()
    return len(records)


def pipeline(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(PULSO_DATA_DIR=str(data_dir), PULSO_BATCH_SIZE="400", PULSO_BATCH_TIMEOUT_MS="100")
    return subprocess.Popen(
        [sys.executable, "-m", "pulso", "run", "--until-idle"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def committed(data_dir: Path) -> int:
    """Records of the bus log the pipeline's consumer group has committed (0 before any)."""
    path = data_dir / "bus" / "_groups" / "pulso-pipeline.json"
    try:
        offsets = json.loads(path.read_bytes())["offsets"]  # replaced by rename: never torn
    except FileNotFoundError:
        return 0
    return sum(sum(partitions.values()) for partitions in offsets.values())


def kill_when_committed(proc: subprocess.Popen[bytes], data_dir: Path, target: int) -> None:
    """SIGKILL ``proc`` as soon as ``target`` records are committed."""
    deadline = time.monotonic() + 120
    while committed(data_dir) < target:
        assert proc.poll() is None, f"the pipeline ended before committing {target} records"
        assert time.monotonic() < deadline, f"no commit of {target} records within 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)


def snapshot(data_dir: Path) -> dict[str, Any]:
    from pulso.store import open_store

    store = open_store(load_settings(data_dir=data_dir))
    try:
        return {
            "payments": store.query(
                "SELECT charge_id, status, amount_cents, paid_cents, confirmation_seconds "
                "FROM payments ORDER BY charge_id"
            ),
            "minutes": store.query(
                'SELECT store_id, "minute", charges, confirmed, confirmed_cents '
                "FROM payment_minutes ORDER BY 1, 2"
            ),
            "raw": store.query("SELECT count(*) FROM raw_events"),
            "dead": store.query("SELECT reason, count(*) FROM deadletter GROUP BY reason"),
        }
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_at_several_points_then_restart_gives_exact_totals(tmp_path: Path) -> None:
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"
    published = fill_bus(crashed)
    shutil.copytree(crashed, reference)

    assert pipeline(reference).wait(timeout=240) == 0

    mid_run = []  # records committed when each kill landed
    for share in KILL_AT_SHARES:
        proc = pipeline(crashed)
        kill_when_committed(proc, crashed, int(published * share))
        assert proc.wait(timeout=60) == -signal.SIGKILL  # killed, not finished on its own
        mid_run.append(committed(crashed))
    assert all(n < published for n in mid_run), f"a kill landed after the last commit: {mid_run}"
    assert mid_run == sorted(mid_run), f"a restart lost committed progress: {mid_run}"
    finished = pipeline(crashed)
    _, err = finished.communicate(timeout=240)
    assert finished.returncode == 0, err.decode()
    assert committed(crashed) == published

    expected, got = snapshot(reference), snapshot(crashed)
    assert got == expected
    assert len(got["payments"]) == CHARGES
    assert got["raw"][0][0] + sum(n for _, n in got["dead"]) == published
