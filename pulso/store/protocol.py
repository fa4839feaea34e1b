"""The store protocol: one schema, two backends (DuckDB file, PostgreSQL).

Writes happen inside ``transaction()``; a batch's rows, its dead letters and its checkpoint
commit together, and the bus offsets are committed only after that.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from pulso.errors import StoreError
from pulso.store.sql import batch_columns
from pulso.store.tables import ColumnBatch, Table

if TYPE_CHECKING:
    import pyarrow as pa

Dialect = Literal["duckdb", "postgresql"]
ArrowRows: TypeAlias = "pa.Table | pa.RecordBatchReader"
"""Arrow data for the bulk paths: a table, or a stream of batches."""


class DuplicateKeyError(StoreError):
    """``append_arrow`` met a key that is stored already; roll the transaction back."""


class StoreTx(Protocol):
    """Writes inside one transaction."""

    def insert_new(self, table: Table, rows: ColumnBatch) -> int:
        """Insert rows whose key is not stored yet; the others are left alone. Returns how many
        were new. Keys must be unique within ``rows``."""
        ...

    def insert_new_arrow(self, table: Table, rows: ArrowRows) -> int:
        """``insert_new`` for Arrow data, the bulk path (no Python object per value).

        ``rows`` is a table, or a stream of batches read as it is consumed (a file's worth of
        rows need not be in memory). Columns are named like the table's; types as the table's
        logical types map to Arrow (``text`` string, ``int`` int32, ``bigint`` int64,
        ``timestamptz`` timestamp with a time zone...) or castable to them. Returns how many
        rows were new; keys stored already, or repeated within ``rows``, are skipped."""
        ...

    def append_arrow(self, table: Table, rows: ArrowRows) -> int:
        """Insert every row of Arrow data (as for ``insert_new_arrow``) without looking for
        stored keys first: the fastest bulk path; returns the row count. A key stored already,
        or repeated within ``rows``, raises DuplicateKeyError, after which the transaction can
        only be rolled back (DuckDB aborts it): retry with ``insert_new_arrow``."""
        ...

    def upsert(self, table: Table, rows: ColumnBatch) -> None:
        """Insert rows, merging into existing ones column by column (``Column.merge``).
        Keys must be unique within ``rows``."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement written for this store's dialect (placeholders: ``%s``)."""
        ...

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query inside the transaction (sees its uncommitted writes)."""
        ...

    def save_checkpoint(self, name: str, value: bytes) -> None: ...

    def load_checkpoint(self, name: str) -> bytes | None: ...

    def list_checkpoints(self, prefix: str) -> list[tuple[str, bytes]]:
        """The checkpoints whose name starts with ``prefix``, ``(name, value)`` in name order."""
        ...

    def delete_checkpoints(self, prefix: str) -> int:
        """Delete the checkpoints whose name starts with ``prefix``; how many there were."""
        ...

    def fetch_arrow(
        self, sql: str, schema: pa.Schema, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Stream a read query's rows, inside the transaction, as Arrow batches of ``schema``
        (one field per selected column, in order; values cast to its types). For backups:
        a file's worth of rows is never in memory at once."""
        ...


class Store(Protocol):
    """A store backend."""

    dialect: Dialect

    def migrate(self) -> list[int]:
        """Apply pending schema versions (idempotent); return the versions applied now."""
        ...

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query written for this dialect (placeholders: ``%s``)."""
        ...

    def close(self) -> None: ...


def arrow_columns(table: Table, schema: pa.Schema) -> tuple[str, ...]:
    """``batch_columns`` for Arrow data: its columns in the table's order, checked."""
    naive = [f.name for f in schema if getattr(f.type, "tz", "") is None]
    if naive:
        raise StoreError(
            f"{table.name}.{naive[0]} holds timestamps without a time zone; "
            "pass tz-aware timestamps (e.g. timestamp[us, tz=UTC])"
        )
    names = schema.names
    if len(set(names)) != len(names):
        raise StoreError(f"the Arrow data for {table.name} repeats a column name: {names}")
    columns, _ = batch_columns(table, {name: [] for name in names})
    return columns
