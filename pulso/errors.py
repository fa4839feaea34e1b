"""The one exception tree of pulso.

PulsoError
├── ConfigError            a setting is missing or malformed (names the variable)
├── InvalidEventError      an event failed decoding or validation (carries the reason)
├── BusError               the message bus failed
│   └── BusUnavailableError    the broker cannot be reached
├── StoreError             the store failed
│   └── StoreUnavailableError  the database cannot be reached
└── MissingExtraError      an optional dependency is not installed (names the pip extra)

Messages say what happened and what fixes it.
"""

from __future__ import annotations


class PulsoError(Exception):
    """Root of every error pulso raises on purpose."""


class ConfigError(PulsoError):
    """A setting is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class InvalidEventError(PulsoError):
    """An event could not be decoded or failed validation."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BusError(PulsoError):
    """The message bus failed."""


class BusUnavailableError(BusError):
    """The broker cannot be reached."""


class StoreError(PulsoError):
    """The store failed."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached."""


class MissingExtraError(PulsoError):
    """An optional dependency is missing."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed: run  pip install 'pulso[{extra}]'")
        self.module = module
        self.extra = extra
