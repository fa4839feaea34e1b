"""Retention with a fixed clock: store rows older than the cutoff go (on both backends),
newer ones and tables without a rule stay; bad periods are refused clearly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.protocol import Store
from pulso.store.retention import DurationError, parse_keep, trim_store
from pulso.store.tables import (
    ALERTS,
    DEADLETTER,
    ETL_RUNS,
    PAYMENT_MINUTES,
    PAYMENTS,
    RAW_EVENTS,
    ColumnBatch,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)
# Ages in days: two older than 90 days, one exactly at the cutoff (kept), two newer.
AGES = [200, 91, 90, 10, 0]
OLD = 2

BACKENDS = ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    opened: Store
    if request.param == "duckdb":
        opened = DuckDBStore(tmp_path / "pulso.duckdb")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    opened.migrate()
    yield opened
    opened.close()


def cols(rows: list[dict[str, Any]]) -> ColumnBatch:
    return {name: [r[name] for r in rows] for name in rows[0]}


def fill(store: Store) -> None:
    times = [NOW - timedelta(days=d) for d in AGES]
    with store.transaction() as tx:
        tx.upsert(
            PAYMENTS,
            cols(
                [
                    {
                        "charge_id": f"c{i}",
                        "status": "pending",
                        "status_rank": 0,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for i, at in enumerate(times)
                ]
                # no created_at (a confirmation seen first): aged by updated_at
                + [
                    {
                        "charge_id": "orphan",
                        "status": "confirmed",
                        "status_rank": 3,
                        "created_at": None,
                        "updated_at": NOW - timedelta(days=300),
                    }
                ]
            ),
        )
        tx.insert_new(
            RAW_EVENTS,
            cols(
                [
                    {
                        "event_id": uuid.uuid4(),
                        "type": "pix.charge.created",
                        "topic": "payments",
                        "occurred_at": at,
                        "source": "t",
                        "key": "k",
                        "payload": b"{}",
                        "received_at": NOW,  # received late: age is the event's time
                    }
                    for at in times
                ]
            ),
        )
        tx.upsert(
            PAYMENT_MINUTES,
            cols(
                [
                    {
                        "store_id": "LJ-0001",
                        "minute": at,
                        "charges": 1,
                        "confirmed": 0,
                        "amount_cents": 100,
                        "confirmed_cents": 0,
                        "confirmation_seconds_sum": 0.0,
                    }
                    for at in times
                ]
            ),
        )
        tx.insert_new(
            ALERTS,
            cols(
                [
                    {
                        "alert_id": f"a{i}",
                        "kind": "k",
                        "severity": "info",
                        "subject": "s",
                        "message": "m",
                        "raised_at": at,
                        "count": 1,
                        "details": {"i": i},
                    }
                    for i, at in enumerate(times)
                ]
            ),
        )
        tx.insert_new(
            DEADLETTER,
            cols(
                [
                    {
                        "id": f"d{i}",
                        "topic": "payments",
                        "partition": 0,
                        "offset": i,
                        "reason": "bad_json",
                        "detail": "",
                        "payload": b"x",
                        "received_at": at,
                    }
                    for i, at in enumerate(times)
                ]
            ),
        )
        tx.upsert(
            ETL_RUNS,
            cols(
                [
                    {
                        "run_id": "r1",
                        "source": "file:///old.csv",
                        "status": "loaded",
                        "rows_read": 1,
                        "rows_loaded": 1,
                        "rows_rejected": 0,
                        "rows_duplicate": 0,
                        "started_at": NOW - timedelta(days=400),
                        "finished_at": NOW - timedelta(days=400),
                        "duration_ms": 1,
                    }
                ]
            ),
        )
        tx.save_checkpoint("offsets/pipeline", b"x")


def count(store: Store, table: str) -> int:
    return int(store.query(f'SELECT count(*) FROM "{table}"')[0][0])


def test_trims_old_rows_in_every_time_keyed_table(store: Store) -> None:
    fill(store)
    dry = trim_store(store, CUTOFF, dry_run=True)
    by_table = {t.table: t.rows for t in dry.trimmed}
    assert by_table["payments"] == OLD + 1  # the orphan too
    assert {by_table[t] for t in ("raw_events", "payment_minutes", "alerts", "deadletter")} == {OLD}
    assert count(store, "payments") == len(AGES) + 1, "a dry run removed rows"

    done = trim_store(store, CUTOFF)
    assert {t.table: t.rows for t in done.trimmed} == by_table
    assert done.rows == sum(by_table.values())
    for table in ("raw_events", "payment_minutes", "alerts", "deadletter"):
        assert count(store, table) == len(AGES) - OLD, table
    left = sorted(r[0] for r in store.query("SELECT charge_id FROM payments"))
    assert left == ["c2", "c3", "c4"]
    # Kept whole, and said so: the ledger, the registry, the load-once record, state.
    assert {"pix_charges", "stores", "etl_runs", "checkpoints", "schema_migrations"} <= set(
        done.kept
    )
    assert count(store, "etl_runs") == 1 and count(store, "checkpoints") == 1

    again = trim_store(store, CUTOFF)
    assert again.rows == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_keep(text: str, expected: timedelta) -> None:
    assert parse_keep(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "90 days", "1.5d", "-3d", "3m", "0d", "9999999d"])
def test_parse_keep_refuses(text: str) -> None:
    with pytest.raises(DurationError, match=r"period"):
        parse_keep(text)


def test_naive_cutoff_is_refused(tmp_path: Path) -> None:
    from pulso.errors import StoreError

    store = DuckDBStore(tmp_path / "x.duckdb")
    try:
        store.migrate()
        with pytest.raises(StoreError, match="timezone-aware"):
            trim_store(store, datetime(2026, 1, 1))
    finally:
        store.close()


@pytest.mark.postgres
def test_a_partitioned_table_is_trimmed_and_backed_up_through_its_parent(
    postgres_url: str, tmp_path: Path
) -> None:
    from pulso.store.backup import backup
    from pulso.store.catalog import stored_tables

    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        with store.transaction() as tx:
            tx.execute("DROP TABLE raw_events")
            tx.execute(
                "CREATE TABLE raw_events (event_id UUID NOT NULL, type TEXT NOT NULL,"
                " topic TEXT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, source TEXT NOT NULL,"
                " key TEXT NOT NULL, payload BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL,"
                " PRIMARY KEY (event_id, occurred_at)) PARTITION BY RANGE (occurred_at)"
            )
            tx.execute(
                "CREATE TABLE raw_events_old PARTITION OF raw_events"
                " FOR VALUES FROM ('2020-01-01') TO ('2026-09-01')"
            )
            tx.execute(
                "CREATE TABLE raw_events_new PARTITION OF raw_events"
                " FOR VALUES FROM ('2026-09-01') TO ('2027-01-01')"
            )
            for age in AGES:
                tx.execute(
                    "INSERT INTO raw_events VALUES (%s, 't', 'payments', %s, 's', 'k', %s, %s)",
                    (uuid.uuid4(), NOW - timedelta(days=age), b"{}", NOW),
                )
        names = {t.name for t in stored_tables("postgresql", store.query)}
        assert "raw_events" in names and not names & {"raw_events_old", "raw_events_new"}
        done = trim_store(store, CUTOFF)
        raw = next(t for t in done.trimmed if t.table == "raw_events")
        assert (raw.rows, raw.method) == (OLD, "delete (partitioned)")
        assert count(store, "raw_events") == len(AGES) - OLD
        entries = {t.name: t.rows for t in backup(store, tmp_path / "bk").manifest.tables}
        assert entries["raw_events"] == len(AGES) - OLD
        assert "raw_events_new" not in entries
    finally:
        store.close()
