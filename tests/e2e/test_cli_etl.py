"""``pulso etl`` as a user runs it: real subprocesses, real files, the embedded store and bus."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pulso.config import load_settings
from pulso.store import open_store

HEAVY = ("duckdb", "pyarrow", "psycopg", "pandas", "numpy", "boto3", "faker", "confluent_kafka")


def pulso(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env=_env(cwd, env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _env(cwd: Path, extra: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PULSO_", "AWS_"))}
    return {**clean, "COLUMNS": "200", "PULSO_DATA_DIR": str(cwd / "data"), **extra}


def generate(cwd: Path, *args: str) -> None:
    done = pulso("sales", "generate", "--date", "2026-11-20", "--seed", "7", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr


def stored_sales(cwd: Path) -> int:
    store = open_store(load_settings(data_dir=cwd / "data"))
    try:
        return int(store.query("SELECT count(*) FROM sales")[0][0])
    finally:
        store.close()


def test_run_loads_a_file_then_says_already_loaded_and_runs_lists_both(tmp_path: Path) -> None:
    generate(tmp_path, "--rows", "3000", "--bad-rate", "0.02", "--out", "sales-2026-11-20.csv")

    first = pulso("etl", "run", "sales-2026-11-20.csv", cwd=tmp_path)
    again = pulso("etl", "run", "sales-2026-11-20.csv", cwd=tmp_path)
    runs = pulso("etl", "runs", "--limit", "5", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "3,000 rows read" in first.stdout and "rows/s" in first.stdout
    rejects = tmp_path / "sales-2026-11-20.rejects.csv"
    assert f"rejects: {rejects.as_uri()}" in first.stdout
    with rejects.open(encoding="utf-8", newline="") as f:
        refused = list(csv.DictReader(f))
    assert 30 <= len(refused) <= 90 and all(r["line"] and r["reason"] for r in refused)
    assert f"{3000 - len(refused):,} loaded, {len(refused):,} rejected" in first.stdout
    assert stored_sales(tmp_path) == 3000 - len(refused)
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout and "nothing loaded" in again.stdout
    assert runs.returncode == 0, runs.stderr
    newest, first_run = runs.stdout.splitlines()[1:3]
    assert newest.split()[2:6] == ["repeat", "0", "0", "0"]
    loaded = f"{3000 - len(refused):,}"
    assert first_run.split()[2:6] == ["loaded", "3,000", loaded, str(len(refused))]
    assert first_run.endswith("sales-2026-11-20.csv")


def test_a_file_that_cannot_be_read_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("id,when\n1,2\n", encoding="utf-8")
    for name, problem in (("missing.csv", "no such file"), ("other.csv", "the header is")):
        result = pulso("etl", "run", name, cwd=tmp_path)
        assert result.returncode == 1
        assert problem in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    runs = pulso("etl", "runs", cwd=tmp_path)
    lines = runs.stdout.splitlines()
    assert [line.split()[2] for line in lines[1:3]] == ["failed", "failed"]
    assert any("missing.csv: no such file" in line for line in lines)


def test_watch_then_consume_loads_what_was_dropped_in_the_bucket(tmp_path: Path) -> None:
    generate(tmp_path, "--rows", "2000")  # into the data dir's bucket folder

    watched = pulso("etl", "watch", "--once", cwd=tmp_path)
    consumed = pulso("etl", "consume", "--once", cwd=tmp_path)
    idle = pulso("etl", "consume", "--once", cwd=tmp_path)

    assert watched.returncode == 0, watched.stderr
    assert consumed.returncode == 0, consumed.stderr
    assert "2,000 rows read, 2,000 loaded" in consumed.stdout
    assert "1 file events: loaded 1" in consumed.stdout
    assert idle.returncode == 0 and "0 file events" in idle.stdout
    assert stored_sales(tmp_path) == 2000


def test_a_killed_run_leaves_all_or_nothing(tmp_path: Path) -> None:
    generate(tmp_path, "--rows", "1000000", "--out", "big-2026-11-20.csv")
    process = subprocess.Popen(
        [sys.executable, "-m", "pulso", "etl", "run", "--no-progress", "big-2026-11-20.csv"],
        cwd=tmp_path,
        env=_env(tmp_path, {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_until_loading(tmp_path / "big-2026-11-20.csv", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    stored = stored_sales(tmp_path)
    runs = pulso("etl", "runs", cwd=tmp_path)
    # All or nothing, and the record says which (the kill lands before the commit here).
    assert stored in (0, 1_000_000)
    assert ("1,000,000" in runs.stdout) == (stored == 1_000_000)


def _wait_until_loading(source: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the run has read half of its file (Linux: the open file's offset in /proc): the
    load is under way, its commit seconds ahead."""
    half = source.stat().st_size // 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if _read_offset(process.pid, source) >= half:
            return
        time.sleep(0.01)


def _read_offset(pid: int, source: Path) -> int:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(source):
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                    return int(info.readline().split()[1])  # "pos:\t<offset>"
    except (OSError, ValueError):
        pass
    return -1


def test_etl_help_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from pulso.cli import app;"
        "r = CliRunner().invoke(app, ['etl', '--help']); print(r.output);"
        f"print('HEAVY:', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("run", "runs", "consume", "watch"):
        assert command in out.stdout
    assert "HEAVY: []" in out.stdout
