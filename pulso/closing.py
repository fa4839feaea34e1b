"""Context-manager support for every resource that has ``close()``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with Resource(...) as r:`` closes ``r`` on the way out, error or not."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
