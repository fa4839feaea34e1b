"""kill -9 of `pulso run` at several points, then a restart: the event-time windows, the late
events and every total equal those of an uninterrupted run over the same bus log."""

from __future__ import annotations

import os
import random
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


def fill_bus(data_dir: Path) -> int:
    from pulso.bus import open_bus

    rng = random.Random(6)
    bus = open_bus(load_settings(data_dir=data_dir))
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(CHARGES):
        created_at = T0 + timedelta(milliseconds=500 * i - rng.randrange(0, 8000))
        if i % 97 == 0:
            created_at -= timedelta(seconds=rng.randrange(30, 300))  # late, some too late
        cid = f"ch_{i:06d}"
        created = ChargeCreated(
            charge_id=cid,
            txid=f"T{i}",
            store_id=f"LJ-{i % 7:04d}" if i < CHARGES // 2 else f"LJ-{i % 5:04d}",
            city="Curitiba" if i % 2 else "Natal",
            uf="PR" if i % 2 else "RN",
            amount=Decimal(rng.randrange(1, 100_000)) / 100,
            created_at=created_at,
            expires_at=created_at + timedelta(hours=1),
            payment_type="pix_static" if i % 3 else "pix_dynamic",
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
        if i % 700 == 0 and records:
            records.append(records[-2])  # a producer's re-send
    bus.publish(Topic.PAYMENTS, records)
    bus.close()
    return len(records)


def pipeline(data_dir: Path, store_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(
        PULSO_DATA_DIR=str(data_dir),
        PULSO_STORE_URL=store_url,
        PULSO_BATCH_SIZE="400",
        PULSO_BATCH_TIMEOUT_MS="100",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "pulso", "run", "--until-idle"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def snapshot(data_dir: Path, store_url: str) -> dict[str, Any]:
    from pulso.store import open_store

    store = open_store(load_settings(data_dir=data_dir, store_url=store_url))
    try:
        windows = store.query(
            "SELECT kind, dimension, key, window_start, window_end, events, amount_cents, "
            "mean_cents, max_cents, final FROM stream_windows ORDER BY 1, 2, 3, 4"
        )
        return {
            "windows": [
                (*r[:5], int(r[5]), int(r[6]), Decimal(r[7]), int(r[8]), bool(r[9]))
                for r in windows
            ],
            "late": store.query(
                "SELECT charge_id, reason, source_partition, bound FROM stream_late_events "
                "ORDER BY 1"
            ),
            "payments": store.query(
                "SELECT count(*), sum(amount_cents), count(paid_cents) FROM payments"
            ),
            "raw": store.query("SELECT count(*) FROM raw_events"),
            "dead": store.query(
                "SELECT reason, count(*) FROM deadletter GROUP BY reason ORDER BY 1"
            ),
        }
    finally:
        store.close()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crashed_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'crashed' / 'pulso.duckdb'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
def test_kill_9_at_several_points_then_restart_gives_identical_windows(
    tmp_path: Path, crashed_store: str
) -> None:
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"
    published = fill_bus(crashed)
    shutil.copytree(crashed, reference)
    reference_store = f"duckdb:///{reference / 'pulso.duckdb'}"

    assert pipeline(reference, reference_store).wait(timeout=240) == 0

    kills = 0
    # Each restart resumes from the checkpoint, so later runs have less left to do: short,
    # growing delays (start-up is ~0.7 s) keep at least two kills mid-run on a quiet machine.
    for delay_s in (0.9, 1.1, 1.3, 1.5, 1.7):
        proc = pipeline(crashed, crashed_store)
        time.sleep(delay_s)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    finished = pipeline(crashed, crashed_store)
    _, err = finished.communicate(timeout=240)
    assert finished.returncode == 0, err.decode()
    assert kills >= 2, "the pipeline finished before it could be killed; make the run longer"

    expected, got = snapshot(reference, reference_store), snapshot(crashed, crashed_store)
    assert len(expected["windows"]) > 500
    assert {r for _, r, *_ in expected["late"]} == {"late_event"}
    assert got == expected
    assert got["payments"][0][0] == CHARGES
    assert got["raw"][0][0] + sum(n for _, n in got["dead"]) < published  # re-sends: once


# A pipeline process that SIGKILLs itself at a chosen point of its k-th batch:
#   commit   - the batch is in the store (windows, state, offsets) but the bus commit is lost
#   snapshot - inside the store transaction, before it commits
CHILD = """
import os, signal, sys
from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.pipeline.factory import build_runner
from pulso.store import open_store

point, k = sys.argv[1], int(sys.argv[2])
settings = load_settings()
bus, store = open_bus(settings), open_store(settings)
runner = build_runner(settings, bus, store)
calls = [0]

def dying(fn):
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapped

if point == "commit":
    runner._consumer.commit = dying(runner._consumer.commit)
else:
    [windows] = [p for p in runner._processors if p.name == "windows"]
    windows.snapshot = dying(windows.snapshot)
runner.run(stop=lambda stats: True)
"""


@pytest.mark.slow
def test_kill_9_at_chosen_points_then_restart_gives_identical_windows(
    tmp_path: Path, crashed_store: str
) -> None:
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"
    fill_bus(crashed)
    shutil.copytree(crashed, reference)
    reference_store = f"duckdb:///{reference / 'pulso.duckdb'}"
    assert pipeline(reference, reference_store).wait(timeout=240) == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(
        PULSO_DATA_DIR=str(crashed),
        PULSO_STORE_URL=crashed_store,
        PULSO_BATCH_SIZE="400",
        PULSO_BATCH_TIMEOUT_MS="100",
    )
    for point, k in (("commit", 3), ("snapshot", 2), ("commit", 1), ("snapshot", 5)):
        child = subprocess.run(
            [sys.executable, "-c", CHILD, point, str(k)], env=env, capture_output=True, timeout=120
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    finished = pipeline(crashed, crashed_store)
    _, err = finished.communicate(timeout=240)
    assert finished.returncode == 0, err.decode()

    assert snapshot(crashed, crashed_store) == snapshot(reference, reference_store)
