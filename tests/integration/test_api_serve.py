"""`pulso serve` as a process: the API, the reconciler and the pipeline in one, owning the
DuckDB file; Ctrl-C stops it cleanly after folding what it published."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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
