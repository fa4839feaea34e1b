"""`pulso demo` as a user runs it: wall time and peak memory (goal: < 1 minute, < 1 GiB).

Baseline, in the same run: the peak memory of `pulso config` (the interpreter and pulso's
imports, no work), so the ratio shows what the demo itself adds.

    python benchmarks/bench_demo.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def run_child(*args: str, cwd: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `pulso` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, int(out.stdout.strip()) / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base_s, base_mib = run_child("config", cwd=tmp)
        demo_s, demo_mib = run_child("demo", cwd=tmp)
    print(
        f"pulso demo  : {demo_s:6.1f} s, peak RSS {demo_mib:7.0f} MiB   (goal < 60 s, < 1024 MiB)"
    )
    print(f"pulso config: {base_s:6.1f} s, peak RSS {base_mib:7.0f} MiB   (baseline)")
    print(f"ratio demo/baseline peak RSS: {demo_mib / base_mib:.1f}")
    ok = demo_s < 60 and demo_mib < 1024
    print("goals met" if ok else "GOALS MISSED")


if __name__ == "__main__":
    main()
