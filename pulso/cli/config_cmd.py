"""``pulso config``: the effective settings, secrets redacted."""

from __future__ import annotations

import typer

from pulso.cli.output import console, load_settings_or_exit


def config(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the effective settings, secrets redacted.

    Settings come from PULSO_* variables, a .env file in the working folder, and defaults.
    """
    settings = load_settings_or_exit()
    shown = settings.redacted()
    if as_json:
        import json

        console.print_json(json.dumps(shown, default=str))
        return
    from rich.table import Table

    table = Table("setting", "variable", "value", title="pulso settings")
    for name, value in shown.items():
        table.add_row(name, f"PULSO_{name.upper()}", "" if value is None else str(value))
    console.print(table)
