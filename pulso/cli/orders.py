"""``pulso orders``: synthetic e-commerce orders as a CSV, and publishing a CSV on the bus.

The generator, the bus and the domain types are imported inside the commands, so that
``pulso --help`` stays fast.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from pulso.cli.output import console, err_console, fail, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.bus.protocol import Bus
    from pulso.sources.orders_csv import ReadStats
    from pulso.sources.orders_generator import OrdersConfig, OrdersStats

app = typer.Typer(no_args_is_help=True, add_completion=False)

_DATE_FORMATS: Final = ["%Y-%m-%d", "%d/%m/%Y"]
_SHOWN_BAD_LINES: Final = 20


@app.callback()
def _group() -> None:
    """E-commerce orders: generate a CSV, publish it on the bus."""


@app.command("generate")
def generate(
    rows: Annotated[
        int, typer.Option(help="Lines in the file (orders and later status changes).")
    ] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same bytes.")] = 42,
    out: Annotated[Path, typer.Option(dir_okay=False, help="The CSV file to write.")] = Path(
        "data/pedidos.csv"
    ),
    days: Annotated[int, typer.Option(help="Orders are placed over this many days.")] = 90,
    start: Annotated[
        datetime | None,
        typer.Option(
            formats=_DATE_FORMATS,
            help="First day (local); default: the period ends yesterday. Fix it for the same "
            "bytes on every run.",
        ),
    ] = None,
) -> None:
    """Synthetic e-commerce orders as a CSV (layout in docs/orders.md).

    Customers with Brazilian names in real cities, products and prices per category, channels
    Site/App/Marketplace, statuses Pago/Pendente/Cancelado/Reembolsado; about one line in four
    is a later status change of an earlier order (e.g. Pendente, then Pago).
    """
    config = _config(rows, seed, days, start)
    out = _check_out(out)
    started_s = time.perf_counter()
    with user_errors():
        stats = _write(config, out)
    _print_generated(config, stats, out, time.perf_counter() - started_s)


def _config(rows: int, seed: int, days: int, start: datetime | None) -> OrdersConfig:
    from pulso.sources import GeneratorConfigError
    from pulso.sources.orders_generator import OrdersConfig, default_start

    try:
        first = start.date() if start is not None else default_start(max(days, 1))
        return OrdersConfig(start=first, days=days, rows=rows, seed=seed)
    except GeneratorConfigError as e:
        raise fail(f"--{e.option}: {e.problem}", 2) from None


def _check_out(out: Path) -> Path:
    if out.is_dir():
        raise fail(f"--out {out} is a folder; name the CSV file to write", 2)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"--out: cannot create the folder {out.parent} ({e.strerror})") from None
    return out


def _write(config: OrdersConfig, out: Path) -> OrdersStats:
    """Write aside, then rename: a reader never sees half a file."""
    from pulso.sources.orders_generator import write_orders_csv

    partial = out.with_name(out.name + ".part")
    try:
        with console.status("gerando pedidos…"), partial.open("wb") as stream:
            stats = write_orders_csv(config, stream)
        os.replace(partial, out)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot write {out}: {e.strerror or e}; choose another --out") from None
    return stats


def _print_generated(config: OrdersConfig, stats: OrdersStats, out: Path, took_s: float) -> None:
    from datetime import timedelta

    from rich.table import Table

    from pulso.domain.money import format_brl

    last = config.start + timedelta(days=config.days - 1)
    statuses = ", ".join(f"{s} {n:,}" for s, n in stats.by_status.items())
    channels = ", ".join(f"{c} {n:,}" for c, n in stats.by_channel.items())
    table = Table(title="pulso orders generate", show_header=False)
    for label, value in (
        ("period", f"{config.start} … {last} (America/Sao_Paulo)"),
        ("lines", f"{stats.rows:,}: {stats.orders:,} orders + {stats.updates:,} status changes"),
        ("final status", statuses),
        ("channels", channels),
        ("paid", format_brl(stats.paid_total_cents, cents=True)),
        ("size", f"{stats.bytes_written / 1e6:,.1f} MB"),
        ("written to", str(out)),
        ("took", f"{took_s:.1f} s"),
    ):
        table.add_row(label, value)
    console.print(table)


@app.command("produce")
def produce(
    csv_file: Annotated[Path, typer.Option("--csv", help="The orders CSV to publish.")],
    topic: Annotated[
        str,
        typer.Option(help="Topic to publish on; the pipeline reads 'orders'."),
    ] = "orders",
) -> None:
    """Publish the orders of a CSV on the bus (PULSO_BUS_URL: local or Kafka).

    Each good line becomes one order.upserted event keyed by its order id (an order's versions
    stay in order); the pipeline (pulso run / pulso up) writes them to the store, a status
    change updating its order. Bad lines are listed with their line number and reason and
    are not published; the exit code is 1 when there were any.
    """
    from pulso.sources.orders_csv import ReadStats, count_lines

    if not topic.strip():
        raise fail("--topic must not be empty", 2)
    settings = load_settings_or_exit()
    with user_errors():
        total = count_lines(csv_file)
        from pulso.bus import open_bus

        bus = open_bus(settings)
        stats = ReadStats()
        started_s = time.perf_counter()
        try:
            published = _publish(bus, csv_file, topic, total, stats)
        finally:
            bus.close()
    took_s = time.perf_counter() - started_s
    _print_produced(stats, published, topic, settings.bus.kind, took_s)
    if topic != "orders":
        err_console.print(
            f"note: the pipeline reads the topic 'orders'; events on {topic!r} are for other "
            "consumers"
        )
    if stats.bad:
        raise typer.Exit(1)


def _publish(bus: Bus, path: Path, topic: str, total: int, stats: ReadStats) -> int:
    from pulso.cli.output import progress_bar
    from pulso.sources.orders_csv import publish_orders

    progress, task = progress_bar("orders", total)
    started_s = time.perf_counter()

    def advance(_: int) -> None:
        rate = stats.lines / max(time.perf_counter() - started_s, 1e-9)
        progress.update(task, completed=stats.lines, rate=f"{rate:,.0f} lines/s")

    with progress:
        published = publish_orders(bus, path, topic, stats, on_batch=advance)
        progress.update(task, completed=stats.lines, total=stats.lines)
    return published


def _print_produced(
    stats: ReadStats, published: int, topic: str, bus_kind: str, took_s: float
) -> None:
    console.print(
        f"published {published:,} orders on topic {topic!r} ({bus_kind} bus) in {took_s:.1f} s;"
        f" {stats.bad:,} bad lines not published",
        soft_wrap=True,
    )
    if not stats.bad:
        return
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(stats.bad_by_reason.items()))
    err_console.print(f"bad lines by reason: {reasons}", soft_wrap=True)
    for bad in stats.bad_lines[:_SHOWN_BAD_LINES]:
        err_console.print(
            f"  line {bad.line}: {bad.reason}: {bad.detail}", soft_wrap=True, markup=False
        )
    if stats.bad > _SHOWN_BAD_LINES:
        err_console.print(f"  … and {stats.bad - _SHOWN_BAD_LINES:,} more", soft_wrap=True)
