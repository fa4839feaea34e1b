"""The cluster store: PostgreSQL through psycopg 3.

A bulk write streams the batch with binary COPY into a temporary staging table and merges it
with one ``INSERT ... SELECT ... ON CONFLICT``. Binary COPY measured ~1.4x text COPY and 2-3x
row-by-row INSERTs here (benchmarks/bench_postgres_copy.py).

Writes use one connection, serialised by a lock; reads use a second one in autocommit, so a
query never waits for a batch to commit. A connection found broken is replaced on next use.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_dumps

from pulso.closing import Closing
from pulso.config import redact_url
from pulso.errors import ConfigError, StoreError, StoreUnavailableError
from pulso.store import partitions
from pulso.store.protocol import (
    ArrowRows,
    Dialect,
    DuplicateKeyError,
    StoreTx,
    arrow_columns,
)
from pulso.store.schema import apply_migrations
from pulso.store.sql import (
    CheckpointMethods,
    batch_columns,
    check_not_nested,
    column_list,
    insert_new_sql,
    json_text,
    quote,
    upsert_sql,
)
from pulso.store.tables import Column, ColumnBatch, Table

DEFAULT_CONNECT_TIMEOUT_S: Final = 5
MIGRATION_LOCK_KEY: Final = 0x70756C736F  # "pulso": one migrator at a time across processes

_COPY_TYPES: Final[dict[str, str]] = {
    # Narrow integers travel as int8: psycopg's binary int2/int4 dumpers silently wrap a value
    # out of range (70000 arrives as 4464); widened, the INSERT into the target checks range.
    "text": "text",
    "int": "int8",
    "bigint": "int8",
    "smallint": "int8",
    "double": "float8",
    "bool": "bool",
    "timestamptz": "timestamptz",
    "bytes": "bytea",
    "uuid": "uuid",
    "json": "jsonb",
    # Unconstrained here, so a third decimal reaches _cents_exact's check, not a silent round.
    "numeric": "numeric",
}
# Logical types whose Arrow form CSV carries as PostgreSQL reads it; a batch with any other
# type takes the binary COPY of Python values.
_CSV_TYPES: Final = frozenset(
    {"text", "int", "bigint", "smallint", "double", "bool", "timestamptz"}
)
_CSV_OPTIONS: Final = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US: Final = 86_400_000_000
_CENT: Final = Decimal("0.01")
_PASSWORD_OPTION = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)
_Statement = Callable[[Table, tuple[str, ...], str], str]
log = logging.getLogger(__name__)


class PostgresStore(Closing):
    """A :class:`~pulso.store.protocol.Store` on a PostgreSQL database; connects at once."""

    dialect: Dialect = "postgresql"

    def __init__(self, dsn: str, *, connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        self._dsn = dsn
        self._params = _connection_params(dsn, connect_timeout_s)
        self._write_lock = threading.RLock()
        self._in_transaction = False
        self._read_lock = threading.Lock()
        self._writer: psycopg.Connection[tuple[Any, ...]] | None = self._connect()
        self._reader: psycopg.Connection[tuple[Any, ...]] | None = None
        self._closed = False
        self._days = _PartitionWatch()

    @property
    def url(self) -> str:
        """The server's URL with the password hidden, for messages."""
        return _redact(self._dsn)

    def migrate(self) -> list[int]:
        with self._write_lock:
            conn = self._writer_connection()
            self._run_admin(conn, "SELECT pg_advisory_lock(%s)")
            try:
                applied = apply_migrations(self)
                partitions.ensure_partitions(self)
                self._days.refresh(self)
                self._days.keys = None  # read again on next write
                return applied
            finally:
                # A broken session has released its lock already; its error is the one to see.
                if not conn.broken:
                    self._run_admin(conn, "SELECT pg_advisory_unlock(%s)")

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with self._write_lock:
            conn = self._writer_connection()
            # psycopg would nest as a savepoint; DuckDB cannot, so neither does this store.
            check_not_nested(self._in_transaction)
            self._in_transaction = True
            tx = _PostgresTx(conn, self.url, self._days)
            try:
                with conn.transaction():
                    yield tx
            except psycopg.Error as e:
                raise _store_error(e, conn, "run a transaction", self.url) from e
            finally:
                self._in_transaction = False
            if tx.uncovered:
                self._extend_partitions(tx.uncovered)

    def _extend_partitions(self, days: set[date]) -> None:
        """A committed batch had rows on days without a partition (they are in the default
        one): create those days (and the days ahead), moving the rows. A failure here is
        logged, never raised: the rows are stored either way."""
        try:
            partitions.ensure_partitions(self, days=days)
            self._days.refresh(self)
        except StoreError as e:
            log.warning("could not create the partitions for new days: %s", e)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            conn = self._reader_connection()
            return _fetch(conn, sql, params, self.url)

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._closed = True
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None

    def session(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A new connection of the caller's own, in autocommit, for session-level state such
        as an advisory lock held while the session lives (pulso/pipeline/leader.py)."""
        self._check_open()
        return self._connect()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            conn = psycopg.connect(**self._params, autocommit=True)
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(_unreachable_message(self.url, e)) from e
        set_json_dumps(json_text, context=conn)
        return conn

    def _writer_connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        self._check_open()
        if self._writer is None or self._writer.closed or self._writer.broken:
            self._writer = self._connect()
        return self._writer

    def _reader_connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        self._check_open()
        if self._reader is None or self._reader.closed or self._reader.broken:
            self._reader = self._connect()
        return self._reader

    def _run_admin(self, conn: psycopg.Connection[tuple[Any, ...]], sql: str) -> None:
        try:
            conn.execute(sql, (MIGRATION_LOCK_KEY,))
        except psycopg.Error as e:
            raise _store_error(e, conn, "lock the schema for migration", self.url) from e

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the PostgreSQL store {self.url} is closed; open a new one")


class _PostgresTx(CheckpointMethods):
    """Writes inside one PostgreSQL transaction (see :class:`~pulso.store.protocol.StoreTx`)."""

    def __init__(
        self, conn: psycopg.Connection[tuple[Any, ...]], url: str, days: _PartitionWatch
    ) -> None:
        self._conn = conn
        self._url = url
        self._stages = itertools.count()
        self._days = days
        self.uncovered: set[date] = set()

    def _note(self, days: set[date]) -> None:
        self.uncovered |= days

    def _watch_rows(self, table: Table, rows: ColumnBatch) -> None:
        spec = partitions.BY_NAME.get(table.name)
        if spec is not None and self._days.covered is not None and spec.column in rows:
            self._note(self._days.uncovered(rows[spec.column]))

    def _watch_arrow(self, table: Table, rows: ArrowRows) -> None:
        spec = partitions.BY_NAME.get(table.name)
        if spec is None or self._days.covered is None or not isinstance(rows, pa.Table):
            return  # a stream is read once (backups restore through here): not watched
        if spec.column in rows.column_names:
            column = rows.column(spec.column)
            if pa.types.is_timestamp(column.type):
                micros = pc.cast(pc.cast(column, pa.timestamp("us", column.type.tz)), pa.int64())
                self._note(self._days.uncovered(micros.to_pylist()))

    def insert_new(self, table: Table, rows: ColumnBatch) -> int:
        table = self._days.keyed(table, self.fetch)
        columns, count = batch_columns(table, rows)
        if count == 0:
            return 0
        written = self._bulk(table, columns, rows, insert_new_sql)
        self._watch_rows(table, rows)
        return written

    def insert_new_arrow(self, table: Table, rows: ArrowRows) -> int:
        """CSV COPY into a staging table, merged with ``ON CONFLICT DO NOTHING``."""
        table = self._days.keyed(table, self.fetch)
        columns = arrow_columns(table, rows.schema)
        if not _csv_ready(table, columns):
            return self.insert_new(table, _python_columns(rows, columns))
        self._watch_arrow(table, rows)
        stage = quote(f"_pulso_stage_{next(self._stages)}")
        like = f"CREATE TEMP TABLE {stage} (LIKE {quote(table.name)}) ON COMMIT DROP"
        self._run(like, (), f"stage rows for {table.name}")
        self._copy_csv(table, stage, columns, rows)
        return self._run(insert_new_sql(table, columns, stage), (), f"write {table.name}").rowcount

    def append_arrow(self, table: Table, rows: ArrowRows) -> int:
        """One CSV COPY straight into the table, batch after batch as they come."""
        columns = arrow_columns(table, rows.schema)
        self._watch_arrow(table, rows)
        if not _csv_ready(table, columns):
            batch = _python_columns(rows, columns)
            self._bulk(table, columns, batch, _append_sql)
            return len(batch[columns[0]])
        return self._copy_csv(table, quote(table.name), columns, rows)

    def upsert(self, table: Table, rows: ColumnBatch) -> None:
        table = self._days.keyed(table, self.fetch)
        columns, count = batch_columns(table, rows)
        if count:
            self._bulk(table, columns, rows, upsert_sql)
            self._watch_rows(table, rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params, "run a statement")

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read inside this transaction (it sees the transaction's own writes)."""
        return _fetch(self._conn, sql, params, self._url)

    def fetch_arrow(
        self, sql: str, schema: pa.Schema, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Stream a read inside this transaction (a server-side cursor) as Arrow batches of
        ``schema``; uuid fields take 16-byte values (select ``uuid_send(col)``)."""
        if all(_csv_readable(f.type) for f in schema):
            yield from self._fetch_arrow_csv(sql, schema, batch_rows)
            return
        name = f"_pulso_export_{next(self._stages)}"
        try:
            with self._conn.cursor(name=name, binary=True) as cursor:
                cursor.execute(sql)
                while rows := cursor.fetchmany(batch_rows):
                    columns = list(zip(*rows, strict=True))
                    arrays = [pa.array(columns[i], f.type) for i, f in enumerate(schema)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except psycopg.Error as e:
            raise _store_error(e, self._conn, "run a query", self._url) from e

    def _fetch_arrow_csv(
        self, sql: str, schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """``COPY (query) TO STDOUT`` as CSV, parsed by Arrow: no Python object per value
        (text, integers, floats, booleans and decimals; floats print exactly since PG 12)."""
        read = pa_csv.ReadOptions(
            column_names=schema.names, use_threads=False, block_size=max(batch_rows * 64, 1 << 20)
        )
        parse = pa_csv.ParseOptions(newlines_in_values=True)
        convert = pa_csv.ConvertOptions(
            column_types=schema,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        try:
            with (
                self._conn.cursor() as cursor,
                cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                raw = _CopyReader(copy)
                if raw.exhausted():
                    return  # no rows (Arrow calls an empty stream an error)
                stream = io.BufferedReader(raw, buffer_size=1 << 20)
                reader = pa_csv.open_csv(stream, read, parse, convert)
                for batch in reader:
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        except psycopg.Error as e:
            raise _store_error(e, self._conn, "run a query", self._url) from e
        except pa.ArrowInvalid as e:
            raise StoreError(f"PostgreSQL sent a value Arrow cannot read: {e}") from e

    def _bulk(
        self, table: Table, columns: tuple[str, ...], rows: ColumnBatch, statement: _Statement
    ) -> int:
        stage = quote(f"_pulso_stage_{next(self._stages)}")
        self._run(staging_table_sql(stage, table, columns), (), f"stage rows for {table.name}")
        self._copy(table, columns, rows, stage)
        cursor = self._run(statement(table, columns, stage), (), f"write {table.name}")
        return cursor.rowcount

    def _copy(self, table: Table, columns: tuple[str, ...], rows: ColumnBatch, stage: str) -> None:
        specs = [table.column(name) for name in columns]
        values = [_copy_values(table, spec, rows[spec.name]) for spec in specs]
        sql = f"COPY {stage} ({column_list(columns)}) FROM STDIN (FORMAT BINARY)"
        try:
            with self._conn.cursor() as cursor, cursor.copy(sql) as copy:
                copy.set_types([_COPY_TYPES[spec.type] for spec in specs])
                for row in zip(*values, strict=True):
                    copy.write_row(row)
        except psycopg.Error as e:
            raise _store_error(e, self._conn, f"copy rows into {table.name}", self._url) from e
        except (TypeError, ValueError, OverflowError) as e:
            raise StoreError(f"{table.name} has a value PostgreSQL cannot store: {e}") from e

    def _copy_csv(
        self, table: Table, target: str, columns: tuple[str, ...], rows: ArrowRows
    ) -> int:
        sql = f"COPY {target} ({column_list(columns)}) FROM STDIN (FORMAT csv)"
        try:
            with self._conn.cursor() as cursor:
                with cursor.copy(sql) as copy:
                    for batch in _batches(rows):
                        copy.write(_csv_payload(table, batch.select(list(columns))))
                return cursor.rowcount
        except psycopg.Error as e:
            raise _store_error(e, self._conn, f"copy rows into {table.name}", self._url) from e

    def _run(self, sql: str, params: Sequence[Any], action: str) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(sql, tuple(params))
        except psycopg.Error as e:
            raise _store_error(e, self._conn, action, self._url) from e


class _PartitionWatch:
    """The span of UTC days every partitioned table has partitions for (None: not
    partitioned), and whether a batch's times fall outside it (cheap: two comparisons)."""

    def __init__(self) -> None:
        self.covered: tuple[datetime, datetime] | None = None
        self.days: set[date] = set()  # every day with a partition, in the watched window
        # The key each partitioned table has here (None: not read yet): what ON CONFLICT
        # must name. A store before migration 7 keeps the specs' own keys.
        self.keys: dict[str, tuple[str, ...]] | None = None

    def keyed(self, table: Table, fetch: Callable[..., list[tuple[Any, ...]]]) -> Table:
        if table.name not in partitions.BY_NAME:
            return table
        if self.keys is None:
            self.keys = partitions.stored_keys(fetch)
        key = self.keys.get(table.name, table.key)
        return table if key == table.key else Table(table.name, table.columns, key, table.indexes)

    def refresh(self, store: PostgresStore) -> None:
        self.covered = partitions.covered_range(store)
        self.days = partitions.partition_days(store) if self.covered is not None else set()

    def uncovered(self, values: Sequence[Any]) -> set[date]:
        """The UTC days of ``values`` (datetimes, or µs since the epoch) without a partition,
        counting only days within HORIZON_DAYS back and MAX_AHEAD_DAYS ahead: a row further
        off stays in the default partition on purpose. Cheap when the batch's first and
        last times fall in the contiguous span of partitions (two comparisons); else one
        pass over the batch for its days."""
        covered = self.covered
        first = next((v for v in values if v is not None), None)
        if covered is None or first is None:
            return set()
        now = datetime.now(UTC)
        low = now - timedelta(days=partitions.HORIZON_DAYS)
        high = now + timedelta(days=partitions.MAX_AHEAD_DAYS)
        if isinstance(first, int):
            lo_us, hi_us = _micros(low), _micros(high)
            inside_us = [v for v in values if v is not None and lo_us <= v < hi_us]
            if not inside_us:
                return set()
            if _as_time(min(inside_us)) >= covered[0] and _as_time(max(inside_us)) < covered[1]:
                return set()
            days = {(_EPOCH + timedelta(days=v // _DAY_US)).date() for v in inside_us}
        else:
            inside = [v for v in values if v is not None and low <= v < high]
            if not inside:
                return set()
            if min(inside) >= covered[0] and max(inside) < covered[1]:
                return set()
            days = {v.astimezone(UTC).date() for v in inside}
        return days - self.days


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _as_time(value: Any) -> datetime:
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise StoreError(f"not a time: {value!r}")


class _CopyReader(io.RawIOBase):
    """The rows of a ``COPY ... TO STDOUT`` as a byte stream (for Arrow's CSV reader)."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def exhausted(self) -> bool:
        """True when the COPY sent nothing (more)."""
        while not self._pending:
            chunk = self._copy.read()
            if not chunk:
                return True
            self._pending = memoryview(bytes(chunk))
        return False

    def readinto(self, buffer: Any) -> int:
        if self.exhausted():
            return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _csv_readable(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(arrow_type)
        or pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def staging_table_sql(stage: str, table: Table, columns: tuple[str, ...]) -> str:
    """A temporary table for one batch, typed for binary COPY; the target checks constraints."""
    fields = ", ".join(f"{quote(name)} {_COPY_TYPES[table.column(name).type]}" for name in columns)
    return f"CREATE TEMP TABLE {stage} ({fields}) ON COMMIT DROP"


def _append_sql(table: Table, columns: tuple[str, ...], source: str) -> str:
    names = column_list(columns)
    return f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {source}"


def _batches(rows: ArrowRows) -> Iterator[pa.RecordBatch]:
    if isinstance(rows, pa.RecordBatchReader):
        yield from rows
    else:
        yield from rows.to_batches()


def _python_columns(rows: ArrowRows, columns: tuple[str, ...]) -> ColumnBatch:
    data = rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows
    batch: ColumnBatch = data.select(list(columns)).to_pydict()
    return batch


def _csv_ready(table: Table, columns: tuple[str, ...]) -> bool:
    return all(table.column(name).type in _CSV_TYPES for name in columns)


def _csv_payload(table: Table, rows: pa.RecordBatch) -> bytes:
    """The rows as CSV (no header; NULL unquoted-empty, empty text quoted) for COPY."""
    sink = pa.BufferOutputStream()
    try:
        pa_csv.write_csv(_utc_text_times(rows), sink, _CSV_OPTIONS)
    except pa.ArrowException as e:
        raise StoreError(f"{table.name} has a value PostgreSQL cannot store: {e}") from e
    return bytes(sink.getvalue())


def _utc_text_times(rows: pa.RecordBatch) -> pa.RecordBatch:
    """Zoned timestamps as UTC text with an explicit ``+00``: Arrow writes a zoned timestamp
    30x slower than a naive one (it looks the zone up per value)."""
    for i, column in enumerate(rows.columns):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            naive = pc.cast(column, pa.timestamp(column.type.unit))
            text = pc.binary_join_element_wise(pc.cast(naive, pa.string()), "+00", "")
            rows = rows.set_column(i, rows.field(i).name, text)
    return rows


def _copy_values(table: Table, column: Column, values: list[Any]) -> list[Any]:
    """Values in the Python types the binary COPY dumpers expect, checked like DuckDB's."""
    first = next((v for v in values if v is not None), None)
    problem = _value_problem(column, first)
    if problem:
        raise StoreError(f"{table.name}.{column.name} ({column.type}) {problem}")
    if column.type == "timestamptz" and isinstance(first, int):
        return [None if v is None else _EPOCH + timedelta(microseconds=v) for v in values]
    if column.type == "uuid" and isinstance(first, str | bytes):
        return [_to_uuid(v) for v in values]
    if column.type == "numeric":
        return [_cents_exact(table, column, v) for v in values]
    return values


def _value_problem(column: Column, first: Any) -> str:
    if column.type == "timestamptz" and isinstance(first, datetime) and first.utcoffset() is None:
        return f"has a naive datetime {first.isoformat()}; pass tz-aware datetimes"
    return ""


def _to_uuid(value: str | bytes | None) -> uuid.UUID | None:
    if value is None:
        return None
    return uuid.UUID(value) if isinstance(value, str) else uuid.UUID(bytes=value)


def _cents_exact(table: Table, column: Column, value: Decimal | int | None) -> Decimal | None:
    # NUMERIC(14,2) would round a third decimal silently; money must never change on the way.
    if value is None:
        return None
    amount = Decimal(value)
    if amount != amount.quantize(_CENT):
        raise StoreError(
            f"{table.name}.{column.name}: {amount} has more than two decimal places; "
            "round it explicitly before storing"
        )
    return amount


def _fetch(
    conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Sequence[Any], url: str
) -> list[tuple[Any, ...]]:
    try:
        cursor = conn.execute(sql, tuple(params))
        return cursor.fetchall() if cursor.description else []
    except psycopg.Error as e:
        raise _store_error(e, conn, "run a query", url) from e


def _store_error(
    error: psycopg.Error, conn: psycopg.Connection[tuple[Any, ...]], action: str, url: str
) -> StoreError:
    if isinstance(error, psycopg.errors.UniqueViolation):
        return DuplicateKeyError(f"PostgreSQL could not {action}: {_first_line(error)}")
    if conn.broken or conn.closed:
        return StoreUnavailableError(
            f"lost the connection to PostgreSQL at {url} while trying to {action} "
            f"({_first_line(error)}); check the server, then retry"
        )
    return StoreError(f"PostgreSQL could not {action}: {_first_line(error)}")


def _connection_params(dsn: str, connect_timeout_s: int) -> dict[str, Any]:
    try:
        params: dict[str, Any] = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as e:
        raise ConfigError("PULSO_STORE_URL", f"not a PostgreSQL URL: {_first_line(e)}") from e
    # Times come back in UTC whatever the server's zone; existing options are kept. JIT off:
    # compiling the analytic queries cost more than it saved (heatmaps over 1M payments:
    # 3.1 s of 6.9 s spent compiling; 1.5x faster without it, bench_heatmaps.py).
    options = f"{params.get('options', '')} -c TimeZone=UTC"
    if "jit=" not in options:
        options += " -c jit=off"
    params["options"] = options.strip()
    params.setdefault("connect_timeout", connect_timeout_s)
    params.setdefault("application_name", "pulso")
    return params


def _unreachable_message(url: str, error: psycopg.Error) -> str:
    reason = _first_line(error).rpartition("failed: ")[2] or _first_line(error)
    return (
        f"cannot reach PostgreSQL at {url}: {reason}; check that the server is running and "
        "accepts connections at that host and port, and the user, password and database "
        "in PULSO_STORE_URL"
    )


def _redact(dsn: str) -> str:
    if "://" in dsn:
        return redact_url(dsn)
    return _PASSWORD_OPTION.sub(r"\1********", dsn)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__
