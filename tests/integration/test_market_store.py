"""Snapshots, history and top-N alerts in the store, on DuckDB and PostgreSQL; and the
``pulso market`` commands on the bundled offline data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from pulso.bus import open_bus
from pulso.cli import app
from pulso.config import Settings
from pulso.domain.events import Topic, decode_event
from pulso.domain.products import ProductSnapshot
from pulso.market.events import publish_snapshots
from pulso.market.history import load_snapshots, market_alerts, record_snapshot, sync_category
from pulso.market.trends import category_trends
from pulso.sources.mercadolivre_offline import offline_client, offline_rounds
from pulso.store import open_store
from pulso.store.protocol import Store

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CATEGORY = "MLB1051"


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""


@pytest.fixture
def store(store_url: str, settings_factory: Callable[..., Settings]) -> Iterator[Store]:
    opened = open_store(settings_factory(store_url=store_url))
    yield opened
    opened.close()


def ranking(order: str, at: datetime) -> list[ProductSnapshot]:
    return [
        ProductSnapshot(
            site="MLB",
            category_id=CATEGORY,
            product_id=f"MLB{ord(p)}",
            kind="ITEM" if n % 2 else "PRODUCT",
            position=n,
            title=f"Celular {p}",
            taken_at=at,
            price=Decimal("1299.90") + n,
            rating=4.5,
            available_quantity=10 * n,
            seller="241983636",
        )
        for n, p in enumerate(order, 1)
    ]


def alert_count(store: Store) -> int:
    return int(store.query("SELECT count(*) FROM alerts WHERE kind = 'market.top_n_entry'")[0][0])


def test_snapshots_round_trip_and_a_repeat_writes_nothing(store: Store) -> None:
    first = record_snapshot(store, CATEGORY, T0, ranking("ABCD", T0), top_n=3)
    again = record_snapshot(store, CATEGORY, T0, ranking("ABCD", T0), top_n=3)
    assert (first.new_rows, again.new_rows) == (4, 0)
    loaded = load_snapshots(store, since=T0, until=T0)
    assert loaded == ranking("ABCD", T0)  # exact prices, ratings, quantities, times
    assert loaded[0].price == Decimal("1300.90")


def test_history_is_kept(store: Store) -> None:
    for day, order in enumerate(("ABCD", "BACD", "BDAC")):
        at = T0 + timedelta(days=day)
        record_snapshot(store, CATEGORY, at, ranking(order, at))
    rows = load_snapshots(store, since=T0, until=T0 + timedelta(days=2))
    assert len(rows) == 12
    (report,) = category_trends(rows)
    assert report.snapshots == 3
    assert {r.product_id: r.change for r in report.rows} == {
        "MLB66": 1,  # B 2 → 1
        "MLB68": 2,  # D 4 → 2
        "MLB65": -2,  # A 1 → 3
        "MLB67": -1,  # C 3 → 4
    }
    only_last = load_snapshots(store, since=T0 + timedelta(days=2), until=T0 + timedelta(days=9))
    assert {s.taken_at for s in only_last} == {T0 + timedelta(days=2)}
    assert load_snapshots(store, since=T0, until=T0, category_ids=["MLB1648"]) == []


def test_a_top_n_alert_fires_once_per_entry(store: Store) -> None:
    days = [T0 + timedelta(days=n) for n in range(5)]
    # D: 4th (baseline), then 2nd (enters the top 3), stays 2nd, drops to 5th (C climbs
    # back in), then 1st again: a second entry
    orders = ["ABCD", "ADBC", "ADBC", "ABCED", "DABC"]
    raised = []
    for at, order in zip(days, orders, strict=True):
        result = record_snapshot(store, CATEGORY, at, ranking(order, at), top_n=3)
        raised.append([a.subject for a in result.alerts])
        repeat = record_snapshot(store, CATEGORY, at, ranking(order, at), top_n=3)
        assert repeat.alerts == () and repeat.new_rows == 0  # the same snapshot: no new alert
    assert raised == [[], ["MLB1051:MLB68"], [], ["MLB1051:MLB67"], ["MLB1051:MLB68"]]
    assert alert_count(store) == 3
    newest = market_alerts(store)[0]
    assert newest[0] == days[4]
    assert "entrou no top 3 da categoria MLB1051 — agora em 1º lugar (antes 5º)" in newest[2]
    stored = store.query("SELECT severity, details FROM alerts ORDER BY raised_at")
    assert stored[0][0] == "warning"
    details = stored[0][1]
    assert isinstance(details, dict) and details["position"] == "2"


def test_syncing_the_offline_catalogue(store: Store) -> None:
    base = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    for index, days_ago in enumerate(offline_rounds()):
        with offline_client(index) as client:
            result = sync_category(
                client, store, CATEGORY, base - timedelta(days=days_ago), top_n=5
            )
        assert result.products == 20
    rows = load_snapshots(store, since=base - timedelta(days=7), until=base)
    (report,) = category_trends(rows)
    assert report.snapshots == len(offline_rounds()) == 5
    assert report.with_status("new") and report.with_status("left") and report.rising
    assert {s.kind for s in rows} == {"ITEM", "PRODUCT"}
    assert all(s.price is not None and s.price > 0 for s in rows)
    assert alert_count(store) > 0


def test_market_commands_offline(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    if store_url:
        monkeypatch.setenv("PULSO_STORE_URL", store_url)
    monkeypatch.setenv("PULSO_DATA_DIR", "data")
    monkeypatch.setenv("PULSO_MERCADOLIVRE_OFFLINE", "true")
    runner = CliRunner()
    first = runner.invoke(
        app,
        ["market", "sync", "--categories", "MLB1051,MLB1648", "--watch-top", "5", "--publish"],
    )
    assert first.exit_code == 0, first.output
    assert "200 product.snapshot events published" in first.output  # 5 rounds × 2 × 20
    assert first.output.count("20 products, 20 new rows") == 10  # 5 rounds × 2 categories
    assert "entrou no top 5" in first.output
    again = runner.invoke(
        app,
        ["market", "sync", "--categories", "MLB1051,MLB1648", "--watch-top", "5", "--publish"],
    )
    assert again.exit_code == 0, again.output
    assert "0 product.snapshot events published" in again.output
    assert "0 top-5 alerts raised" in again.output and "already stored" in again.output
    trends = runner.invoke(app, ["market", "trends", "--category", "MLB1648", "--limit", "30"])
    assert trends.exit_code == 0, trends.output
    assert "MLB1648: 5 snapshots" in trends.output and "new" in trends.output
    assert "MLB1051" not in trends.output
    alerts = runner.invoke(app, ["market", "alerts", "--limit", "2"])
    assert alerts.exit_code == 0 and alerts.output.count("Mercado Livre: «") == 2


def test_published_snapshots_decode_and_keep_their_ids(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    snapshots = ranking("ABC", T0)
    bus = open_bus(settings)
    try:
        publish_snapshots(bus, snapshots)
        publish_snapshots(bus, snapshots)  # a repeat: the same ids
        consumer = bus.consumer("test", [Topic.PRODUCTS])
        messages = consumer.poll_batch(100, 5.0)
        consumer.close()
    finally:
        bus.close()
    events = [decode_event(m.value) for m in messages]
    assert len(events) == 6 and {e.type for e in events} == {"product.snapshot"}
    assert len({e.event_id for e in events}) == 3
    assert {m.key for m in messages} == {CATEGORY.encode()}
    by_product = {e.data.product_id: e.data for e in events}
    assert by_product["MLB65"] == snapshots[0]


def test_market_commands_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSO_DATA_DIR", "data")
    runner = CliRunner()
    online = runner.invoke(app, ["market", "sync", "--categories", "MLB1051"])
    assert online.exit_code == 1
    assert "PULSO_MERCADOLIVRE_OFFLINE=true" in online.output
    bad = runner.invoke(app, ["market", "sync", "--offline", "--categories", "celulares"])
    assert bad.exit_code == 1 and "not a category id" in bad.output
    empty = runner.invoke(app, ["market", "trends"])
    assert empty.exit_code == 1 and "pulso market sync" in empty.output
