"""The sales ETL: a daily sales CSV from a bucket into the ``sales`` table, once.

extract (streaming Arrow blocks) → transform (clean, type) → validate (vectorised record
rules; the pydantic model words the reasons) → load (bulk, one transaction with the run
record). Refused rows go to ``<name>.rejects.csv`` beside the file. See :mod:`pulso.etl.load`.
"""

from __future__ import annotations

from pulso.etl.errors import EtlError, SourceError
from pulso.etl.load import EtlOptions, Progress, run_file
from pulso.etl.runs import RunRecord, RunStatus, list_runs

__all__ = [
    "EtlError",
    "EtlOptions",
    "Progress",
    "RunRecord",
    "RunStatus",
    "SourceError",
    "list_runs",
    "run_file",
]
