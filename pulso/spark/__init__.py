"""Apache Spark jobs over pulso's data (optional extra ``pulso[spark]``, Java 17).

- :mod:`.kafka_source`: a Spark 4 Python data source reading Kafka through confluent-kafka,
  with exact per-partition offsets and data-loss handling (when Spark's own connector jar is
  not on the classpath).
- :mod:`.stream_payments`: the payments Structured Streaming job (tumbling 1-minute windows
  per store, city and payment type, with a watermark and a checkpoint) and the raw archive.
- :mod:`.batch`: the heatmap aggregates and the marketplace trends, recomputed at scale.

Nothing here is imported by the rest of pulso: pyspark stays optional.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from typing import Final

from pulso.errors import PulsoError

JOBS: Final = ("stream-payments", "heatmaps", "market-trends")


class SparkUnavailableError(PulsoError):
    """pyspark or Java is missing."""


def check_available() -> None:
    """Raise SparkUnavailableError with the fix when pyspark 4 or Java 17+ is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailableError(
            "pyspark is not installed; install the extra: pip install 'pulso[spark]' "
            "(or scripts/setup.sh --dev)"
        )
    import pyspark

    major = int(pyspark.__version__.split(".")[0])
    if major < 4:
        raise SparkUnavailableError(
            f"pyspark {pyspark.__version__} is too old; pulso's Spark jobs need pyspark 4 "
            "(pip install 'pulso[spark]')"
        )
    java = java_executable()
    if java is None:
        raise SparkUnavailableError(
            "Java is not installed (Spark needs Java 17 or newer): install a JDK, e.g. "
            "apt-get install openjdk-17-jre-headless, or set JAVA_HOME"
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise SparkUnavailableError(f"Java at {java} does not run: {e}") from e
    version = _java_major(out.stderr + out.stdout)
    if version is not None and version < 17:
        raise SparkUnavailableError(
            f"Java {version} at {java} is too old: Spark 4 needs Java 17 or newer"
        )


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def _java_major(text: str) -> int | None:
    import re

    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def python_for_workers() -> str:
    """The interpreter Spark's Python workers run: this one (the venv's), where pulso is."""
    return os.environ.get("PYSPARK_PYTHON") or sys.executable
