"""``pulso windows show|late``: the event-time windows the pipeline emitted, and the payments
it kept out of them (too late, or stamped in the future)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.config import Settings

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
            why = None
            if not rows:
                [(stored, first, last)] = store.query(
                    "SELECT count(*), min(created_at), max(created_at) FROM payments"
                )
                why = _no_windows(settings, int(stored), first, last, key)
        finally:
            store.close()
    if why is not None:
        console.print(why)
        return
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


def _no_windows(
    settings: Settings, stored: int, first: datetime | None, last: datetime | None, key: str | None
) -> str:
    """Why ``show`` found no window: nothing stored, a key with none, or none emitted yet."""
    from pulso.domain.timefmt import format_local

    if not stored or first is None or last is None:
        return "no windows yet: no payments stored; run `pulso run` over payment events"
    if key is not None:
        return f"no window for {key!r}: check the key (`pulso windows show` lists them)"
    return (
        f"no window emitted yet: {int(stored):,} payments stored, created "
        f"{format_local(first)} … {format_local(last)}. A window is written once the stream's "
        f"event time passes its end by {settings.window_out_of_orderness_s:g} s "
        "(PULSO_WINDOW_OUT_OF_ORDERNESS_S): keep the traffic going past the minute."
    )


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
