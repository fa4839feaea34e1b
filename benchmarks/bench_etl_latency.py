"""A dropped sales file's KPIs in the API: the time from the drop to GET /v1/kpis/sales
showing its total, with `pulso up` (embedded profile: watcher + ETL consumer + API in one
process, PULSO_ETL_POLL_S=1, the default).

Goal (issue 5): within 2 s of the drop. Baseline in the same run: the same file loaded by
``run_file`` in this process into a fresh DuckDB file (the ETL's own work, no detection, bus or
HTTP), so the ratio shows what detection and delivery add.

    python benchmarks/bench_etl_latency.py [--files 5] [--rows 50000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from pulso.config import load_settings
from pulso.etl import run_file
from pulso.sources.sales_generator import SalesConfig, sales_csv_bytes, sales_object_key
from pulso.store.duckdb import DuckDBStore

TOKEN = "bench-token"
SERVE = "import typer; from pulso.cli.serve import serve; typer.run(serve)"
FIRST_DAY = date(2026, 11, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(http: httpx.Client) -> None:
    for _ in range(600):
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("pulso up did not become ready")


def _baseline_s(folder: Path, name: str, content: bytes) -> float:
    source = folder / name
    source.write_bytes(content)
    settings = load_settings(data_dir=folder)
    with DuckDBStore(folder / "baseline.duckdb") as store:
        store.migrate()
        started = time.perf_counter()
        run_file(store, source, settings)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        files = []
        for i in range(args.files):
            config = SalesConfig(day=FIRST_DAY + timedelta(days=i), rows=args.rows, seed=i)
            content, stats = sales_csv_bytes(config)
            files.append((config.day, content, stats.good_total_cents))
        day, content, _ = files[0]
        baseline = _baseline_s(folder, sales_object_key(day), content)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
        env |= {"PULSO_DATA_DIR": str(folder / "data"), "PULSO_API_TOKEN": TOKEN}
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--port", str(port), "--no-reports"],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
        )
        latencies = []
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=30
            ) as http:
                _wait_ready(http)
                bucket = folder / "data" / "bucket"
                for day, content, cents in files:
                    partial = bucket / ".incoming"
                    partial.write_bytes(content)
                    partial.rename(bucket / sales_object_key(day))
                    dropped = time.perf_counter()
                    expected = f"{cents / 100:.2f}"
                    while (
                        http.get("/v1/kpis/sales", params={"date": day.isoformat()}).json()["total"]
                        != expected
                    ):
                        time.sleep(0.02)
                    latencies.append(time.perf_counter() - dropped)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    shown = ", ".join(f"{s:.2f}" for s in latencies)
    print(f"{args.files} files of {args.rows:,} rows dropped into the bucket of `pulso up`")
    print(f"drop -> KPIs in the API: {shown} s (median {statistics.median(latencies):.2f} s)")
    print(
        f"baseline, the ETL alone (run_file, same file): {baseline:.2f} s -> detection, bus and "
        f"API add {statistics.median(latencies) - baseline:.2f} s (poll interval 1 s)"
    )
    verdict = "met" if max(latencies) <= 2 else "NOT met"
    print(f"goal: within 2 s -> {verdict} (worst {max(latencies):.2f} s)")


if __name__ == "__main__":
    main()
