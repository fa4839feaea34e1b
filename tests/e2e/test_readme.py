"""The README's command examples run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
# Examples that need nothing running: the offline `pulso pix` and `pulso config` ones.
RUNNABLE = re.compile(r"^(pulso (?:pix|config)\b.*)$", re.MULTILINE)


def examples() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    return [m.group(1) for block in blocks for m in RUNNABLE.finditer(block)]


def test_the_readme_has_runnable_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize("command", examples())
def test_readme_example_runs(command: str, tmp_path: Path) -> None:
    args = shlex.split(command)[1:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    result = subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
