"""The data dir: the embedded profile's folder (DuckDB file, local bus, bucket, keys)."""

from __future__ import annotations

from pulso.config import Settings
from pulso.doctor.folders import check_folder
from pulso.doctor.result import Finding


def check_data_dir(settings: Settings, timeout_s: float) -> list[Finding]:
    return [check_folder("data dir", settings.data_dir, "PULSO_DATA_DIR", created_on_use=True)]
