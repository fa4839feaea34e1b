"""docs/marketplace.md's offline quick start, run as written in a real subprocess."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "marketplace.md"


def quick_start() -> list[list[str]]:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("pulso market")]


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    commands = quick_start()
    assert [c[:2] for c in commands] == [
        ["market", "sync"],
        ["market", "trends"],
        ["market", "alerts"],
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env["PULSO_MERCADOLIVRE_OFFLINE"] = "true"
    outputs = []
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "pulso", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    sync, trends, alerts = outputs
    assert "MLB1648" in sync and "top-5 alerts raised" in sync
    assert "MLB1051: 5 snapshots" in trends and "rising" in trends
    assert "entrou no top 5" in alerts
