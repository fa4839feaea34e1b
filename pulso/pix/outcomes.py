"""Where the charge ledger's operations answer, from its writer thread.

An operation's outcome goes to anything with ``set_result``/``set_exception``: a
``concurrent.futures.Future`` for threads that block on it, an :class:`OnLoop` for a
coroutine awaiting an asyncio future, a :class:`Callback` for a caller that does not wait.
The asyncio futures of a whole batch are settled with one call into their loop
(:func:`settle_on_loops`): a thread-safe call wakes the loop through a pipe, and one per
operation costs more than the operation's share of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)


class Outcome(Protocol[_T_contra]):
    """Where an operation's result or error goes."""

    def set_result(self, result: _T_contra, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class OnLoop:
    """An asyncio future, settled on its loop by :func:`settle_on_loops` once the batch's
    outcomes are all known (until then the outcome is only noted here)."""

    __slots__ = ("future", "outcome")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.outcome: tuple[Any, BaseException | None] = (None, None)

    def set_result(self, result: Any, /) -> None:
        self.outcome = (result, None)

    def set_exception(self, exception: BaseException, /) -> None:
        self.outcome = (None, exception)


class Callback(Generic[_T]):
    """An outcome handed to ``settled(result, None)`` or ``settled(None, error)``, on the
    thread that settles it."""

    __slots__ = ("settled",)

    def __init__(self, settled: Callable[[_T | None, BaseException | None], None]) -> None:
        self.settled = settled

    def set_result(self, result: _T, /) -> None:
        self.settled(result, None)

    def set_exception(self, exception: BaseException, /) -> None:
        self.settled(None, exception)


def settle_on_loops(outcomes: Iterable[object]) -> None:
    """Settle the :class:`OnLoop` futures among ``outcomes``: one call into each loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[OnLoop]] = {}
    for outcome in outcomes:
        if isinstance(outcome, OnLoop):
            by_loop.setdefault(outcome.future.get_loop(), []).append(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[OnLoop]) -> None:
    for item in settled:
        if item.future.done():  # the waiter gave up (timeout, disconnect)
            continue
        result, error = item.outcome
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)
