"""The embedded store: one DuckDB file, owned by one process.

Bulk writes become a typed Arrow table that DuckDB scans in place (``register``), copied into
the target with one ``INSERT ... SELECT ... ON CONFLICT`` statement: no per-row SQL.

Reads run on a cursor per thread, so the API can answer while the pipeline writes; writes are
serialised by a lock, one transaction at a time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import msgspec
import orjson
import pyarrow as pa

from pulso.closing import Closing
from pulso.errors import StoreError, StoreUnavailableError
from pulso.store.protocol import (
    ArrowRows,
    Dialect,
    DuplicateKeyError,
    StoreTx,
    arrow_columns,
)
from pulso.store.schema import apply_migrations
from pulso.store.sql import (
    CHECKPOINT_DELETE_ONE_SQL,
    CHECKPOINT_INSERT_SQL,
    CheckpointMethods,
    batch_columns,
    check_not_nested,
    column_list,
    insert_new_sql,
    json_text,
    quote,
    to_qmark,
    upsert_sql,
)
from pulso.store.tables import Column, ColumnBatch, Table

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_THRESHOLD_MB: Final = 256
"""WAL size that triggers a checkpoint. DuckDB's 16 MB default checkpoints every few 20k-event
batches; 256 MB wrote ~170k rows/s against ~117k, checkpoints included (bench_duckdb_store.py)."""

DEFAULT_MEMORY_LIMIT: Final = "512MB"
"""DuckDB's ``memory_limit`` (``PULSO_DUCKDB_MEMORY_LIMIT``; empty: DuckDB's own, 80 % of the
machine's RAM). Past it DuckDB evicts cached blocks and spills to ``<file>.tmp``. Without it
the block cache grows with the tables for as long as the process runs; at 512MB the pipeline's
RSS was flat over 10 minutes with the same throughput as at 1GB (docs/stream.md, "Memory")."""

_STAGED: Final = "_pulso_staged"
_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_ARROW_TYPES: Final[dict[str, Any]] = {
    "text": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "smallint": pa.int16(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "bytes": pa.binary(),
    "numeric": pa.decimal128(14, 2),
}
_LOCK_PID = re.compile(r"PID (\d+)")
_TZINFO = attrgetter("tzinfo")


class DuckDBStore(Closing):
    """A :class:`~pulso.store.protocol.Store` on a DuckDB file (created with its folder)."""

    dialect: Dialect = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_threshold_mb: int = DEFAULT_CHECKPOINT_THRESHOLD_MB,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path, checkpoint_threshold_mb, memory_limit)
        self._writer = self._new_cursor()
        # Re-entrant so that a nested transaction() fails with a clear error, not a deadlock.
        self._write_lock = threading.RLock()
        self._in_transaction = False
        self._local = threading.local()
        self._readers: list[duckdb.DuckDBPyConnection] = []
        self._readers_lock = threading.Lock()
        self._writers: list[DuckDBWriter] = []  # open_writer()'s, closed with the store
        self._closed = False

    def migrate(self) -> list[int]:
        return apply_migrations(self)

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with self._write_lock:
            self._check_open()
            check_not_nested(self._in_transaction)
            _run(self._writer, "BEGIN TRANSACTION", action="begin a transaction")
            self._in_transaction = True
            try:
                yield _DuckDBTx(self._writer)
            except BaseException:
                _rollback(self._writer)
                raise
            finally:
                self._in_transaction = False
            _commit(self._writer)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._reader()
        return _fetch(cursor, sql, params)

    def close(self) -> None:
        with contextlib.ExitStack() as held:  # no other writer mid-transaction either
            for writer in list(self._writers):
                held.enter_context(writer.lock)
            self._close()

    def _close(self) -> None:
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for cursor in [*self._readers, self._writer]:
                cursor.close()
            self._conn.close()

    def open_writer(self) -> DuckDBWriter:
        """A second writer on this database, with its own cursor and its own lock: its
        transactions run beside the store's (DuckDB's MVCC lets writers of one process
        proceed together while they do not update the same rows; appends never conflict).
        For one component that alone writes its tables (the charge ledger's
        ``pix_charges``), so that it does not queue behind the pipeline's transactions.
        It lives as long as the store: :meth:`close` closes it too."""
        with self._readers_lock:
            self._check_open()
            writer = DuckDBWriter(self, self._new_cursor())
            self._readers.append(writer.cursor)
            self._writers.append(writer)
        return writer

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._conn.cursor()
        # Timestamps come back as UTC datetimes whatever the machine's zone.
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def _reader(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._readers_lock:
                self._check_open()
                cursor = self._new_cursor()
                self._readers.append(cursor)
            self._local.cursor = cursor
        self._check_open()
        return cursor

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the DuckDB store {self.path} is closed; open a new one")


class DuckDBWriter:
    """A writer beside the store's own (see :meth:`DuckDBStore.open_writer`): the store's
    reads, and transactions on a cursor of its own, one at a time."""

    def __init__(self, store: DuckDBStore, cursor: duckdb.DuckDBPyConnection) -> None:
        self.dialect: Dialect = store.dialect
        self.cursor = cursor
        self.lock = threading.RLock()
        self._store = store
        self._in_transaction = False

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with self.lock:
            self._store._check_open()
            check_not_nested(self._in_transaction)
            _run(self.cursor, "BEGIN TRANSACTION", action="begin a transaction")
            self._in_transaction = True
            try:
                yield _DuckDBTx(self.cursor)
            except BaseException:
                _rollback(self.cursor)
                raise
            finally:
                self._in_transaction = False
            _commit(self.cursor)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._store.query(sql, params)


class _DuckDBTx(CheckpointMethods):
    """Writes inside one DuckDB transaction (see :class:`~pulso.store.protocol.StoreTx`)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor

    def save_checkpoint(self, name: str, value: bytes) -> None:
        """Delete, then insert: DuckDB's ``ON CONFLICT DO UPDATE`` of a large value costs
        about ten times a delete and an insert (a 5 MB snapshot: 160 ms against 17 ms,
        measured), and the batch's transaction makes the pair atomic all the same."""
        self.execute(CHECKPOINT_DELETE_ONE_SQL, (name,))
        self.execute(CHECKPOINT_INSERT_SQL, (name, value))

    def insert_new(self, table: Table, rows: ColumnBatch) -> int:
        columns, count = batch_columns(table, rows)
        if count == 0:
            return 0
        if count >= PROBE_MIN_ROWS and _uuid_key(table):
            return self._insert_new_probed(table, columns, to_arrow(table, columns, rows))
        result = self._bulk(table, columns, rows, insert_new_sql(table, columns, _STAGED))
        # DuckDB answers an INSERT with the number of rows it inserted, conflicts excluded.
        return int(result[0][0])

    def _insert_new_probed(self, table: Table, columns: tuple[str, ...], staged: pa.Table) -> int:
        """``insert_new`` for a big batch keyed by a UUID: when none of its keys is stored
        and none repeats, a plain INSERT (half the CPU of ``ON CONFLICT DO NOTHING`` for
        ``raw_events``' wide rows, measured); otherwise ``ON CONFLICT`` as usual. The probe
        is bounded by the batch's smallest and largest key, so with UUIDv7 ids (time-ordered,
        as pulso makes them) DuckDB's zone maps skip the older row groups."""
        key = quote(table.key[0])
        self._cursor.register(_STAGED, staged)
        try:
            [(low, high, unique)] = _fetch(
                self._cursor,
                f"SELECT min({key}), max({key}), count(DISTINCT {key}) = count(*) FROM {_STAGED}",
                (),
            )
            stored: list[tuple[Any, ...]] = []
            if unique:
                stored = _fetch(
                    self._cursor,
                    f"SELECT 1 FROM {quote(table.name)} WHERE {key} BETWEEN %s AND %s "
                    f"AND {key} IN (SELECT {key} FROM {_STAGED}) LIMIT 1",
                    (low, high),
                )
            names = column_list(columns)
            sql = (
                f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {_STAGED}"
                if unique and not stored
                else insert_new_sql(table, columns, _STAGED)
            )
            return int(_run(self._cursor, sql, action=f"write {table.name}").fetchall()[0][0])
        finally:
            _unregister(self._cursor)

    def insert_new_arrow(self, table: Table, rows: ArrowRows) -> int:
        columns = arrow_columns(table, rows.schema)
        sql = insert_new_sql(table, columns, _STAGED)
        return int(self._run_staged(table, cast_arrow(table, columns, rows), sql)[0][0])

    def append_arrow(self, table: Table, rows: ArrowRows) -> int:
        # One INSERT for a whole stream: DuckDB then writes row groups to the file as they
        # fill, where an INSERT per batch would hold the transaction's rows in memory.
        columns = arrow_columns(table, rows.schema)
        names = column_list(columns)
        sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {_STAGED}"
        try:
            return int(self._run_staged(table, cast_arrow(table, columns, rows), sql)[0][0])
        except StoreError as e:
            cause = e.__cause__
            if isinstance(cause, duckdb.ConstraintException) and _is_duplicate_key(cause):
                raise DuplicateKeyError(f"{table.name}: {_first_line(cause)}") from e
            raise

    def upsert(self, table: Table, rows: ColumnBatch) -> None:
        columns, count = batch_columns(table, rows)
        if count:
            self._bulk(table, columns, rows, upsert_sql(table, columns, _STAGED))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        _run(self._cursor, to_qmark(sql), params, action="run a statement")

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read inside this transaction (it sees the transaction's own writes)."""
        return _fetch(self._cursor, sql, params)

    def fetch_arrow(
        self, sql: str, schema: pa.Schema, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Stream a read inside this transaction as Arrow batches cast to ``schema``."""
        try:
            reader = self._cursor.sql(sql).to_arrow_reader(batch_rows)
        except duckdb.Error as e:
            raise StoreError(f"DuckDB could not run a query: {_explained(e)}") from e
        for batch in reader:
            arrays = [batch.column(i).cast(f.type) for i, f in enumerate(schema)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _bulk(
        self, table: Table, columns: tuple[str, ...], rows: ColumnBatch, sql: str
    ) -> list[tuple[Any, ...]]:
        return self._run_staged(table, to_arrow(table, columns, rows), sql)

    def _run_staged(self, table: Table, staged: ArrowRows, sql: str) -> list[tuple[Any, ...]]:
        self._cursor.register(_STAGED, staged)
        try:
            return _run(self._cursor, sql, action=f"write {table.name}").fetchall()
        finally:
            _unregister(self._cursor)


PROBE_MIN_ROWS: Final = 1_000
"""Batches from this size on, keyed by a UUID, probe for stored keys before inserting."""


def _uuid_key(table: Table) -> bool:
    return len(table.key) == 1 and table.column(table.key[0]).type == "uuid"


def _unregister(cursor: duckdb.DuckDBPyConnection) -> None:
    # When the write failed it aborted the transaction, which rolls back next: the error worth
    # raising is the write's, and the next register() replaces this view anyway.
    with contextlib.suppress(duckdb.TransactionException):
        cursor.unregister(_STAGED)


def to_arrow(table: Table, columns: tuple[str, ...], rows: ColumnBatch) -> pa.Table:
    """The batch as an Arrow table typed like the target table's columns."""
    arrays = [_arrow_array(table, table.column(name), rows[name]) for name in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))


def cast_arrow(table: Table, columns: tuple[str, ...], rows: ArrowRows) -> ArrowRows:
    """Arrow data cast to the target's column types (free where they match already), so a
    value DuckDB cannot store fails with its column's name; a stream is cast as it is read."""
    schema = pa.schema([pa.field(name, _arrow_type(table.column(name))) for name in columns])
    if isinstance(rows, pa.RecordBatchReader):
        if rows.schema.equals(schema):
            return rows
        return pa.RecordBatchReader.from_batches(schema, _cast_batches(table, rows, schema))
    return _cast(table, rows, schema)


def _cast_batches(
    table: Table, rows: pa.RecordBatchReader, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    for batch in rows:
        yield _cast(table, batch, schema)


def _cast(table: Table, rows: Any, schema: pa.Schema) -> Any:
    try:
        return rows.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError) as e:
        raise StoreError(f"{table.name} has a value it cannot store: {_first_line(e)}") from e


def _is_duplicate_key(error: duckdb.Error) -> bool:
    return "duplicate key" in str(error).lower()


def _arrow_type(column: Column) -> pa.DataType:
    if column.type == "timestamptz":
        return _TIMESTAMP
    if column.type == "uuid":
        return pa.uuid()
    if column.type == "json":
        return pa.string()
    return _ARROW_TYPES[column.type]


def _arrow_array(table: Table, column: Column, values: list[Any]) -> pa.Array:
    try:
        convert = _CONVERTERS.get(column.type)
        if convert is not None:
            return convert(values)
        return pa.array(values, _ARROW_TYPES[column.type])
    except (pa.ArrowException, TypeError, ValueError, AttributeError) as e:
        raise StoreError(
            f"{table.name}.{column.name} ({column.type}) has a value it cannot store: {e}"
        ) from e


def _first_value(values: list[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _timestamps(values: list[Any]) -> pa.Array:
    """Aware datetimes, or integer microseconds since the Unix epoch."""
    if not isinstance(_first_value(values), datetime):
        return pa.array(values, _TIMESTAMP)
    zones = _time_zones(values)
    if None in zones:
        raise ValueError("naive datetime among the values; pass tz-aware datetimes")
    if all(_whole_minutes(zone) for zone in zones):
        # msgspec writes ISO 8601 in C and Arrow parses it vectorised: 4x faster than
        # pa.array() on datetime objects, which calls utcoffset() for each one.
        with contextlib.suppress(pa.ArrowInvalid):
            return pa.array(msgspec.to_builtins(values), pa.string()).cast(_TIMESTAMP)
    return pa.array(values, _TIMESTAMP)


def _time_zones(values: list[datetime | None]) -> set[tzinfo | None]:
    try:
        return set(map(_TZINFO, values))
    except AttributeError:  # NULLs among the values: the slower path
        return {v.tzinfo for v in values if v is not None}


def _whole_minutes(zone: tzinfo | None) -> bool:
    """Fixed offsets in whole minutes survive ISO 8601 text; ZoneInfo's historic local mean
    time (-03:06:28 for São Paulo before 1914) would lose its seconds."""
    if not isinstance(zone, timezone):
        return False
    return zone.utcoffset(None) % timedelta(minutes=1) == timedelta(0)


def _uuids(values: list[Any]) -> pa.Array:
    """uuid.UUID (the fast input), 16-byte bytes or text."""
    first = _first_value(values)
    if isinstance(first, str):
        values = [None if v is None else uuid.UUID(v).bytes for v in values]
    elif isinstance(first, uuid.UUID):
        try:
            return _uuids_without_nulls(values)
        except AttributeError:  # some NULLs: the slower path
            values = [None if u is None else u.bytes for u in values]
    return pa.ExtensionArray.from_storage(pa.uuid(), pa.array(values, pa.binary(16)))


def _uuids_without_nulls(values: list[uuid.UUID]) -> pa.Array:
    # One buffer built in C-level loops: a third faster than a list of 16-byte objects.
    ints = map(attrgetter("int"), values)
    big_endian: repeat[Literal["big"]] = repeat("big")
    packed = b"".join(map(int.to_bytes, ints, repeat(16), big_endian))
    storage = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(values), [None, pa.py_buffer(packed)]
    )
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _json(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else json_text(v) for v in values], pa.string())


_CONVERTERS: Final[dict[str, Callable[[list[Any]], pa.Array]]] = {
    "timestamptz": _timestamps,
    "uuid": _uuids,
    "json": _json,
}


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = (), *, action: str
) -> duckdb.DuckDBPyConnection:
    try:
        return cursor.execute(sql, list(params))
    except duckdb.Error as e:
        raise StoreError(f"DuckDB could not {action}: {_explained(e)}") from e


def _fetch(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]
) -> list[tuple[Any, ...]]:
    result = _run(cursor, to_qmark(sql), params, action="run a query")
    if result.description is None:
        return []
    json_positions = [i for i, d in enumerate(result.description) if str(d[1]) == "JSON"]
    try:
        rows = result.fetchall()
    except duckdb.Error as e:
        raise StoreError(f"DuckDB could not read a query's result: {_first_line(e)}") from e
    # PostgreSQL hands JSON back parsed; so does this store, so callers see one shape.
    return [_parse_json(row, json_positions) for row in rows] if json_positions else rows


def _parse_json(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = orjson.loads(values[i])
    return tuple(values)


def _commit(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.execute("COMMIT")
    except duckdb.Error as e:
        # Leave the cursor ready for the next BEGIN whether or not DuckDB ended the transaction.
        with contextlib.suppress(duckdb.Error):
            cursor.execute("ROLLBACK")
        raise StoreError(f"DuckDB could not commit: {_explained(e)}") from e


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.execute("ROLLBACK")
    except duckdb.Error as e:
        # The error that made us roll back is the one worth raising; this one is only logged.
        log.warning("DuckDB rollback failed: %s", _first_line(e))


def _connect(
    path: Path, checkpoint_threshold_mb: int, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> duckdb.DuckDBPyConnection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreUnavailableError(
            f"cannot create the folder {path.parent} for the DuckDB store ({e.strerror}); "
            "check PULSO_DATA_DIR or PULSO_STORE_URL"
        ) from e
    try:
        config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": f"{checkpoint_threshold_mb}MB"
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        return duckdb.connect(str(path), config=config)
    except duckdb.IOException as e:
        raise StoreUnavailableError(_open_failure(path, e)) from e
    except duckdb.Error as e:
        raise StoreError(f"cannot open the DuckDB file {path}: {_first_line(e)}") from e


def _open_failure(path: Path, error: duckdb.Error) -> str:
    text = str(error)
    if "lock" not in text.lower():
        return f"cannot open the DuckDB file {path}: {_first_line(error)}"
    pid = _LOCK_PID.search(text)
    holder = f"another pulso process (PID {pid.group(1)})" if pid else "another pulso process"
    return (
        f"{holder} holds the DuckDB file {path}; one process owns it: while that one runs, "
        "use its HTTP API (the dashboard and CLI can point at it), or stop it and retry"
    )


_OUT_OF_MEMORY: Final = re.compile(r"(?i)out of memory|could not allocate|failed to (pin|allocate)")
MEMORY_HINT: Final = (
    " (DuckDB reached its memory limit, PULSO_DUCKDB_MEMORY_LIMIT: raise it, or trim old data "
    "with `pulso maintenance retention --keep 30d`. Event ids that are not time-ordered "
    "(UUIDv7, as pulso makes them) make DuckDB's primary-key indexes need far more of it)"
)


def _explained(error: BaseException) -> str:
    """The error's first line, and what to do when DuckDB ran out of its memory limit."""
    text = _first_line(error)
    if isinstance(error, duckdb.OutOfMemoryException) or _OUT_OF_MEMORY.search(str(error)):
        return text + MEMORY_HINT
    return text


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
