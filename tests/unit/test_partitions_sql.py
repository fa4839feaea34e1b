"""The SQL of time partitioning: migration v7 (nothing on DuckDB), the TimescaleDB statements
(which cannot run here: no TimescaleDB on this machine), bounds and the write-path check."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pulso.store import partitions
from pulso.store.postgres import _PartitionWatch
from pulso.store.schema import MIGRATIONS
from pulso.store.sql import insert_new_sql, upsert_sql
from pulso.store.tables import PAYMENT_MINUTES, PAYMENTS, RAW_EVENTS, STREAM_WINDOWS


def test_v7_is_postgresql_only_and_last_in_order() -> None:
    v7 = next(m for m in MIGRATIONS if m.version == 7)
    assert v7.statements("duckdb") == []
    statements = v7.statements("postgresql")
    assert statements[0].startswith("DO $pulso$") and "timescaledb" in statements[0]
    converted = [s for s in statements if "PARTITION BY RANGE" in s]
    assert len(converted) == 3
    assert 'PARTITION BY RANGE ("occurred_at")' in converted[0]
    assert 'PRIMARY KEY ("event_id", "occurred_at")' in converted[0]
    assert 'PARTITION BY RANGE ("minute")' in converted[1]
    assert 'PARTITION BY RANGE ("window_start")' in converted[2]
    assert not any("payments" in s and "PARTITION" in s for s in statements)
    # Every literal % is doubled: the statements go through execute(sql, ()).
    assert not any(re.search(r"(?<!%)%(?!%)", s) for s in statements)
    assert "%%I" in converted[0]
    assert any('"ix_payments_city_created_at"' in s for s in statements)


def test_the_conversion_keeps_a_partitioned_table_and_moves_every_row() -> None:
    sql = next(s for s in partitions.migration_v7("postgresql") if "raw_events_plain" in s)
    assert "AND c.relkind = 'p') THEN\n    RETURN;" in sql
    assert 'ALTER TABLE "raw_events" RENAME TO "raw_events_plain"' in sql
    assert 'CREATE TABLE "raw_events_default" PARTITION OF "raw_events" DEFAULT' in sql
    assert 'INSERT INTO "raw_events" ("event_id", "type"' in sql
    assert 'DROP TABLE "raw_events_plain"' in sql
    assert f"INTERVAL '{partitions.HORIZON_DAYS} days'" in sql


def test_hypertable_sql_replaces_the_key_only_where_it_lacks_the_time() -> None:
    raw = partitions.BY_NAME["raw_events"]
    assert partitions.hypertable_sql(raw, "raw_events_pkey") == [
        'ALTER TABLE "raw_events" DROP CONSTRAINT "raw_events_pkey"',
        'ALTER TABLE "raw_events" ADD PRIMARY KEY ("event_id", "occurred_at")',
        "SELECT create_hypertable('raw_events', 'occurred_at', chunk_time_interval => "
        "INTERVAL '1 day', migrate_data => true, if_not_exists => true)",
    ]
    minutes = partitions.hypertable_sql(partitions.BY_NAME["payment_minutes"], "x")
    assert len(minutes) == 1 and "create_hypertable('payment_minutes', 'minute'" in minutes[0]
    # In the migration, as PL/pgSQL inside the TimescaleDB branch, quotes doubled.
    sql = next(s for s in partitions.migration_v7("postgresql") if "raw_events_plain" in s)
    assert "EXECUTE format(''ALTER TABLE %%I DROP CONSTRAINT %%I'', ''raw_events'', _pk)" not in sql
    assert "EXECUTE format('ALTER TABLE %%I DROP CONSTRAINT %%I', 'raw_events', _pk);" in sql
    assert "EXECUTE 'SELECT create_hypertable(''raw_events'', ''occurred_at''" in sql


def test_retention_policy_and_drop_chunks_sql() -> None:
    assert partitions.retention_policy_sql("raw_events", timedelta(days=90)) == [
        "SELECT remove_retention_policy('raw_events', if_exists => true)",
        "SELECT add_retention_policy('raw_events', drop_after => INTERVAL '7776000 seconds')",
    ]
    assert partitions.drop_chunks_sql("payment_minutes") == (
        "SELECT count(*) FROM drop_chunks('payment_minutes', older_than => %s::timestamptz)"
    )


def test_the_postgresql_key_of_raw_events_holds_its_time() -> None:
    spec = partitions.BY_NAME["raw_events"]
    assert spec.pg_table.key == ("event_id", "occurred_at")
    assert spec.pg_table.columns == RAW_EVENTS.columns
    assert RAW_EVENTS.key == ("event_id",)  # DuckDB and the spec are unchanged
    sql = insert_new_sql(spec.pg_table, RAW_EVENTS.column_names, "s")
    assert sql.endswith('ON CONFLICT ("event_id", "occurred_at") DO NOTHING')
    for table in (PAYMENT_MINUTES, STREAM_WINDOWS):
        assert partitions.BY_NAME[table.name].pg_table is table
    assert "payments" not in partitions.BY_NAME
    assert 'ON CONFLICT ("charge_id")' in upsert_sql(PAYMENTS, PAYMENTS.column_names, "s")


def test_partition_names_and_bounds() -> None:
    spec = partitions.BY_NAME["payment_minutes"]
    assert spec.partition(date(2026, 11, 24)) == "payment_minutes_p20261124"
    assert spec.default == "payment_minutes_default"
    assert partitions.day_bound(date(2026, 1, 2)) == "2026-01-02 00:00:00+00"
    lo, hi = partitions.parse_bound(
        "FOR VALUES FROM ('2026-11-24 00:00:00+00') TO ('2026-11-25 00:00:00+00')"
    ) or (None, None)
    assert lo == datetime(2026, 11, 24, tzinfo=UTC) and hi == datetime(2026, 11, 25, tzinfo=UTC)
    assert partitions.parse_bound("DEFAULT") is None
    assert partitions.parse_bound("FOR VALUES FROM ('2026-11-24') TO ('2026-11-25')") == (
        datetime(2026, 11, 24, tzinfo=UTC),
        datetime(2026, 11, 25, tzinfo=UTC),
    )


def test_the_write_path_check_ignores_covered_and_far_days() -> None:
    watch = _PartitionWatch()
    now = datetime.now(UTC)
    assert watch.uncovered([now]) == set()  # not partitioned: nothing to watch
    watch.covered = (now - timedelta(days=1), now + timedelta(days=7))
    assert watch.uncovered([now, now + timedelta(days=6), None]) == set()
    assert watch.uncovered([]) == set() and watch.uncovered([None]) == set()
    far = [datetime(2001, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)]
    assert watch.uncovered([*far, now]) == set()  # far days stay in the default partition
    old = now - timedelta(days=20)
    watch.days = {now.date()}
    assert watch.uncovered([*far, now, old]) == {old.date()}  # only the days met
    watch.days.add(old.date())
    assert watch.uncovered([*far, now, old]) == set()  # a partition exists for it
    micros = [int((t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6) for t in far]
    ahead = now + timedelta(days=10)
    micros.append(int((ahead - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6))
    assert watch.uncovered(micros) == {ahead.date()}


@pytest.mark.parametrize("table", ["payments", "alerts"])
def test_the_tables_left_plain_say_why(table: str) -> None:
    assert partitions.NOT_PARTITIONED[table]


def test_duckdb_has_no_partitions_and_says_so(tmp_path: Path) -> None:
    from pulso.store.duckdb import DuckDBStore

    store = DuckDBStore(tmp_path / "p.duckdb")
    try:
        store.migrate()
        assert partitions.ensure_partitions(store) == []
        assert partitions.covered_range(store) is None
        assert partitions.describe(store) == {
            "partitioning": "none: DuckDB prunes by its zone maps (PostgreSQL only)"
        }
    finally:
        store.close()
