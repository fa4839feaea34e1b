"""The record of every ETL run (table ``etl_runs``): what was read, loaded and refused, how
long it took, and the checksum that makes a file load once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pulso.store.protocol import Store, StoreTx
from pulso.store.sql import column_list
from pulso.store.tables import ETL_RUNS


class RunStatus(StrEnum):
    LOADED = "loaded"  # the rows and this record committed together
    ALREADY_LOADED = "already_loaded"  # the same bytes were loaded before: nothing written
    FAILED = "failed"  # nothing written but this record


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    source: str
    checksum: str | None
    size_bytes: int | None
    status: RunStatus
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int  # sale ids stored already (by another file, or earlier in this one)
    rejects_url: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime
    duration_ms: int


Fetch = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""``Store.query`` or ``StoreTx.fetch``."""

_COLUMNS: Final = tuple(f.name for f in fields(RunRecord))  # the table's, in its order
_SELECT: Final = f"SELECT {column_list(_COLUMNS)} FROM {ETL_RUNS.name}"


def record_run(tx: StoreTx, run: RunRecord) -> None:
    tx.insert_new(ETL_RUNS, _columns(run))


def update_run(store: Store, run: RunRecord) -> None:
    """Overwrite a recorded run's outcome (its times, after the commit they include)."""
    with store.transaction() as tx:
        tx.upsert(ETL_RUNS, _columns(run))


def _columns(run: RunRecord) -> dict[str, list[Any]]:
    values = asdict(run)
    values["status"] = str(run.status)
    return {name: [values[name]] for name in _COLUMNS}


def find_loaded(fetch: Fetch, checksum: str) -> RunRecord | None:
    """The run that loaded these bytes, if one did."""
    rows = _read(
        fetch,
        f"{_SELECT} WHERE checksum = %s AND status = %s ORDER BY started_at LIMIT 1",
        (checksum, str(RunStatus.LOADED)),
    )
    return rows[0] if rows else None


def loaded_before(store: Store, source: str, size_bytes: int) -> bool:
    """Whether a run loaded a file of this name and size: then its checksum is worth
    computing before loading (a repeat costs one read, not a load rolled back)."""
    rows = store.query(
        f"SELECT 1 FROM {ETL_RUNS.name} WHERE source = %s AND size_bytes = %s AND status = %s"
        " LIMIT 1",
        (source, size_bytes, str(RunStatus.LOADED)),
    )
    return bool(rows)


def list_runs(store: Store, *, limit: int = 20) -> list[RunRecord]:
    """The newest runs first."""
    return _read(store.query, f"{_SELECT} ORDER BY started_at DESC, run_id DESC LIMIT %s", (limit,))


def _read(fetch: Fetch, sql: str, params: Sequence[Any]) -> list[RunRecord]:
    return [_record(row) for row in fetch(sql, params)]


def _record(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["status"] = RunStatus(values["status"])
    return RunRecord(**values)
