"""Orders from a generated CSV, published on the bus (local log and Kafka's protocol on the
librdkafka mock cluster) and written by the pipeline: one row per order with its latest
status, however many versions the file held; publishing the file again changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pulso.bus import open_bus
from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.events import Topic
from pulso.pipeline.factory import build_runner
from pulso.sources.orders_csv import ReadStats, publish_orders
from pulso.sources.orders_generator import OrdersConfig, orders_csv_bytes
from pulso.store import open_store
from pulso.store.protocol import Store

CONFIG = OrdersConfig(start=date(2026, 10, 1), days=20, rows=3_000, seed=11)

PROFILES = [
    pytest.param(("local", "duckdb"), id="embedded"),
    pytest.param(
        ("kafka", "postgresql"), id="cluster", marks=[pytest.mark.postgres, pytest.mark.kafka]
    ),
]


@pytest.fixture(params=PROFILES)
def env(
    request: pytest.FixtureRequest, settings_factory: Any
) -> Iterator[tuple[Settings, Bus, Store]]:
    bus_kind, store_kind = request.param
    overrides: dict[str, Any] = {"batch_size": 700, "batch_timeout_ms": 50}
    if store_kind == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    if bus_kind == "kafka":
        overrides["bus_url"] = f"kafka://{request.getfixturevalue('kafka_cluster')}"
        overrides["kafka_session_timeout_s"] = 3
    settings = settings_factory(**overrides)
    bus, store = open_bus(settings), open_store(settings)
    yield settings, bus, store
    store.close()
    bus.close()


@pytest.fixture
def csv_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The file, and the final status of each of its orders."""
    data, _ = orders_csv_bytes(CONFIG)
    path = tmp_path / "pedidos.csv"
    path.write_bytes(data)
    final = {}
    for line in data.decode().splitlines()[1:]:
        fields = line.split(",")
        final[fields[0]] = fields[-1]
    return path, final


def publish(bus: Bus, path: Path) -> ReadStats:
    stats = ReadStats()
    acknowledged: list[int] = []
    published = publish_orders(bus, path, Topic.ORDERS, stats, on_batch=acknowledged.append)
    assert published == sum(acknowledged) == stats.good
    return stats


def drain(settings: Settings, bus: Bus, store: Store, expected_messages: int) -> Any:
    runner = build_runner(settings, bus, store)
    try:
        return runner.run(stop=lambda s: s.messages >= expected_messages)
    finally:
        runner.close()


def test_orders_land_once_with_their_latest_status(
    env: tuple[Settings, Bus, Store], csv_file: tuple[Path, dict[str, str]]
) -> None:
    settings, bus, store = env
    path, final = csv_file
    stats = publish(bus, path)
    assert (stats.good, stats.bad) == (CONFIG.rows, 0)
    run = drain(settings, bus, store, CONFIG.rows)
    assert run.new_events == CONFIG.rows and not run.dead_letters
    stored = dict(store.query("SELECT order_id, status FROM orders"))
    assert len(stored) == CONFIG.orders == len(final) < CONFIG.rows
    assert stored == final
    [(paid_cents,)] = store.query("SELECT sum(total_cents) FROM orders WHERE status = 'Pago'")
    assert int(paid_cents) == orders_csv_bytes(CONFIG)[1].paid_total_cents

    # The same file again: the same event ids, nothing new, nothing changed.
    publish(bus, path)
    again = drain(settings, bus, store, CONFIG.rows)
    assert (again.messages, again.new_events) == (CONFIG.rows, 0)
    assert dict(store.query("SELECT order_id, status FROM orders")) == final


def test_a_bad_event_on_the_orders_topic_is_a_dead_letter(
    env: tuple[Settings, Bus, Store],
) -> None:
    settings, bus, store = env
    bus.publish(Topic.ORDERS, [(b"x", b'{"not": "an event"}')])
    run = drain(settings, bus, store, 1)
    assert run.dead_letters == {"bad_envelope": 1}
    assert store.query("SELECT count(*) FROM orders") == [(0,)]
