"""``pulso market sync|trends|alerts``: Mercado Livre best-seller snapshots, their trends and the
top-N alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.config import Settings
    from pulso.market.history import CategorySync
    from pulso.market.trends import CategoryTrends, TrendRow
    from pulso.store.protocol import Store

app = typer.Typer(no_args_is_help=True, add_completion=False)

CategoriesOption = Annotated[
    str | None,
    typer.Option(
        "--categories",
        "--category",
        help="Comma-separated category ids, e.g. MLB1051,MLB1648; default PULSO_MARKET_CATEGORIES.",
    ),
]


@app.callback()
def _group() -> None:
    """Mercado Livre best sellers: snapshots, trends and top-N alerts."""


@app.command("sync")
def sync(
    categories: CategoriesOption = None,
    watch_top: Annotated[
        int | None,
        typer.Option(
            "--watch-top",
            min=0,
            max=20,
            help="Alert when a product enters this top N; default PULSO_MARKET_WATCH_TOP_N.",
        ),
    ] = None,
    offline: Annotated[
        bool | None,
        typer.Option(
            "--offline/--online",
            help="Bundled demo data instead of the API; default PULSO_MERCADOLIVRE_OFFLINE.",
        ),
    ] = None,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Also publish new snapshots as product.snapshot events on the products topic.",
        ),
    ] = False,
) -> None:
    """Snapshot the best sellers (top 20) of each category into the store.

    Each product's position, title, price, rating and available quantity are kept with the
    time of the snapshot (to the minute): the history grows, and a repeat within the same
    minute writes nothing. Offline, the bundled week of rankings is replayed (snapshots 6, 4,
    2, 1 and 0 days before the current hour; a repeat within the hour writes nothing), so
    trends have something to show at once.
    """
    overrides = {} if offline is None else {"mercadolivre_offline": offline}
    settings = load_settings_or_exit(**overrides)
    top_n = settings.market_watch_top_n if watch_top is None else watch_top
    with user_errors():
        from pulso.market.source import parse_categories
        from pulso.store import open_store

        category_ids = parse_categories(categories or settings.market_categories)
        store = open_store(settings)
        try:
            results = _sync(settings, store, category_ids, top_n)
        finally:
            store.close()
        published = _publish(settings, results) if publish else None
    _print_sync(results, top_n)
    if published is not None:
        console.print(f"{published} product.snapshot events published on the products topic")


@app.command("trends")
def trends(
    categories: CategoriesOption = None,
    days: Annotated[float, typer.Option(min=0.01, max=365, help="Window, in days.")] = 7.0,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Rows per category.")] = 25,
) -> None:
    """Rising and falling products, new entrants and leavers, and rank velocity.

    The first and the latest snapshot within the window are compared; velocity is the
    least-squares slope of a product's positions, in positions per day (positive = climbing).
    """
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.market.history import load_snapshots
        from pulso.market.source import parse_categories
        from pulso.market.trends import category_trends
        from pulso.store import open_store

        category_ids = parse_categories(categories) if categories else []
        until = datetime.now(UTC)
        store = open_store(settings)
        try:
            snapshots = load_snapshots(
                store, since=until - timedelta(days=days), until=until, category_ids=category_ids
            )
        finally:
            store.close()
    if not snapshots:
        raise fail(f"no snapshots in the last {days:g} days; run `pulso market sync` first")
    for report in category_trends(snapshots):
        _print_trends(report, limit)


@app.command("alerts")
def alerts(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
) -> None:
    """The latest top-N entry alerts."""
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.market.history import market_alerts
        from pulso.store import open_store

        store = open_store(settings)
        try:
            rows = market_alerts(store, limit=limit)
        finally:
            store.close()
    if not rows:
        console.print("no top-N alerts yet (pulso market sync --watch-top N)")
    for _, _, message in rows:
        console.print(f"• {message}", soft_wrap=True)


def _sync(
    settings: Settings, store: Store, category_ids: list[str], top_n: int
) -> list[CategorySync]:
    from pulso.market.history import sync_category
    from pulso.market.source import open_client
    from pulso.market.sync import snapshot_time

    now = snapshot_time()
    if not settings.mercadolivre_offline:
        with open_client(settings) as client:
            return [sync_category(client, store, c, now, top_n=top_n) for c in category_ids]
    from pulso.sources.mercadolivre_offline import offline_rounds

    this_hour = now.replace(minute=0)
    results = []
    for index, days_ago in enumerate(offline_rounds()):
        taken_at = this_hour - timedelta(days=days_ago)
        with open_client(settings, offline_round=index) as client:
            for category_id in category_ids:
                results.append(sync_category(client, store, category_id, taken_at, top_n=top_n))
    return results


def _publish(settings: Settings, results: list[CategorySync]) -> int:
    """Publish the snapshots this sync stored (repeats are not published again)."""
    from pulso.bus import open_bus
    from pulso.market.events import publish_snapshots

    bus = open_bus(settings)
    try:
        return sum(publish_snapshots(bus, r.snapshots) for r in results if r.new_rows)
    finally:
        bus.close()


def _print_sync(results: list[CategorySync], top_n: int) -> None:
    from pulso.domain.timefmt import format_local

    for r in results:
        console.print(
            f"{r.category_id} at {format_local(r.taken_at)}: {r.products} products, "
            f"{r.new_rows} new rows" + ("" if r.new_rows else " (already stored)")
        )
        for alert in r.alerts:
            console.print(f"  [bold yellow]alert[/] {alert.message}", soft_wrap=True)
    raised = sum(len(r.alerts) for r in results)
    if top_n:
        console.print(f"{raised} top-{top_n} alerts raised")


def _print_trends(report: CategoryTrends, limit: int) -> None:
    from rich.table import Table

    from pulso.domain.ptbr import format_date

    title = (
        f"{report.category_id}: {report.snapshots} snapshots, "
        f"{format_date(report.first_at)} → {format_date(report.last_at)}"
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("Now", "right"),
        ("Before", "right"),
        ("Move", "right"),
        ("Pos/day", "right"),
        ("Product", "left"),
        ("Price", "right"),
        ("Status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in report.rows[:limit]:
        table.add_row(*_cells(row))
    console.print(table)
    console.print(
        f"rising {len(report.rising)} · falling {len(report.falling)} · "
        f"new {len(report.with_status('new'))} · left {len(report.with_status('left'))}"
    )


_STATUS_STYLE = {
    "rising": "[green]▲ rising[/]",
    "falling": "[red]▼ falling[/]",
    "steady": "= steady",
    "new": "[cyan]★ new[/]",
    "left": "[dim]✕ left[/]",
}


def _cells(row: TrendRow) -> tuple[str, ...]:
    from pulso.domain.money import format_brl
    from pulso.domain.ptbr import format_decimal

    def pos(value: int | None) -> str:
        return "—" if value is None else str(value)

    move = "—" if row.change is None else f"{row.change:+d}" if row.change else "0"
    velocity = (
        "—" if row.velocity_per_day is None else format_decimal(row.velocity_per_day, signed=True)
    )
    price = "—" if row.price_now is None else format_brl(row.price_now)
    return (
        pos(row.position_now),
        pos(row.position_before),
        move,
        velocity,
        row.title,
        price,
        _STATUS_STYLE[row.status],
    )
