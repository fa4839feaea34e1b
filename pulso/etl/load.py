"""Load: one sales file into the ``sales`` table, in one store transaction with its run record.

The file is read once, as a stream: extract → transform → validate run on a worker thread a
block or two ahead, while this thread bulk-loads the previous block (``insert_new_arrow``)
and writes its refused rows to the rejects file. The file's sha256 is computed on the way;
if a loaded run already has it, the transaction is rolled back and the run is recorded as
``already_loaded``. A file whose name and size match a loaded run is hashed first, so a
repeated file costs one read, not a load undone.

Whatever happens, a crash or an error leaves no row of the file stored: its rows, the rejects
file's URL and the run record commit together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from pulso.domain.ids import uuid7
from pulso.errors import StoreError
from pulso.etl.check import CheckedBlock, check_block
from pulso.etl.errors import SourceError
from pulso.etl.extract import DEFAULT_BLOCK_BYTES, read_blocks
from pulso.etl.prefetch import Prefetch
from pulso.etl.rejects import RejectsFile
from pulso.etl.rowstream import RowStream, as_sales_rows
from pulso.etl.rules import (
    DEFAULT_DAY_TOLERANCE,
    DEFAULT_FUTURE_TOLERANCE,
    SaleRules,
    known_categories,
    sale_rules,
)
from pulso.etl.runs import (
    RunRecord,
    RunStatus,
    find_loaded,
    loaded_before,
    record_run,
    update_run,
)
from pulso.etl.source import HashingReader, OpenedSource, SourceFile, locate, opened
from pulso.store.protocol import DuplicateKeyError, Store, StoreTx
from pulso.store.tables import SALES

if TYPE_CHECKING:
    from pathlib import Path

    from pulso.config import Settings

log = logging.getLogger(__name__)

_MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class EtlOptions:
    block_size: int = DEFAULT_BLOCK_BYTES
    categories: tuple[str, ...] | None = None  # None: the catalogue (SALES_CATEGORIES)
    day_tolerance: timedelta = DEFAULT_DAY_TOLERANCE
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE
    blocks_ahead: int = 2
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is, after each block."""

    rows_read: int
    rows_good: int  # passed the checks, on their way to the store
    rows_rejected: int
    bytes_read: int
    size_bytes: int | None
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]


@dataclass(slots=True)
class _Tally:
    started_at: datetime
    started_s: float
    size_bytes: int | None = None
    rows_read: int = 0
    rows_good: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    bytes_read: int = 0

    def add(self, block: CheckedBlock, bytes_read: int) -> None:
        self.rows_read += block.rows_read
        self.rows_good += block.good.num_rows
        self.rows_rejected += len(block.rejects)
        self.bytes_read = bytes_read

    def stored(self, new: int) -> None:
        self.rows_loaded = new
        self.rows_duplicate = self.rows_good - new

    def restart(self) -> None:
        self.rows_read = self.rows_good = self.rows_loaded = 0
        self.rows_rejected = self.rows_duplicate = self.bytes_read = 0

    def progress(self) -> Progress:
        return Progress(
            self.rows_read,
            self.rows_good,
            self.rows_rejected,
            self.bytes_read,
            self.size_bytes,
            time.perf_counter() - self.started_s,
        )


class _AlreadyLoaded(Exception):
    """Raised inside the transaction to roll it back: these bytes were loaded before."""

    def __init__(self, checksum: str, previous: RunRecord) -> None:
        self.checksum = checksum
        self.previous = previous


def run_file(
    store: Store,
    url_or_path: str | Path,
    settings: Settings,
    *,
    options: EtlOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunRecord:
    """Load one sales file (see the module docstring); return its run record.

    Raises SourceError when the file cannot be read as a sales CSV (the failed run is
    recorded first), and the store's errors as they are.
    """
    options = options or EtlOptions()
    source = locate(url_or_path)
    tally = _Tally(options.clock(), time.perf_counter())
    run_id = str(uuid7())
    try:
        if source.is_rejects_file:
            raise SourceError(source.url, "is a rejects file; fix its rows in a new sales file")
        with opened(source, settings) as location:
            return _run(store, location, run_id, tally, options, on_progress)
    except Exception as e:  # recorded, then raised as it is
        _record_failure(store, source, run_id, tally, e)
        raise


def _run(
    store: Store,
    location: OpenedSource,
    run_id: str,
    tally: _Tally,
    options: EtlOptions,
    on_progress: ProgressCallback | None,
) -> RunRecord:
    tally.size_bytes = location.size()
    source = location.source
    if loaded_before(store, source.url, tally.size_bytes):
        checksum = _checksum(location)
        previous = find_loaded(store.query, checksum)
        if previous is not None:
            return _record_already_loaded(store, source, run_id, tally, checksum, previous)
    try:
        try:
            return _load(store, location, run_id, tally, options, on_progress, skip_stored=False)
        except DuplicateKeyError:
            # Some sale ids are stored already (or repeated in the file): load it again, the
            # slower way that skips them. Rare, so the common file pays nothing for it.
            log.info("%s has sale ids stored already; loading it again without them", source.url)
            tally.restart()
            return _load(store, location, run_id, tally, options, on_progress, skip_stored=True)
    except _AlreadyLoaded as e:
        return _record_already_loaded(store, source, run_id, tally, e.checksum, e.previous)


def _load(
    store: Store,
    location: OpenedSource,
    run_id: str,
    tally: _Tally,
    options: EtlOptions,
    on_progress: ProgressCallback | None,
    *,
    skip_stored: bool,
) -> RunRecord:
    source = location.source
    rules = _rules(source, tally.started_at, options)
    rejects = RejectsFile()
    stream = HashingReader(location.open_stream())

    def on_block(block: CheckedBlock) -> None:
        rejects.write(block.rejects)
        tally.add(block, stream.bytes_read)
        if on_progress is not None:
            on_progress(tally.progress())

    blocks = _checked_blocks(stream, source, rules, options.block_size)
    try:
        with (
            Prefetch(blocks, depth=options.blocks_ahead, name="pulso-etl-read") as ahead,
            store.transaction() as tx,
        ):
            tally.stored(_store_rows(tx, RowStream(ahead, on_block), skip_stored))
            checksum = stream.hexdigest()
            _refuse_repeat(tx, checksum)
            record = _outcome(source, run_id, tally, RunStatus.LOADED, checksum=checksum)
            record = replace(record, rejects_url=rejects.publish(location))
            record_run(tx, record)
        return _with_commit_time(store, record, tally)
    finally:
        rejects.discard()
        stream.close()


def _checked_blocks(
    stream: HashingReader, source: SourceFile, rules: SaleRules, block_size: int
) -> Iterator[CheckedBlock]:
    """Read, clean and check (on the prefetch thread), typed for the store."""
    raw = stream.unclosable()
    if source.is_gzip:
        raw = pa.CompressedInputStream(raw, "gzip")
    for block in read_blocks(raw, source.url, block_size=block_size):
        checked = check_block(block, rules)
        yield replace(checked, good=as_sales_rows(checked.good, source.url))


def _store_rows(tx: StoreTx, rows: RowStream, skip_stored: bool) -> int:
    """The good rows into the sales table: how many were new."""
    try:
        if skip_stored:
            return tx.insert_new_arrow(SALES, rows.reader())
        return tx.append_arrow(SALES, rows.reader())
    except StoreError as e:
        if rows.failure is not None:  # the store only saw the stream break: say why it did
            raise rows.failure from e
        raise


def _refuse_repeat(tx: StoreTx, checksum: str) -> None:
    previous = find_loaded(tx.fetch, checksum)
    if previous is not None:
        raise _AlreadyLoaded(checksum, previous)


def _rules(source: SourceFile, now: datetime, options: EtlOptions) -> SaleRules:
    categories = options.categories if options.categories is not None else known_categories()
    return sale_rules(
        source.name,
        now=now,
        categories=categories,
        day_tolerance=options.day_tolerance,
        future_tolerance=options.future_tolerance,
    )


def _checksum(location: OpenedSource) -> str:
    with HashingReader(location.open_stream()) as stream:
        return stream.hexdigest()


def _outcome(
    source: SourceFile,
    run_id: str,
    tally: _Tally,
    status: RunStatus,
    *,
    checksum: str | None = None,
    error: str | None = None,
) -> RunRecord:
    loaded = status == RunStatus.LOADED
    duration = timedelta(seconds=time.perf_counter() - tally.started_s)
    return RunRecord(
        run_id=run_id,
        source=source.url,
        checksum=checksum,
        size_bytes=tally.size_bytes,
        status=status,
        rows_read=tally.rows_read,
        rows_loaded=tally.rows_loaded if loaded else 0,
        rows_rejected=tally.rows_rejected if loaded else 0,
        rows_duplicate=tally.rows_duplicate if loaded else 0,
        rejects_url=None,
        error=error,
        started_at=tally.started_at,
        finished_at=tally.started_at + duration,
        duration_ms=round(duration / timedelta(milliseconds=1)),
    )


def _with_commit_time(store: Store, record: RunRecord, tally: _Tally) -> RunRecord:
    """The record was written before its commit; count the commit in its duration too."""
    final = _outcome(
        SourceFile(record.source), record.run_id, tally, record.status, checksum=record.checksum
    )
    final = replace(final, rejects_url=record.rejects_url)
    try:
        update_run(store, final)
    except StoreError as e:  # the run and its rows are committed: only the timing is lost
        log.warning("could not record the end time of run %s: %s", record.run_id, e)
        return record
    return final


def _record_already_loaded(
    store: Store,
    source: SourceFile,
    run_id: str,
    tally: _Tally,
    checksum: str,
    previous: RunRecord,
) -> RunRecord:
    error = f"the same bytes were loaded by run {previous.run_id} from {previous.source}"
    record = _outcome(source, run_id, tally, RunStatus.ALREADY_LOADED, checksum=checksum)
    record = replace(record, error=error)
    with store.transaction() as tx:
        record_run(tx, record)
    return record


def _record_failure(
    store: Store, source: SourceFile, run_id: str, tally: _Tally, error: BaseException
) -> None:
    """Record the failed run; if even that fails, log it: the first error is the one raised."""
    text = (str(error) or type(error).__name__)[:_MAX_ERROR_CHARS]
    record = _outcome(source, run_id, tally, RunStatus.FAILED, error=text)
    try:
        with store.transaction() as tx:
            record_run(tx, record)
    except StoreError as e:
        log.warning("could not record the failed run %s of %s: %s", run_id, source.url, e)
