"""The CLI's output layer: one Rich console, and errors as one line with exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from pulso.errors import PulsoError

if TYPE_CHECKING:
    from pulso.config import Settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one red line on stderr; return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn pulso's own errors into one clear line and exit code 1, not a traceback."""
    try:
        yield
    except PulsoError as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


def load_settings_or_exit(**overrides: Any) -> Settings:
    from pulso.config import load_settings

    with user_errors():
        return load_settings(**overrides)


def progress_bar(description: str, total: int | None) -> Any:
    """A Rich progress bar (count, rate, elapsed) for long work; returns (progress, task_id)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(description, total=total, rate="")
    return progress, task


Printer = Callable[[str], None]
