"""Sources of events: synthetic generators, bucket files, marketplaces.

Each generator lives in its own module and is imported where it is used, so importing this
package stays cheap.
"""

from __future__ import annotations

from pulso.errors import PulsoError


class GeneratorConfigError(PulsoError):
    """A generator was asked for something it cannot make (names the option to change)."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option}: {problem}")
        self.option = option
        self.problem = problem
