"""``pulso run``: the pipeline as a long-running process (or until the bus is drained)."""

from __future__ import annotations

import typer

from pulso.cli.output import console, load_settings_or_exit, user_errors


def run(
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Stop once the bus has nothing more to read."
    ),
    group: str = typer.Option("pulso-pipeline", help="Consumer group name."),
) -> None:
    """Run the pipeline: bus → validate → store, until Ctrl-C.

    Each batch is written in one store transaction and its bus offsets are committed after it;
    invalid events go to the dead-letter (see `pulso deadletter list`).
    """
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.bus import open_bus
        from pulso.pipeline.factory import build_runner
        from pulso.store import open_store

        bus = open_bus(settings)
        store = open_store(settings)
        runner = build_runner(settings, bus, store, group=group)
        console.print(
            f"pipeline running (bus {settings.bus.kind}, store {store.dialect}); Ctrl-C stops"
        )
        try:
            stats = runner.run(stop=lambda _: until_idle)
        except KeyboardInterrupt:
            console.print("stopping")
            return
        finally:
            runner.close()
            store.close()
            bus.close()
        console.print(
            f"{stats.messages:,} messages: {stats.new_events:,} new events, "
            f"{stats.duplicates:,} duplicates, {sum(stats.dead_letters.values()):,} dead letters"
        )
