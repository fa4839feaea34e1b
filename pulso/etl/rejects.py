"""The rejects file: every refused row with its line and reason, beside the source file as
``<name>.rejects.csv``. Columns: ``line,reason,`` the 12 source columns as read, and ``raw``
(the record's text, for a row that did not split into 12 fields)."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pulso.etl.check import Reject
from pulso.etl.layout import SOURCE_COLUMNS
from pulso.etl.source import OpenedSource

if TYPE_CHECKING:
    from _csv import Writer as _CsvWriter

REJECTS_HEADER = ("line", "reason", *SOURCE_COLUMNS, "raw")


class RejectsFile:
    """Written to a temporary file as rows are refused; put beside the source by ``publish``."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._file: TextIO | None = None
        self._writer: _CsvWriter | None = None
        self.count = 0

    def write(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            writer = self._writer or self._open()
            writer.writerow((reject.line, reject.reason, *reject.values, reject.raw))
            self.count += 1

    def publish(self, source: OpenedSource) -> str | None:
        """Put the file beside the source; its URL, or None when no row was refused."""
        if self._path is None or self._file is None:
            return None
        self._file.close()
        try:
            return source.put_rejects(self._path)
        finally:
            self._path.unlink(missing_ok=True)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def _open(self) -> _CsvWriter:
        handle, name = tempfile.mkstemp(prefix="pulso-rejects-", suffix=".csv")
        self._path = Path(name)
        self._file = os.fdopen(handle, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(REJECTS_HEADER)
        return self._writer
