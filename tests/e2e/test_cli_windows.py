"""``pulso windows show|late`` over a store the real pipeline filled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pulso.config import Settings


def pulso(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(PULSO_DATA_DIR=str(data_dir), COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_windows_show_prints_the_newest_windows_in_reais(filled: Settings) -> None:
    done = pulso("windows", "show", "--limit", "3", data_dir=filled.data_dir)
    assert done.returncode == 0, done.stderr
    assert "janela" in done.stdout and "R$ " in done.stdout
    assert done.stdout.count("LJ-") == 3

    done = pulso(
        "windows", "show", "--kind", "sliding_5m", "--dimension", "city", data_dir=filled.data_dir
    )
    assert done.returncode == 0, done.stderr
    assert "/" in done.stdout  # cities are Name/UF


def test_windows_late_counts_by_reason(filled: Settings) -> None:
    done = pulso("windows", "late", data_dir=filled.data_dir)
    assert done.returncode == 0, done.stderr
    assert "by reason:" in done.stdout


def test_a_bad_kind_is_a_clear_error(filled: Settings) -> None:
    done = pulso("windows", "show", "--kind", "hourly", data_dir=filled.data_dir)
    assert done.returncode != 0
    assert "tumbling_1m or sliding_5m" in done.stdout + done.stderr
