"""Extract: a sales CSV read as a stream of Arrow blocks of text, never the whole file.

Each block holds the rows of about ``block_size`` bytes, every value as text (the repetitive
columns dictionary-encoded, so cleaning touches each distinct value once), with the line each
row came from. Rows that do not split into the 12 fields are set aside with their line.

``line`` is the CSV record number, the header being line 1: the file's line number as long as
no quoted value holds a line break.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from pulso.etl.errors import SourceError
from pulso.etl.layout import HEADER, SOURCE_COLUMNS

DEFAULT_BLOCK_BYTES: Final = 4 << 20
PLAIN_COLUMNS: Final = frozenset({"sale_id", "sold_at"})
"""Unique per row: dictionary-encoding them would only add work."""

_TEXT: Final = pa.string()
_DICTIONARY: Final = pa.dictionary(pa.int32(), pa.string())


@dataclass(frozen=True, slots=True)
class BrokenRow:
    """A record that did not split into the layout's fields."""

    line: int
    fields: int
    text: str


@dataclass(frozen=True, slots=True)
class Block:
    rows: pa.RecordBatch
    lines: pa.Array  # int64, one per row
    broken: tuple[BrokenRow, ...]


class _LineTracker:
    """Maps the reader's row positions to CSV record numbers, around the rows it skipped."""

    def __init__(self) -> None:
        self.broken: list[BrokenRow] = []
        self._taken = 0
        self._skips: list[int] = []  # per skipped record: good rows before it

    def on_invalid(self, row: pa_csv.InvalidRow) -> str:
        line = int(row.number) if row.number is not None else -1
        self.broken.append(BrokenRow(line, int(row.actual_columns), str(row.text)))
        self._skips.append(line - 2 - len(self._skips))
        return "skip"

    def take_broken(self) -> tuple[BrokenRow, ...]:
        taken, self._taken = tuple(self.broken[self._taken :]), len(self.broken)
        return taken

    def lines(self, first_row: int, count: int) -> pa.Array:
        """Record numbers of good rows ``first_row`` .. ``first_row + count - 1`` (0-based)."""
        positions = np.arange(first_row, first_row + count, dtype=np.int64)
        if not self._skips or count == 0 or self._skips[0] > positions[-1]:
            return pa.array(positions + 2)
        # Row g sits after skip j exactly when fewer than g + 1 good rows come before skip j.
        before = np.searchsorted(np.asarray(self._skips), positions, side="right")
        return pa.array(positions + 2 + before)


def read_blocks(
    stream: io.RawIOBase | BinaryIO, source: str, *, block_size: int = DEFAULT_BLOCK_BYTES
) -> Iterator[Block]:
    """The file's rows, block by block; raises SourceError when it is no sales CSV."""
    tracker = _LineTracker()
    reader = _open(stream, source, block_size, tracker)
    first_row = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            raise SourceError(source, _unreadable(e, first_row)) from e
        lines = (
            tracker.lines(first_row, batch.num_rows) if batch.num_rows else pa.array([], pa.int64())
        )
        first_row += batch.num_rows
        yield Block(batch, lines, tracker.take_broken())


def _open(
    stream: io.RawIOBase | BinaryIO, source: str, block_size: int, tracker: _LineTracker
) -> pa_csv.CSVStreamingReader:
    types = {c: _TEXT if c in PLAIN_COLUMNS else _DICTIONARY for c in SOURCE_COLUMNS}
    try:
        reader = pa_csv.open_csv(
            stream,
            # One thread: the reader then numbers the rows it skips, and the ETL's own threads
            # keep both cores busy.
            read_options=pa_csv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                ignore_empty_lines=False, invalid_row_handler=tracker.on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise SourceError(source, _unreadable(e, 0)) from e
    names = tuple(reader.schema.names)
    if names != SOURCE_COLUMNS:
        raise SourceError(
            source, f"the header is {','.join(names)!r}; a sales file starts with {HEADER!r}"
        )
    return reader


def _unreadable(error: BaseException, rows_before: int) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "Empty CSV" in text:
        return f"the file is empty; a sales file starts with the header {HEADER!r}"
    if "UTF8" in text or "utf-8" in text.lower():
        return (
            f"not UTF-8 text after row {rows_before:,} ({text}); "
            "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        )
    return f"not readable as CSV after row {rows_before:,}: {text}"
