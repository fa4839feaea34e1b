"""Time partitions on the real PostgreSQL: migration v7 on an empty and on a filled store,
rows landing in their day's partition (far dates in the default one), partitions created by
the write path and by ensure_partitions, retention dropping whole partitions, backups."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pulso.store import partitions
from pulso.store.postgres import PostgresStore
from pulso.store.retention import trim_store
from pulso.store.schema import MIGRATIONS, apply_migrations
from pulso.store.tables import (
    PAYMENT_MINUTES,
    PAYMENTS,
    RAW_EVENTS,
    STREAM_WINDOWS,
    ColumnBatch,
)

pytestmark = pytest.mark.postgres

BEFORE_V7 = [m for m in MIGRATIONS if m.version < 7]
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
TODAY = NOW.date()
FAR_PAST = datetime(2001, 3, 4, 5, 6, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 2, 3, 4, tzinfo=UTC)
# Days ago of the filled store's rows: within the horizon (own partitions) and far ones.
AGES = [200, 95, 91, 90, 30, 10, 1, 0]


def columns(rows: list[dict[str, Any]]) -> ColumnBatch:
    return {name: [r[name] for r in rows] for name in rows[0]}


def raw_event(at: datetime, event_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or uuid.uuid4(),
        "type": "payment.created",
        "topic": "payments",
        "occurred_at": at,
        "source": "test",
        "key": "k",
        "payload": b'{"x": 1}',
        "received_at": NOW,
    }


def minute_row(store_id: str, at: datetime, cents: int) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "minute": at,
        "city": "Recife",
        "uf": "PE",
        "charges": 2,
        "confirmed": 1,
        "amount_cents": cents,
        "confirmed_cents": cents // 2,
        "confirmation_seconds_sum": 3.5,
    }


def window_row(start: datetime, cents: int, minutes: int = 5) -> dict[str, Any]:
    return {
        "kind": "tumbling",
        "dimension": "store",
        "key": "loja-1",
        "window_start": start,
        "window_end": start + timedelta(minutes=minutes),
        "events": 3,
        "amount_cents": cents,
        "mean_cents": (Decimal(cents) / 3).quantize(Decimal("0.01")),
        "max_cents": cents,
        "final": True,
    }


def payment_row(charge_id: str, at: datetime, cents: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
    row.update(
        charge_id=charge_id,
        store_id="loja-1",
        city="Recife",
        uf="PE",
        amount_cents=cents,
        paid_cents=cents,
        status="confirmed",
        status_rank=3,
        created_at=at,
        updated_at=at,
    )
    return row


def filled_times() -> list[datetime]:
    return [NOW - timedelta(days=a) for a in AGES] + [FAR_PAST, FAR_FUTURE]


def fill(store: PostgresStore) -> None:
    times = filled_times()
    with store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, columns([raw_event(t) for t in times for _ in range(3)]))
        tx.upsert(
            PAYMENT_MINUTES,
            columns([minute_row(f"loja-{i}", t, 100 + i) for i, t in enumerate(times)]),
        )
        tx.upsert(STREAM_WINDOWS, columns([window_row(t, 300 + i) for i, t in enumerate(times)]))
        tx.upsert(
            PAYMENTS, columns([payment_row(f"c{i}", t, 1000 + i) for i, t in enumerate(times)])
        )


FACTS = {
    "raw_events": "count(*), count(DISTINCT event_id), sum(extract(epoch FROM occurred_at))",
    "payment_minutes": "count(*), sum(amount_cents), sum(confirmed_cents)",
    "stream_windows": "count(*), sum(amount_cents), sum(mean_cents)",
    "payments": "count(*), sum(amount_cents)",
}


def facts(store: PostgresStore) -> dict[str, tuple[Any, ...]]:
    return {t: store.query(f"SELECT {sql} FROM {t}")[0] for t, sql in FACTS.items()}


def relkind(store: PostgresStore, table: str) -> str:
    rows = store.query(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(quote_ident(%s))", (table,)
    )
    return str(rows[0][0])


def where_rows_are(store: PostgresStore, table: str, column: str) -> dict[datetime, str]:
    rows = store.query(f"SELECT {column}, tableoid::regclass::text FROM {table}")
    return {r[0]: str(r[1]) for r in rows}


@pytest.fixture
def v6_store(postgres_url: str) -> Iterator[PostgresStore]:
    """A store at the last version before 7 (plain tables), not migrated further yet."""
    store = PostgresStore(postgres_url)
    try:
        apply_migrations(store, BEFORE_V7)
        yield store
    finally:
        store.close()


def test_an_empty_store_gets_partitions_from_today_on_and_a_default(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url)
    try:
        assert 7 in store.migrate()
        for spec in partitions.SPECS:
            assert relkind(store, spec.name) == "p"
            parts = partitions.list_partitions(store.query, spec.name)
            days = [p.lower.date() for p in parts if p.lower is not None]
            assert days == [TODAY + timedelta(days=i) for i in range(partitions.AHEAD_DAYS + 1)]
            assert parts[-1].is_default and parts[-1].name == f"{spec.name}_default"
        assert relkind(store, "payments") == "r"  # on purpose: see partitions.py
        assert store.migrate() == []  # once
        facts_ = partitions.describe(store)
        assert facts_["partitioning"].startswith("native PostgreSQL range partitions")
        assert "not available" in facts_["timescaledb"]
        assert "8 partitions" in facts_["raw_events"]
        assert "0 rows in the default partition" in facts_["raw_events"]
        assert facts_["payments"].startswith("not partitioned")
    finally:
        store.close()


def test_a_filled_store_is_converted_with_every_row_and_sum_kept(
    v6_store: PostgresStore,
) -> None:
    fill(v6_store)
    before = facts(v6_store)
    assert relkind(v6_store, "raw_events") == "r"
    assert v6_store.migrate() == [m.version for m in MIGRATIONS if m.version >= 7]
    assert facts(v6_store) == before
    placed = where_rows_are(v6_store, "raw_events", "occurred_at")
    for age in AGES:
        at = NOW - timedelta(days=age)
        assert placed[at] == f"raw_events_p{at:%Y%m%d}"
    assert placed[FAR_PAST] == placed[FAR_FUTURE] == "raw_events_default"
    windows = where_rows_are(v6_store, "stream_windows", "window_start")
    assert windows[NOW - timedelta(days=30)] == f"stream_windows_p{NOW - timedelta(days=30):%Y%m%d}"
    # The old tables are gone, the indexes are on the new ones.
    assert not v6_store.query("SELECT 1 FROM pg_class WHERE relname LIKE '%%_plain'")
    indexes = {
        str(r[0])
        for r in v6_store.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
    }
    assert {"ix_raw_events_occurred_at", "ix_stream_windows_window_end"} <= indexes
    assert "ix_payments_city_created_at" in indexes
    keys = v6_store.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass('raw_events') AND contype = 'p'"
    )
    assert keys == [("PRIMARY KEY (event_id, occurred_at)",)]


def test_writes_stay_idempotent_and_land_in_their_partitions(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        events = [raw_event(t) for t in (NOW, NOW + timedelta(days=3), FAR_PAST, FAR_FUTURE)]
        with store.transaction() as tx:
            assert tx.insert_new(RAW_EVENTS, columns(events)) == 4
        with store.transaction() as tx:  # the same events again: a replay
            assert tx.insert_new(RAW_EVENTS, columns(events)) == 0
        placed = where_rows_are(store, "raw_events", "occurred_at")
        assert placed[NOW] == f"raw_events_p{TODAY:%Y%m%d}"
        assert placed[NOW + timedelta(days=3)] == f"raw_events_p{TODAY + timedelta(days=3):%Y%m%d}"
        assert placed[FAR_PAST] == placed[FAR_FUTURE] == "raw_events_default"
        # payment_minutes: an upsert replaces the minute's counts, never adds a second row.
        for cents in (100, 250):
            with store.transaction() as tx:
                tx.upsert(PAYMENT_MINUTES, columns([minute_row("loja-1", NOW, cents)]))
        assert store.query("SELECT count(*), sum(amount_cents) FROM payment_minutes") == [(1, 250)]
        # No partition was created for the far dates.
        names = [p.name for p in partitions.list_partitions(store.query, "raw_events")]
        assert not any(n.startswith(("raw_events_p2001", "raw_events_p2100")) for n in names)
    finally:
        store.close()


def test_the_write_path_creates_the_days_it_meets(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        old, ahead = NOW - timedelta(days=20), NOW + timedelta(days=12)
        with store.transaction() as tx:
            tx.insert_new(RAW_EVENTS, columns([raw_event(old), raw_event(ahead)]))
            tx.upsert(PAYMENT_MINUTES, columns([minute_row("loja-1", ahead, 10)]))
        placed = where_rows_are(store, "raw_events", "occurred_at")
        assert placed[old] == f"raw_events_p{old:%Y%m%d}"
        assert placed[ahead] == f"raw_events_p{ahead:%Y%m%d}"
        minutes = where_rows_are(store, "payment_minutes", "minute")
        assert minutes[ahead] == f"payment_minutes_p{ahead:%Y%m%d}"
        # Only the days met (and today's week ahead): no empty partitions for the gap.
        days = {
            p.lower.date()
            for p in partitions.list_partitions(store.query, "raw_events")
            if p.lower is not None
        }
        week = {TODAY + timedelta(days=i) for i in range(partitions.AHEAD_DAYS + 1)}
        assert days == week | {old.date(), ahead.date()}
        # A second batch on those days is covered: nothing more is created.
        with store.transaction() as tx:
            tx.insert_new(RAW_EVENTS, columns([raw_event(old + timedelta(hours=1))]))
        assert len(partitions.list_partitions(store.query, "raw_events")) == len(days) + 1
        assert store.query("SELECT count(*) FROM raw_events_default") == [(0,)]
    finally:
        store.close()


def test_ensure_partitions_moves_rows_out_of_the_default_partition(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        day = NOW - timedelta(days=50)
        with store.transaction() as tx:  # behind the write path's back: lands in the default
            tx.execute(
                "INSERT INTO raw_events VALUES (%s, 't', 'payments', %s, 's', 'k', %s, %s)",
                (uuid.uuid4(), day, b"{}", NOW),
            )
        assert where_rows_are(store, "raw_events", "occurred_at")[day] == "raw_events_default"
        created = partitions.ensure_partitions(store)
        assert created == [f"raw_events_p{day:%Y%m%d}"]
        assert where_rows_are(store, "raw_events", "occurred_at")[day] == created[0]
        assert partitions.ensure_partitions(store) == []  # nothing left to do
        created = partitions.ensure_partitions(store, TODAY + timedelta(days=9))
        assert created == [
            f"{s.name}_p{TODAY + timedelta(days=d):%Y%m%d}"
            for s in partitions.SPECS
            for d in (8, 9)
        ]
    finally:
        store.close()


def test_two_processes_ensuring_at_once_do_not_collide(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(2)]
    try:
        stores[0].migrate()
        errors: list[BaseException] = []
        results: list[list[str]] = []

        def run(store: PostgresStore) -> None:
            try:
                results.append(partitions.ensure_partitions(store, TODAY + timedelta(days=40)))
            except BaseException as e:  # pragma: no cover - what the test looks for
                errors.append(e)

        threads = [threading.Thread(target=run, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(len(r) for r in results) == [0, 3 * 33]
    finally:
        for s in stores:
            s.close()


def test_retention_drops_whole_partitions_and_deletes_in_the_boundary_one(
    v6_store: PostgresStore,
) -> None:
    fill(v6_store)
    v6_store.migrate()
    cutoff = NOW - timedelta(days=90)  # noon: its day's partition straddles it
    with v6_store.transaction() as tx:  # one row later than the cutoff in the boundary day
        tx.insert_new(RAW_EVENTS, columns([raw_event(cutoff + timedelta(hours=1))]))
    old_rows = 3 * 3 + 3  # ages 200, 95 and 91 days (3 events each), FAR_PAST
    dry = trim_store(v6_store, cutoff, dry_run=True)
    raw = next(t for t in dry.trimmed if t.table == "raw_events")
    assert (raw.rows, raw.method) == (old_rows, "drop 3 partitions + delete")
    assert v6_store.query("SELECT count(*) FROM raw_events WHERE occurred_at < %s", (cutoff,)) == [
        (old_rows,)
    ]
    done = trim_store(v6_store, cutoff)
    raw = next(t for t in done.trimmed if t.table == "raw_events")
    assert (raw.rows, raw.method) == (old_rows, "drop 3 partitions + delete")
    names = {p.name for p in partitions.list_partitions(v6_store.query, "raw_events")}
    for age in (200, 95, 91):
        assert f"raw_events_p{NOW - timedelta(days=age):%Y%m%d}" not in names
    boundary = f"raw_events_p{cutoff:%Y%m%d}"
    assert boundary in names
    assert v6_store.query(f"SELECT count(*) FROM {boundary}") == [(4,)]  # 3 at the cutoff + 1
    assert v6_store.query("SELECT count(*) FROM raw_events WHERE occurred_at < %s", (cutoff,)) == [
        (0,)
    ]
    # stream_windows: partitioned by window_start, trimmed by window_end.
    windows = next(t for t in done.trimmed if t.table == "stream_windows")
    assert windows.rows == 4 and windows.method == "drop 3 partitions + delete"
    assert v6_store.query("SELECT count(*) FROM stream_windows") == [(len(filled_times()) - 4,)]


def test_a_window_that_ends_after_the_cutoff_keeps_its_partition(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        cutoff = datetime.combine(TODAY - timedelta(days=60), datetime.min.time(), UTC)
        late_start = cutoff - timedelta(minutes=2)  # ends 3 minutes after the cutoff
        with store.transaction() as tx:
            tx.upsert(
                STREAM_WINDOWS,
                columns(
                    [window_row(late_start, 10), window_row(late_start - timedelta(hours=1), 20)]
                ),
            )
        done = trim_store(store, cutoff)
        windows = next(t for t in done.trimmed if t.table == "stream_windows")
        assert (windows.rows, windows.method) == (1, "delete (partitioned)")
        assert store.query("SELECT amount_cents FROM stream_windows") == [(10,)]
    finally:
        store.close()


def test_backup_and_restore_of_a_partitioned_store(
    v6_store: PostgresStore, postgres_url: str, tmp_path: Path
) -> None:
    from pulso.store.backup import backup, restore

    fill(v6_store)
    v6_store.migrate()
    before = facts(v6_store)
    made = backup(v6_store, tmp_path / "bk")
    entries = {t.name for t in made.manifest.tables}
    assert "raw_events" in entries and not any("_p2" in n or "_default" in n for n in entries)
    # A second schema: the fixture's URL with another search_path.
    import psycopg

    other = f"t_{uuid.uuid4().hex[:12]}"
    base = postgres_url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{other}"')
        try:
            target = PostgresStore(f"{base}?options=-csearch_path%3D{other}")
            try:
                target.migrate()
                restore(target, tmp_path / "bk")
                assert facts(target) == before
                partitions.ensure_partitions(target)  # what the next start does
                placed = where_rows_are(target, "raw_events", "occurred_at")
                at = NOW - timedelta(days=30)
                assert placed[at] == f"raw_events_p{at:%Y%m%d}"
                assert placed[FAR_PAST] == "raw_events_default"
                assert facts(target) == before
            finally:
                target.close()
        finally:
            admin.execute(f'DROP SCHEMA "{other}" CASCADE')


def test_dashboard_range_queries_prune_partitions(v6_store: PostgresStore) -> None:
    fill(v6_store)
    v6_store.migrate()
    day = date.today()
    plan = "\n".join(
        str(r[0])
        for r in v6_store.query(
            "EXPLAIN SELECT count(*) FROM raw_events WHERE occurred_at >= %s AND occurred_at < %s",
            (
                datetime.combine(day, datetime.min.time(), UTC),
                datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
            ),
        )
    )
    assert f"raw_events_p{day:%Y%m%d}" in plan
    assert "raw_events_default" not in plan and "raw_events_p2001" not in plan


def test_the_dashboard_city_filter_has_an_index(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        with store.transaction() as tx:
            tx.execute("SET LOCAL enable_seqscan = off")
            plan = tx.fetch(
                "EXPLAIN SELECT count(*), sum(paid_cents) FROM payments WHERE status = 'confirmed'"
                " AND created_at >= %s AND created_at < %s AND city = %s",
                (NOW - timedelta(days=7), NOW, "Recife"),
            )
        assert "ix_payments_city_created_at" in "\n".join(str(r[0]) for r in plan)
    finally:
        store.close()


# TimescaleDB cannot be installed here: its functions are stood in for by stubs with the
# documented signatures (TimescaleDB 2.x API reference), so the statements pulso would send
# are parsed, bound by name and run against the real server.
_TIMESCALE_STUBS = [
    "CREATE TABLE ts_calls (call text)",
    """CREATE FUNCTION create_hypertable(relation regclass, time_column_name name,
        partitioning_column name = NULL, number_partitions integer = NULL,
        associated_schema_name name = NULL, associated_table_prefix name = NULL,
        chunk_time_interval interval = NULL, create_default_indexes boolean = true,
        if_not_exists boolean = false, partitioning_func regproc = NULL,
        migrate_data boolean = false)
      RETURNS integer LANGUAGE sql AS $$
        INSERT INTO ts_calls VALUES (format('create_hypertable %s %s %s %s %s',
          relation, time_column_name, chunk_time_interval, migrate_data, if_not_exists))
        RETURNING 1 $$""",
    """CREATE FUNCTION add_retention_policy(relation regclass, drop_after interval = NULL,
        if_not_exists boolean = false) RETURNS integer LANGUAGE sql AS $$
        INSERT INTO ts_calls VALUES (format('add_retention_policy %s %s', relation, drop_after))
        RETURNING 1 $$""",
    """CREATE FUNCTION remove_retention_policy(relation regclass, if_exists boolean = false)
      RETURNS void LANGUAGE sql AS $$
        INSERT INTO ts_calls VALUES (format('remove_retention_policy %s %s', relation, if_exists))
      $$""",
    """CREATE FUNCTION drop_chunks(relation regclass, older_than timestamptz = NULL,
        newer_than timestamptz = NULL, verbose boolean = false) RETURNS SETOF text
      LANGUAGE sql AS $$
        INSERT INTO ts_calls VALUES (format('drop_chunks %s %s', relation, older_than))
        RETURNING 'chunk' $$""",
]


def test_the_timescaledb_statements_run_against_stubs_of_its_api(
    v6_store: PostgresStore,
) -> None:
    with v6_store.transaction() as tx:
        for statement in _TIMESCALE_STUBS:
            tx.execute(statement.replace("%", "%%"))
        pk = tx.fetch(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('raw_events')"
            " AND contype = 'p'"
        )[0][0]
        for spec in partitions.SPECS:
            for statement in partitions.hypertable_sql(spec, str(pk)):
                tx.execute(statement)
        for statement in partitions.retention_policy_sql("raw_events", timedelta(days=90)):
            tx.execute(statement)
        cutoff = datetime(2026, 8, 26, 12, tzinfo=UTC)
        assert tx.fetch(partitions.drop_chunks_sql("raw_events"), (cutoff,)) == [(1,)]
        calls = [str(r[0]) for r in tx.fetch("SELECT call FROM ts_calls")]
    assert calls == [
        "create_hypertable raw_events occurred_at 1 day t t",
        "create_hypertable payment_minutes minute 1 day t t",
        "create_hypertable stream_windows window_start 1 day t t",
        "remove_retention_policy raw_events t",
        "add_retention_policy raw_events 2160:00:00",
        "drop_chunks raw_events 2026-08-26 12:00:00+00",
    ]
    keys = v6_store.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass('raw_events') AND contype = 'p'"
    )
    assert keys == [("PRIMARY KEY (event_id, occurred_at)",)]
    # Where TimescaleDB is absent the detection says so and nothing is a hypertable.
    assert partitions.timescaledb_state(v6_store.query) == (None, None)
    assert partitions.hypertables(v6_store.query) == set()
