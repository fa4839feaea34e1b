"""`pulso serve` as a process: the API, the reconciler and the pipeline in one, owning the
DuckDB file; Ctrl-C stops it cleanly after folding what it published."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx

from pulso.store.duckdb import DuckDBStore

TOKEN = "serve-api-token"
WAIT_S = 30.0  # a guard against hanging, not a speed assertion
SERVE = "import typer; from pulso.cli.serve import serve; typer.run(serve)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(http: httpx.Client, process: subprocess.Popen[bytes]) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            ready = http.get("/readyz")
            if ready.status_code == 200:
                return dict(ready.json()["checks"])
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("pulso serve did not become ready")


def _wait_status(http: httpx.Client, charge_id: str, status: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while http.get(f"/v1/pix/charges/{charge_id}").json()["status"] != status:
        assert time.monotonic() < deadline, f"charge {charge_id} never became {status}"
        time.sleep(0.05)


def test_pulso_serve_takes_a_charge_from_creation_to_the_payments_table(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {
        "PULSO_DATA_DIR": str(tmp_path / "data"),
        "PULSO_API_TOKEN": TOKEN,
        "PULSO_SANDBOX_PAY_AFTER_S": "0",
    }
    command = [sys.executable, "-c", SERVE, "--port", str(port), "--pipeline-linger", "0.05"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=WAIT_S
        ) as http:
            assert _wait_ready(http, process) == {"store": "ok", "bus": "ok", "pipeline": "ok"}
            body = {"amount": "7.50", "description": "Café", "store_id": "LJ-0001"}  # a demo store
            charge = http.post("/v1/pix/charges", json=body).json()
            assert http.post(f"/v1/sandbox/charges/{charge['id']}/pay").status_code == 202
            _wait_status(http, charge["id"], "confirmed")  # via the sandbox's signed webhook
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT_S)
    assert process.returncode == 130  # stopped by Ctrl-C, after a graceful shutdown
    assert b"Traceback" not in (process.stderr.read() if process.stderr else b"")

    with DuckDBStore(tmp_path / "data" / "pulso.duckdb") as store:
        rows = store.query(
            "SELECT status, amount_cents, paid_cents FROM payments WHERE charge_id = %s",
            (charge["id"],),
        )
    assert rows == [("confirmed", 750, 750)]


def test_every_charge_answered_survives_a_crash(tmp_path: Path) -> None:
    """201 means the charge is committed: kill -9 right after the answers, and every charge
    is in the DuckDB file (``creating`` when its issue had not committed yet: the reconciler
    or a retry with its key finishes it at the PSP, which returns the same charge)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {
        "PULSO_DATA_DIR": str(tmp_path / "data"),
        "PULSO_API_TOKEN": TOKEN,
        "PULSO_SANDBOX_PAY_AFTER_S": "0",
    }
    command = [sys.executable, "-c", SERVE, "--port", str(port), "--no-pipeline"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    answered: dict[str, int] = {}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=WAIT_S
        ) as http:
            _wait_ready(http, process)
            for i in range(40):
                body = {"amount": f"{i + 1}.25", "description": "Pão", "store_id": "LJ-0002"}
                key = {"Idempotency-Key": f"crash-{i}"} if i % 2 else {}
                response = http.post("/v1/pix/charges", json=body, headers=key)
                assert response.status_code == 201, response.text
                answered[response.json()["id"]] = (i + 1) * 100 + 25
    finally:
        process.kill()  # no shutdown: nothing queued gets a chance to commit
        process.wait(timeout=WAIT_S)

    with DuckDBStore(tmp_path / "data" / "pulso.duckdb") as store:
        rows = store.query("SELECT charge_id, amount_cents, status FROM pix_charges")
    stored = {str(charge_id): (cents, status) for charge_id, cents, status in rows}
    assert {i: stored[i][0] for i in answered if i in stored} == answered
    assert {status for _, status in stored.values()} <= {"creating", "pending"}


def test_a_sales_file_dropped_in_the_bucket_reaches_the_kpis(tmp_path: Path) -> None:
    """`pulso up` runs the bucket watcher and the ETL: a file dropped in the bucket folder is
    detected, loaded once, and its total shows in GET /v1/kpis/sales."""
    from pulso.sources.sales_generator import SalesConfig, sales_csv_bytes, sales_object_key

    config = SalesConfig(day=date(2026, 11, 20), rows=3_000, seed=5, bad_rate=0.01)
    content, stats = sales_csv_bytes(config)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {
        "PULSO_DATA_DIR": str(tmp_path / "data"),
        "PULSO_API_TOKEN": TOKEN,
        "PULSO_ETL_POLL_S": "0.2",
    }
    command = [sys.executable, "-c", SERVE, "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=WAIT_S
        ) as http:
            _wait_ready(http, process)
            bucket = tmp_path / "data" / "bucket"
            partial = bucket / ".incoming.csv"
            partial.write_bytes(content)
            partial.rename(bucket / sales_object_key(config.day))  # dropped whole, as S3 does
            dropped = time.monotonic()
            expected = f"{stats.good_total_cents / 100:.2f}"
            deadline = dropped + WAIT_S
            while True:
                kpis = http.get("/v1/kpis/sales", params={"date": "2026-11-20"}).json()
                if kpis["total"] == expected:
                    break
                assert time.monotonic() < deadline, f"KPIs never showed the file: {kpis}"
                time.sleep(0.05)
            print(f"file to KPIs in {time.monotonic() - dropped:.2f} s")  # the figure, not a test
            assert kpis["sales"] == stats.good_rows
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT_S)
    assert b"Traceback" not in (process.stderr.read() if process.stderr else b"")
    assert (bucket / "sales-2026-11-20.rejects.csv").exists()
