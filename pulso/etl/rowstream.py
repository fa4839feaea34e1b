"""A file's checked blocks as one Arrow stream of rows for the store's bulk path.

The store pulls the stream (DuckDB from its own thread, PostgreSQL from the caller's); as each
block passes, ``on_block`` sees it first (refused rows to the rejects file, counts, progress).
An error raised there, or by the blocks, is kept: the store reports its own error for the
broken stream, and the caller raises the original instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

import pyarrow as pa

from pulso.etl.check import CheckedBlock
from pulso.store.tables import SALES, LogicalType

_ARROW: Final[dict[LogicalType, pa.DataType]] = {
    "text": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
SALES_ARROW: Final = pa.schema([pa.field(c.name, _ARROW[c.type]) for c in SALES.columns])
"""The sales table as Arrow: what every block is cast to before it reaches the store."""


def as_sales_rows(good: pa.Table, source_url: str) -> pa.Table:
    """A block's good rows with their source file, typed like the sales table."""
    with_source = good.append_column("source_file", pa.repeat(pa.scalar(source_url), len(good)))
    return with_source.select(SALES_ARROW.names).cast(SALES_ARROW)


class RowStream:
    def __init__(
        self, blocks: Iterable[CheckedBlock], on_block: Callable[[CheckedBlock], None]
    ) -> None:
        self._blocks = blocks
        self._on_block = on_block
        self.failure: BaseException | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(SALES_ARROW, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for block in self._blocks:
                self._on_block(block)
                yield from block.good.to_batches()
        except BaseException as e:
            self.failure = e
            raise
