"""``pulso alerts dispatch|list``: deliver detector alerts (when ``pulso up`` does not) and see
them with what every channel did."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

app = typer.Typer(no_args_is_help=True)

_AGO = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``24h``, ``7d`` ago, or an ISO date/time (local America/Sao_Paulo when it
    has no zone)."""
    from pulso.domain.timefmt import DISPLAY_ZONE

    now = now or datetime.now(UTC)
    match = _AGO.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(
            f"--since: expected 30m, 24h, 7d or a date such as 2026-11-24 or "
            f"2026-11-24T10:00, got {text!r}"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=DISPLAY_ZONE)


@app.command("dispatch")
def dispatch(
    follow: Annotated[
        bool,
        typer.Option("--follow/--once", help="Keep dispatching until Ctrl-C, or one pass."),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="First make deliveries a channel refused pending again."
        ),
    ] = False,
) -> None:
    """Fold new alert rows into throttled alerts, publish them on the alerts topic and
    deliver them to PULSO_ALERT_CHANNELS. Do not run it beside `pulso up` (it dispatches
    already)."""
    settings = load_settings_or_exit()
    with user_errors():
        import threading

        from pulso.alerts import dispatcher_from_settings
        from pulso.bus import open_bus
        from pulso.store import open_store

        store = open_store(settings)
        bus = open_bus(settings)
        try:
            dispatcher = dispatcher_from_settings(settings, store, bus)
            channels = ", ".join(dispatcher.channels) or "none (stored and published only)"
            console.print(f"channels: {channels}; throttle {settings.alert_throttle_s:g} s")
            if retry_failed:
                console.print(f"{dispatcher.retry_failed()} refused deliveries made pending")
            if follow:
                stop = threading.Event()
                console.print("dispatching until Ctrl-C")
                try:
                    dispatcher.run(stop, on_error=_show_error)
                except KeyboardInterrupt:
                    stop.set()
                return
            report = dispatcher.dispatch_once()
        finally:
            bus.close()
            store.close()
    console.print(report.describe())
    if report.retrying or report.failed or report.errors:
        console.print(
            "some deliveries did not go through: `pulso alerts list` shows why; pending ones "
            "are retried on the next pass"
        )
        raise typer.Exit(2)


def _show_error(error: str | None) -> None:
    if error is not None:
        console.print(f"[red]dispatch pass failed:[/] {error}", markup=True)


@app.command("list")
def list_cmd(
    since: Annotated[
        str, typer.Option(help="30m, 24h, 7d, or a local date/time (2026-11-24T10:00).")
    ] = "24h",
    kind: Annotated[
        str | None, typer.Option(help="A kind (fraud.velocity) or a family (fraud).")
    ] = None,
    severity: Annotated[
        str | None, typer.Option(help="Minimum severity: info, warning or critical.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
) -> None:
    """List alerts newest first, with their count and delivery state per channel."""
    settings = load_settings_or_exit()
    start = parse_since(since)
    with user_errors():
        from rich.markup import escape
        from rich.table import Column, Table

        from pulso.alerts.query import list_alerts
        from pulso.domain.timefmt import format_local
        from pulso.store import open_store

        store = open_store(settings)
        try:
            views = list_alerts(store, since=start, kind=kind, severity=severity, limit=limit)
        finally:
            store.close()
    if not views:
        console.print(f"no alerts since {format_local(start)} (America/Sao_Paulo)")
        return
    table = Table(
        Column("id", no_wrap=True),
        "last (local)",
        "kind",
        "severity",
        "subject",
        Column("count", justify="right"),
        "status",
        Column("channels", overflow="fold"),
    )
    for v in views:
        channels = "; ".join(
            f"{d.channel} {d.status}"
            + (f" ({d.attempts}×: {d.last_error})" if d.last_error else "")
            for d in v.deliveries
        )
        table.add_row(
            v.alert_id,
            format_local(v.last_at),
            escape(v.kind),
            escape(v.severity),
            escape(v.subject),
            str(v.count),
            v.status,
            escape(channels),
        )
    console.print(table)
