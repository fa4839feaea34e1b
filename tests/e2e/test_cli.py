"""The ``pulso`` command as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("duckdb", "pyarrow", "psycopg", "confluent_kafka", "faker", "pandas")


def pulso(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_help_lists_every_command_without_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from pulso.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); print(r.output);"
        f"print('HEAVY:', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("demo", "config", "run", "generate", "deadletter"):
        assert command in out.stdout
    assert "HEAVY: []" in out.stdout


def test_config_shows_settings_with_secrets_redacted(tmp_path: Path) -> None:
    result = pulso(
        "config",
        "--json",
        cwd=tmp_path,
        PULSO_STORE_URL="postgresql://app:hunter2@db:5432/pulso",
        PULSO_PII_KEY="very-secret",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["store_url"] == "postgresql://app:********@db:5432/pulso"
    assert shown["pii_key"] == "********"
    assert "hunter2" not in result.stdout and "very-secret" not in result.stdout


def test_a_bad_setting_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = pulso("config", cwd=tmp_path, PULSO_BUS_URL="rabbit://x")
    assert result.returncode == 1
    assert "PULSO_BUS_URL" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    result = pulso(
        "run", "--until-idle", cwd=tmp_path, PULSO_STORE_URL="postgresql://u:pw@127.0.0.1:1/db"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "pw@" not in result.stderr
    assert "127.0.0.1:1" in result.stderr


@pytest.mark.kafka
def test_unreachable_kafka_is_a_clear_error(tmp_path: Path) -> None:
    result = pulso("run", "--until-idle", cwd=tmp_path, PULSO_BUS_URL="kafka://127.0.0.1:1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:1" in result.stderr and "PULSO_BUS_URL" in result.stderr


def test_generate_run_and_deadletter_commands_work_together(tmp_path: Path) -> None:
    generated = pulso(
        "generate",
        "payments",
        "--days",
        "1",
        "--stores",
        "3",
        "--cities",
        "2",
        "--malformed-rate",
        "0.01",
        "--to-bus",
        "--start",
        "2026-11-16",
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stderr
    ran = pulso("run", "--until-idle", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "dead letters" in ran.stdout

    listed = pulso("deadletter", "list", "--limit", "500", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "by reason:" in listed.stdout and "invalid_cpf" in listed.stdout
    entry_id = next(
        line.split("│")[1].strip() for line in listed.stdout.splitlines() if "payments:" in line
    )
    shown = pulso("deadletter", "show", entry_id, cwd=tmp_path)
    assert shown.returncode == 0 and "reason:" in shown.stdout
    missing = pulso("deadletter", "show", "payments:9:999999", cwd=tmp_path)
    assert missing.returncode == 1 and "no dead-letter entry" in missing.stderr
    assert pulso("deadletter", "replay", cwd=tmp_path).returncode == 2
    replayed = pulso("deadletter", "replay", entry_id, cwd=tmp_path)
    assert replayed.returncode == 0 and "replayed 1" in replayed.stdout


@pytest.mark.slow
def test_demo_runs_and_its_counts_are_exact(tmp_path: Path) -> None:
    result = pulso("demo", "--days", "2", "--stores", "6", "--cities", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exact:" in result.stdout and "ticket médio" in result.stdout
    assert "R$" in result.stdout
    assert (tmp_path / "data" / "demo" / "pulso.duckdb").exists()
    folder = tmp_path / "data" / "demo" / "relatorio"
    assert "report for " in result.stdout and str(folder) in result.stdout
    assert len(list(folder.glob("mapa_calor_*.png"))) == 34
    assert (folder / "relatorio_mapas_calor.html").stat().st_size > 0
    assert (folder / "relatorio_pagamentos.pdf").read_bytes().startswith(b"%PDF-")


def test_demo_without_report_writes_none(tmp_path: Path) -> None:
    result = pulso(
        "demo", "--days", "1", "--stores", "2", "--cities", "1", "--no-report", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "report for" not in result.stdout
    assert not (tmp_path / "data" / "demo" / "relatorio").exists()


@pytest.mark.slow
def test_demo_serve_starts_the_api_and_the_dashboard(tmp_path: Path) -> None:
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    args = ["demo", "--days", "1", "--stores", "2", "--cities", "1", "--no-report"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pulso", *args, "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answered: set[str] = set()
        for _ in range(1_200):  # a guard against hanging (2 min), not a speed assertion
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            for url in (
                f"http://127.0.0.1:{port}/healthz",
                f"http://127.0.0.1:{port + 1}/_stcore/health",
            ):
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        answered.add(url)
                except httpx.TransportError:
                    pass
            if len(answered) == 2:
                break
            time.sleep(0.1)
        assert len(answered) == 2, f"only {answered} answered"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert f"dashboard on http://127.0.0.1:{port + 1}" in out
    assert "Traceback" not in err
    with pytest.raises(httpx.TransportError):  # the dashboard stopped with the demo
        httpx.get(f"http://127.0.0.1:{port + 1}/_stcore/health", timeout=1)
