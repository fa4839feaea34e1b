"""``pulso doctor``: check every configured backend and print what works, what does not and
the fix."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pulso.cli.output import console, load_settings_or_exit

_STYLES = {
    "ok": "[green]ok[/]",
    "warning": "[yellow]warning[/]",
    "failed": "[bold red]failed[/]",
    "not configured": "[dim]not configured[/]",
}


def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON (for scripts).")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.5, max=120.0, help="Seconds each check may wait for an answer."
        ),
    ] = 5.0,
) -> None:
    """Check the bus, store, bucket, archive, PSP, notifiers, LLM and data dir.

    Exit code 0 when everything configured works (warnings included), 1 when something
    configured is broken. Secrets are never printed.
    """
    from rich.markup import escape
    from rich.table import Table

    from pulso.doctor import exit_code, run_checks

    settings = load_settings_or_exit()
    findings = run_checks(settings, timeout)
    from pulso.pipeline.leader import check_stream_state

    stream_state = check_stream_state(settings, timeout)  # the cluster's elected runner
    if stream_state is not None:
        findings.append(stream_state)
    code = exit_code(findings)
    if as_json:
        document = {
            "ok": code == 0,
            "checks": [f.as_dict() for f in findings],
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        raise typer.Exit(code)
    table = Table(title="pulso doctor", show_lines=True)
    table.add_column("component", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail")
    with_fix = any(f.fix for f in findings)
    if with_fix:
        table.add_column("fix")
    for f in findings:
        cells = [escape(f.component), _STYLES[f.status], escape(f.detail)]
        table.add_row(*cells, *([escape(f.fix)] if with_fix else []))
    console.print(table)
    broken = sum(f.status == "failed" for f in findings)
    warned = sum(f.status == "warning" for f in findings)
    if broken:
        console.print(f"[bold red]{broken} configured backend(s) broken[/]; see the fix column.")
    else:
        console.print(
            "[green]Everything configured works.[/]"
            + (f" {warned} warning(s) worth a look." if warned else "")
        )
    raise typer.Exit(code)
