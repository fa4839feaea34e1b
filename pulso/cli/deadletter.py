"""``pulso deadletter list|show|replay``: what failed validation, why, and a way back in."""

from __future__ import annotations

from typing import Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_entries(
    reason: str | None = typer.Option(None, help="Only entries with this reason."),
    limit: int = typer.Option(50, min=1, max=10_000, help="How many entries, newest first."),
) -> None:
    """List dead-lettered inputs with their reason (and counts by reason)."""
    settings = load_settings_or_exit()
    with user_errors():
        from rich.table import Column, Table

        from pulso.pipeline.deadletter import count_by_reason, list_dead_letters
        from pulso.store import open_store

        store = open_store(settings)
        try:
            entries = list_dead_letters(store, reason=reason, limit=limit)
            counts = count_by_reason(store)
        finally:
            store.close()
    table = Table(
        Column("id", no_wrap=True),  # ids are typed back into `show`: never cut them
        "reason",
        Column("detail", overflow="fold"),
        "received (UTC)",
        "replayed",
    )
    for e in entries:
        table.add_row(
            e.id,
            e.reason,
            e.detail[:80],
            f"{e.received_at:%Y-%m-%d %H:%M:%S}",
            "yes" if e.replayed_at else "",
        )
    console.print(table)
    console.print("by reason: " + (", ".join(f"{r} {n:,}" for r, n in counts.items()) or "none"))


@app.command("show")
def show(entry_id: str = typer.Argument(..., help="Entry id, as `list` prints it.")) -> None:
    """Show one entry: where it came from, why it failed, and its original bytes."""
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.pipeline.deadletter import get_dead_letter
        from pulso.store import open_store

        store = open_store(settings)
        try:
            entry = get_dead_letter(store, entry_id)
        finally:
            store.close()
    if entry is None:
        raise fail(f"no dead-letter entry {entry_id!r}; `pulso deadletter list` shows the ids")
    console.print(
        f"[bold]{entry.id}[/]  topic {entry.topic} partition {entry.partition} "
        f"offset {entry.offset}"
    )
    console.print(f"reason: {entry.reason}\ndetail: {entry.detail}")
    console.print(f"received: {entry.received_at:%Y-%m-%d %H:%M:%S} UTC")
    console.print("payload:")
    console.print(entry.payload.decode("utf-8", errors="backslashreplace"), markup=False)


@app.command("replay")
def replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Entry ids to replay.")] = None,
    reason: str | None = typer.Option(None, help="Replay every entry with this reason."),
) -> None:
    """Publish entries' original bytes again on their topic (after fixing the cause)."""
    if not entry_ids and not reason:
        raise fail("name entry ids or --reason; `pulso deadletter list` shows them", code=2)
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.bus import open_bus
        from pulso.pipeline.deadletter import replay_dead_letters
        from pulso.store import open_store

        store = open_store(settings)
        bus = open_bus(settings)
        try:
            replayed = replay_dead_letters(store, bus, entry_ids=entry_ids or [], reason=reason)
        finally:
            bus.close()
            store.close()
    if not replayed:
        raise fail("nothing matched: no entry was replayed")
    console.print(f"replayed {len(replayed):,} entries; the pipeline will read them again")
