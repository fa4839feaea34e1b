"""PIX lifecycle events as kept in the raw event log, read back in time order and exported.

Every ``pix.charge.*`` event the pipeline accepted is a row of ``raw_events`` holding the
envelope exactly as it arrived. Reading pages through them by ``(occurred_at, event_id)``
(keyset pagination: each page starts after the last row of the previous one), so memory stays
at one page whatever the period, and the order is total even when two events share a time.

``export_events`` writes one pretty-printed JSON file per event, in a folder per day, named so
that a listing sorts by time: ``DIR/2026-11-20/20261120T143005_pix.charge.confirmed_<id>.json``
(times in America/Sao_Paulo, as everything pulso shows). The payer's CPF/CNPJ is masked in the
files unless the caller asks for the envelope exactly as stored.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec

from pulso.domain.events import EVENT_KINDS, Event, decode_event
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.domain.validators import mask_cnpj, mask_cpf
from pulso.pix.errors import PixError
from pulso.store.protocol import Store

PIX_EVENT_TYPES: Final[tuple[str, ...]] = tuple(
    t for t in EVENT_KINDS if t.startswith("pix.charge.")
)
DEFAULT_BATCH: Final = 5_000
_PROGRESS_EVERY: Final = 250  # files between progress callbacks: a callback per file costs more

# Amounts stay exact when a masked envelope is re-encoded: JSON numbers decode to Decimal.
_ANY_JSON: Final = msgspec.json.Decoder(float_hook=Decimal)
_JSON_OUT: Final = msgspec.json.Encoder(decimal_format="number")
_DOCUMENT_FIELD: Final = b'"payer_document"'


class EventExportError(PixError):
    """Events cannot be written where the export was asked to go."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"cannot write the events to {path}: {problem}; "
            "choose a folder you can write to with --out"
        )
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A row of ``raw_events``: the envelope's bytes as received, with what indexes it."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    payload: bytes


# --------------------------------------------------------------------------- reading


def _filters(
    start: datetime | None, end: datetime | None, store_id: str | None
) -> tuple[list[str], list[Any]]:
    """WHERE conditions and their parameters for PIX events of a period and store."""
    conditions: list[str] = ["type = ANY(%s)"]
    params: list[Any] = [list(PIX_EVENT_TYPES)]
    if start is not None:
        conditions.append("occurred_at >= %s")
        params.append(start)
    if end is not None:
        conditions.append("occurred_at < %s")
        params.append(end)
    if store_id is not None:
        # Only the created event names the store; every producer keys a charge's events by
        # the charge id (so they share a partition), and ``payments`` maps it to its store.
        conditions.append("key IN (SELECT charge_id FROM payments WHERE store_id = %s)")
        params.append(store_id)
    return conditions, params


def _check_period(start: datetime | None, end: datetime | None) -> None:
    for name, at in (("start", start), ("end", end)):
        if at is not None and at.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if start is not None and end is not None and start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")


def iter_pix_records(
    store: Store,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    store_id: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> Iterator[StoredEvent]:
    """PIX events stored with ``start <= occurred_at < end`` (None: unbounded), oldest first,
    read ``batch`` rows at a time."""
    _check_period(start, end)
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    conditions, params = _filters(start, end, store_id)
    rows = store.query(_page_sql(conditions, after_last=False), (*params, batch))
    next_sql = _page_sql(conditions, after_last=True)
    while rows:
        for row in rows:
            yield _record(row)
        if len(rows) < batch:
            return
        last_at, last_id = rows[-1][2], rows[-1][0]
        rows = store.query(next_sql, (*params, last_at, last_at, last_id, batch))


def _page_sql(conditions: list[str], *, after_last: bool) -> str:
    if after_last:  # the bound on occurred_at alone lets PostgreSQL range-scan its index
        conditions = [
            *conditions,
            "occurred_at >= %s",
            "(occurred_at > %s OR event_id > %s)",
        ]
    return (
        "SELECT event_id, type, occurred_at, payload FROM raw_events "
        f"WHERE {' AND '.join(conditions)} ORDER BY occurred_at, event_id LIMIT %s"
    )


def _record(row: tuple[Any, ...]) -> StoredEvent:
    event_id, event_type, occurred_at, payload = row
    return StoredEvent(
        event_id=event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id)),
        type=str(event_type),
        occurred_at=occurred_at,
        payload=bytes(payload),
    )


def iter_pix_events(
    store: Store,
    *,
    start: datetime | None,
    end: datetime | None,
    store_id: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> Iterator[Event]:
    """The PIX events of a period, decoded (``decode_event``), oldest first, streaming."""
    for record in iter_pix_records(store, start=start, end=end, store_id=store_id, batch=batch):
        yield decode_event(record.payload)


def count_pix_events(
    store: Store,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    store_id: str | None = None,
) -> int:
    _check_period(start, end)
    conditions, params = _filters(start, end, store_id)
    rows = store.query(f"SELECT count(*) FROM raw_events WHERE {' AND '.join(conditions)}", params)
    return int(rows[0][0])


# --------------------------------------------------------------------------- export


def mask_payer_document(document: str) -> str:
    """A CPF or CNPJ in the masked form that may be shown: never the whole number."""
    return mask_cpf(document) if len(document) == 11 else mask_cnpj(document)


def event_file_path(out_dir: Path, record: StoredEvent) -> Path:
    """``out_dir/YYYY-MM-DD/YYYYMMDDTHHMMSS_<type>_<event_id>.json`` in Brasília time."""
    local = record.occurred_at.astimezone(DISPLAY_ZONE)
    name = f"{local:%Y%m%dT%H%M%S}_{record.type}_{record.event_id}.json"
    return out_dir / f"{local:%Y-%m-%d}" / name


def event_file_bytes(record: StoredEvent, *, mask_documents: bool = True) -> bytes:
    """The stored envelope as indented JSON; with ``mask_documents`` the payer's CPF/CNPJ is
    replaced by its masked form and nothing else changes."""
    payload = record.payload
    if mask_documents and _DOCUMENT_FIELD in payload:
        payload = _masked(payload)
    return msgspec.json.format(payload, indent=2) + b"\n"


def _masked(payload: bytes) -> bytes:
    envelope = _ANY_JSON.decode(payload)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("payer_document"), str):
        return payload
    document: str = data["payer_document"]
    data["payer_document"] = mask_payer_document(document)
    return _JSON_OUT.encode(envelope)


def prepare_export_dir(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and prove it takes files, before any event is read."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".pulso-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise EventExportError(out_dir, e.strerror or str(e)) from e


def export_events(
    records: Iterable[StoredEvent],
    out_dir: Path,
    *,
    mask_documents: bool = True,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write one JSON file per event; returns how many. ``progress`` gets counts of files
    written since its last call. Exporting again writes the same names: files are replaced,
    never duplicated, and each appears whole (written aside, then renamed)."""
    made_dirs: set[Path] = set()
    written = reported = 0
    for record in records:
        path = event_file_path(out_dir, record)
        _write_whole(path, event_file_bytes(record, mask_documents=mask_documents), made_dirs)
        written += 1
        if progress is not None and written - reported >= _PROGRESS_EVERY:
            progress(written - reported)
            reported = written
    if progress is not None and written > reported:
        progress(written - reported)
    return written


def _write_whole(path: Path, content: bytes, made_dirs: set[Path]) -> None:
    partial = path.with_name(path.name + ".part")
    try:
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as e:
        raise EventExportError(path, e.strerror or str(e)) from e
