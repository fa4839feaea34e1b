"""The sales ETL's errors.

PulsoError
└── EtlError                 the ETL could not do what it was asked
    └── SourceError          a file could not be opened or read as a sales CSV (names it)
"""

from __future__ import annotations

from pulso.errors import PulsoError


class EtlError(PulsoError):
    """The ETL could not do what it was asked."""


class SourceError(EtlError):
    """A file could not be opened, or read as a sales CSV."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
