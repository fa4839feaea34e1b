"""``pulso windows show|late``: the event-time windows the pipeline emitted, and the payments
it kept out of them (too late, or stamped in the future)."""

from __future__ import annotations

from decimal import Decimal

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def show(
    kind: str = typer.Option("tumbling_1m", help="tumbling_1m or sliding_5m."),
    dimension: str = typer.Option("store", help="store, city or payment_type."),
    key: str | None = typer.Option(None, help="Only this store id / city (Name/UF) / type."),
    limit: int = typer.Option(20, min=1, max=10_000, help="How many windows, newest first."),
) -> None:
    """The newest windows: count, total, mean and max (R$), and whether they are final."""
    if kind not in ("tumbling_1m", "sliding_5m"):
        raise fail(f"unknown --kind {kind!r}: use tumbling_1m or sliding_5m")
    if dimension not in ("store", "city", "payment_type"):
        raise fail(f"unknown --dimension {dimension!r}: use store, city or payment_type")
    settings = load_settings_or_exit()
    with user_errors():
        from rich.table import Table

        from pulso.domain.money import format_brl
        from pulso.domain.timefmt import DISPLAY_ZONE, format_local
        from pulso.store import open_store

        store = open_store(settings)
        try:
            where, params = "WHERE kind = %s AND dimension = %s", [kind, dimension]
            if key is not None:
                where, params = where + " AND key = %s", [*params, key]
            rows = store.query(
                "SELECT key, window_start, window_end, events, amount_cents, mean_cents, "
                f"max_cents, final FROM stream_windows {where} "
                "ORDER BY window_start DESC, key LIMIT %s",
                (*params, limit),
            )
        finally:
            store.close()
    table = Table(dimension, "janela", "pagamentos", "total", "média", "máximo", "final")
    for k, start, end, events, total, mean, top, final in rows:
        table.add_row(
            str(k),
            f"{format_local(start)}–{end.astimezone(DISPLAY_ZONE):%H:%M}",
            f"{int(events):,}".replace(",", "."),
            format_brl(int(total), cents=True),
            format_brl(Decimal(mean) / 100),
            format_brl(int(top), cents=True),
            "sim" if final else "não",
        )
    console.print(table)
    if not rows:
        console.print("no windows yet: run `pulso run` over payment events")


@app.command("late")
def late(
    limit: int = typer.Option(20, min=1, max=10_000, help="How many entries, newest first."),
) -> None:
    """Payments kept out of the windows, with why (late_event / future_event) and counts."""
    settings = load_settings_or_exit()
    with user_errors():
        from rich.table import Table

        from pulso.domain.money import format_brl
        from pulso.domain.timefmt import format_local
        from pulso.store import open_store

        store = open_store(settings)
        try:
            counts = store.query(
                "SELECT reason, count(*) FROM stream_late_events GROUP BY reason ORDER BY 1"
            )
            rows = store.query(
                "SELECT charge_id, reason, store_id, amount_cents, event_time, bound "
                "FROM stream_late_events ORDER BY event_time DESC LIMIT %s",
                (limit,),
            )
        finally:
            store.close()
    table = Table("charge", "reason", "store", "amount", "event time", "bound")
    for charge_id, reason, store_id, cents, at, bound in rows:
        table.add_row(
            str(charge_id),
            str(reason),
            str(store_id),
            format_brl(int(cents), cents=True),
            format_local(at),
            format_local(bound),
        )
    console.print(table)
    console.print("by reason: " + (", ".join(f"{r} {int(n):,}" for r, n in counts) or "none"))
