"""The store protocol: one schema, two backends (DuckDB file, PostgreSQL).

Writes happen inside ``transaction()``; a batch's rows, its dead letters and its checkpoint
commit together, and the bus offsets are committed only after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from pulso.store.tables import ColumnBatch, Table

Dialect = Literal["duckdb", "postgresql"]


class StoreTx(Protocol):
    """Writes inside one transaction."""

    def insert_new(self, table: Table, rows: ColumnBatch) -> int:
        """Insert rows whose key is not stored yet; the others are left alone. Returns how many
        were new. Keys must be unique within ``rows``."""
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
