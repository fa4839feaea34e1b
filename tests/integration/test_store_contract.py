"""One contract, two backends: every test here runs on DuckDB and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pulso.errors import StoreError, StoreUnavailableError
from pulso.store import Store, open_store
from pulso.store.duckdb import PROBE_MIN_ROWS, DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.schema import MIGRATIONS, Migration, apply_migrations, create_table_sql
from pulso.store.tables import PAYMENTS, RAW_EVENTS, TABLES, Column, ColumnBatch, Table

SAO_PAULO = timezone(timedelta(hours=-3))
T0 = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)

BACKENDS = ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "duckdb":
        return DuckDBStore(tmp_path / "store" / "pulso.duckdb")
    return PostgresStore(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store whose schema has not been migrated yet."""
    store = _open(request.param, request, tmp_path)
    yield store
    store.close()


@pytest.fixture
def store(fresh_store: Store) -> Store:
    fresh_store.migrate()
    return fresh_store


def _create(store: Store, table: Table) -> None:
    with store.transaction() as tx:
        tx.execute(create_table_sql(table, store.dialect))


def _raw(count: int, payload: bytes = b"{}", ids: list[uuid.UUID] | None = None) -> ColumnBatch:
    ids = ids or [uuid.uuid4() for _ in range(count)]
    return {
        "event_id": ids,
        "type": ["pix.charge.created"] * len(ids),
        "topic": ["payments"] * len(ids),
        "occurred_at": [T0] * len(ids),
        "source": ["test"] * len(ids),
        "key": [f"store-{i}" for i in range(len(ids))],
        "payload": [payload] * len(ids),
        "received_at": [T0] * len(ids),
    }


def _payment(charge_id: str, **values: Any) -> ColumnBatch:
    row: ColumnBatch = {
        "charge_id": [charge_id],
        "status": ["pending"],
        "status_rank": [0],
        "updated_at": [T0],
    }
    row.update({name: [value] for name, value in values.items()})
    return row


# --- migrations -------------------------------------------------------------------------


def test_migrate_applies_every_version_once(fresh_store: Store) -> None:
    assert fresh_store.migrate() == [m.version for m in MIGRATIONS]
    assert fresh_store.migrate() == []
    recorded = fresh_store.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name) for m in MIGRATIONS]
    for table in TABLES:
        assert fresh_store.query(f'SELECT count(*) FROM "{table.name}"') == [(0,)]


def test_migrate_refuses_a_schema_newer_than_the_code(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
            (999, "from the future", T0),
        )
    with pytest.raises(StoreError, match=r"version 999.*upgrade pulso"):
        store.migrate()


def test_a_later_version_is_applied_alone(store: Store) -> None:
    extra = Table("extra", (Column("id", "text", nullable=False),), key=("id",))
    version = MIGRATIONS[-1].version + 1
    later = [*MIGRATIONS, Migration(version, "extra", lambda d: [create_table_sql(extra, d)])]
    assert apply_migrations(store, later) == [version]
    assert apply_migrations(store, later) == []
    assert store.query("SELECT count(*) FROM extra") == [(0,)]


def test_a_failing_version_leaves_no_trace(store: Store) -> None:
    half = Table("half", (Column("id", "text", nullable=False),), key=("id",))
    broken = [
        *MIGRATIONS,
        Migration(
            MIGRATIONS[-1].version + 1,
            "broken",
            lambda d: [create_table_sql(half, d), "CREATE TABLE nonsense ("],
        ),
    ]
    with pytest.raises(StoreError):
        apply_migrations(store, broken)
    last = MIGRATIONS[-1].version
    assert store.query("SELECT max(version) FROM schema_migrations") == [(last,)]
    with pytest.raises(StoreError):
        store.query("SELECT count(*) FROM half")


# --- bulk writes ------------------------------------------------------------------------


def test_insert_new_counts_new_rows_and_leaves_stored_ones_alone(store: Store) -> None:
    first = _raw(3, payload=b"original")
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, first) == 3
    again = _raw(0, payload=b"changed", ids=[*first["event_id"][:2], uuid.uuid4()])
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, again) == 1
        assert tx.insert_new(RAW_EVENTS, again) == 0
    payloads = store.query("SELECT event_id, payload FROM raw_events")
    assert len(payloads) == 4
    by_id = dict(payloads)
    assert [by_id[i] for i in first["event_id"]] == [b"original"] * 3


def test_insert_new_of_big_batches_counts_like_small_ones(store: Store) -> None:
    # From PROBE_MIN_ROWS rows DuckDB probes for stored keys and takes a plain INSERT when
    # none is: all new, some stored, repeats within the batch, keys in any order.
    ids = [uuid.uuid4() for _ in range(2 * PROBE_MIN_ROWS)]
    first = _raw(0, payload=b"original", ids=ids[:PROBE_MIN_ROWS])
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, first) == PROBE_MIN_ROWS
    overlapping = _raw(0, payload=b"changed", ids=ids[PROBE_MIN_ROWS // 2 :])
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, overlapping) == PROBE_MIN_ROWS
    fresh = [uuid.uuid4() for _ in range(PROBE_MIN_ROWS)]
    repeated = _raw(0, payload=b"twice", ids=[*fresh, *fresh[:10]])
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, repeated) == PROBE_MIN_ROWS
        assert tx.insert_new(RAW_EVENTS, repeated) == 0
    rows = dict(store.query("SELECT event_id, payload FROM raw_events"))
    assert len(rows) == 3 * PROBE_MIN_ROWS
    assert [rows[i] for i in ids[:PROBE_MIN_ROWS]] == [b"original"] * PROBE_MIN_ROWS
    assert rows[ids[-1]] == b"changed" and rows[fresh[0]] == b"twice"


def test_empty_batches_write_nothing(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, _raw(0, ids=[])) == 0
        tx.upsert(PAYMENTS, {name: [] for name in _payment("none")})
    assert store.query("SELECT count(*) FROM raw_events") == [(0,)]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"charge_id": ["a"], "colour": ["red"]}, "no column colour"),
        ({"status": ["pending"]}, "lacks required column charge_id, status_rank, updated_at"),
        ({**_payment("a"), "city": ["Recife", "Natal"]}, "unequal length"),
        ({k: v for k, v in _payment("a").items() if k != "status_rank"}, "lacks required"),
    ],
)
def test_malformed_batches_are_refused(store: Store, batch: ColumnBatch, message: str) -> None:
    with pytest.raises(StoreError, match=message), store.transaction() as tx:
        tx.upsert(PAYMENTS, batch)


def test_a_value_of_the_wrong_type_is_a_store_error(store: Store) -> None:
    # psycopg's binary COPY would wrap 70000 into a smallint silently; the store must refuse.
    bad = _payment("a")
    bad["status_rank"] = [70_000]
    with pytest.raises(StoreError, match="smallint"), store.transaction() as tx:
        tx.upsert(PAYMENTS, bad)
    assert store.query("SELECT count(*) FROM payments") == [(0,)]


# --- merge rules ------------------------------------------------------------------------

PROBE = Table(
    "merge_probe",
    (
        Column("k", "text", nullable=False),
        Column("replaced", "text", merge="replace"),
        Column("latest", "text", merge="latest"),
        Column("first", "text", merge="first"),
        Column("biggest", "bigint", merge="max"),
        Column("rank", "smallint", merge="max"),
        Column("ranked", "text", merge="rank:rank"),
    ),
    key=("k",),
)


def _merge(store: Store, column: str, cases: list[tuple[Any, Any, Any]], **fixed: Any) -> None:
    """Store each case's old value, upsert its new one, and compare with the expected."""
    _create(store, PROBE)
    keys = [f"case-{i}" for i in range(len(cases))]

    def batch(values: list[Any]) -> ColumnBatch:
        rows: ColumnBatch = {"k": keys, column: values}
        rows.update({name: values_ for name, values_ in fixed.items()})
        return rows

    with store.transaction() as tx:
        tx.upsert(PROBE, batch([old for old, _, _ in cases]))
    with store.transaction() as tx:
        tx.upsert(PROBE, batch([new for _, new, _ in cases]))
    stored = dict(store.query(f'SELECT k, "{column}" FROM merge_probe'))
    got = [(old, new, stored[k]) for k, (old, new, _) in zip(keys, cases, strict=True)]
    assert got == cases


def test_merge_replace_takes_the_new_value_even_null(store: Store) -> None:
    _merge(store, "replaced", [("a", "b", "b"), ("a", None, None), (None, "b", "b")])


def test_merge_latest_takes_the_new_value_unless_null(store: Store) -> None:
    _merge(store, "latest", [("a", "b", "b"), ("a", None, "a"), (None, "b", "b")])


def test_merge_first_keeps_the_stored_value_unless_null(store: Store) -> None:
    _merge(store, "first", [("a", "b", "a"), ("a", None, "a"), (None, "b", "b")])


def test_merge_max_keeps_the_larger_and_ignores_nulls(store: Store) -> None:
    cases = [(5, 3, 5), (3, 5, 5), (None, 3, 3), (5, None, 5), (None, None, None)]
    _merge(store, "biggest", cases)


def test_merge_rank_takes_the_value_of_the_higher_ranked_row(store: Store) -> None:
    _create(store, PROBE)
    # (stored rank, stored value, new rank, new value, expected value, expected rank)
    cases = [
        (2, "old", 1, "new", "old", 2),
        (2, "old", 2, "new", "new", 2),  # ties: the new value wins
        (2, "old", 3, "new", "new", 3),
        (None, "old", 1, "new", "new", 1),
        (2, "old", None, "new", "old", 2),
        (2, "old", 3, None, None, 3),
    ]
    keys = [f"case-{i}" for i in range(len(cases))]
    with store.transaction() as tx:
        tx.upsert(
            PROBE, {"k": keys, "rank": [c[0] for c in cases], "ranked": [c[1] for c in cases]}
        )
    with store.transaction() as tx:
        tx.upsert(
            PROBE, {"k": keys, "rank": [c[2] for c in cases], "ranked": [c[3] for c in cases]}
        )
    stored = {k: (v, r) for k, v, r in store.query("SELECT k, ranked, rank FROM merge_probe")}
    assert [stored[k] for k in keys] == [(c[4], c[5]) for c in cases]


def test_a_ranked_column_needs_its_rank_in_the_batch(store: Store) -> None:
    _create(store, PROBE)
    with pytest.raises(StoreError, match="ranked without rank"), store.transaction() as tx:
        tx.upsert(PROBE, {"k": ["a"], "ranked": ["x"]})


def test_payment_status_follows_rank_whatever_the_arrival_order(store: Store) -> None:
    def event(status: str, rank: int, at: datetime, amount_cents: int | None) -> ColumnBatch:
        return {
            "charge_id": ["ch-1"],
            "status": [status],
            "status_rank": [rank],
            "updated_at": [at],
            "amount_cents": [amount_cents],
        }

    for batch in (
        event("confirmed", 3, T0 + timedelta(seconds=5), None),
        event("pending", 0, T0, 1_234_56),
        event("expired", 1, T0 + timedelta(minutes=30), None),
    ):
        with store.transaction() as tx:
            tx.upsert(PAYMENTS, batch)
    row = store.query("SELECT status, status_rank, updated_at, amount_cents FROM payments")
    assert row == [("confirmed", 3, T0 + timedelta(minutes=30), 1_234_56)]


def test_upsert_leaves_columns_missing_from_the_batch_as_stored(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, _payment("ch-1", city="Recife", psp="sandbox"))
        tx.upsert(PAYMENTS, _payment("ch-1", psp="mercadopago"))
    assert store.query("SELECT city, psp FROM payments") == [("Recife", "sandbox")]


# --- types ------------------------------------------------------------------------------

VALUES = Table(
    "value_probe",
    (
        Column("k", "int", nullable=False),
        Column("cents", "bigint"),
        Column("amount", "numeric"),
        Column("at", "timestamptz"),
        Column("id", "uuid"),
        Column("blob", "bytes"),
        Column("doc", "json"),
        Column("ratio", "double"),
        Column("flag", "bool"),
    ),
    key=("k",),
)


def _round_trip(store: Store, column: str, values: list[Any]) -> list[Any]:
    _create(store, VALUES)
    with store.transaction() as tx:
        tx.upsert(VALUES, {"k": list(range(len(values))), column: values})
    return [v for (v,) in store.query(f'SELECT "{column}" FROM value_probe ORDER BY k')]


def test_money_in_cents_is_exact(store: Store) -> None:
    cents = [2**53 + 1, 999_999_999_999_99, 1, 0, -5, None]
    assert _round_trip(store, "cents", cents) == cents


def test_money_as_numeric_is_exact(store: Store) -> None:
    amounts = [Decimal("123456789012.34"), Decimal("0.10"), Decimal("1.2"), Decimal("-0.01"), None]
    stored = _round_trip(store, "amount", amounts)
    assert stored == amounts
    assert all(isinstance(v, Decimal) for v in stored if v is not None)
    total = store.query("SELECT sum(amount) FROM value_probe")[0][0]
    assert Decimal(total) == Decimal("123456789013.63")


def test_numeric_refuses_to_round_money(store: Store) -> None:
    _create(store, VALUES)
    with pytest.raises(StoreError, match="amount"), store.transaction() as tx:
        tx.upsert(VALUES, {"k": [1], "amount": [Decimal("1.005")]})


def test_timestamps_round_trip_as_utc(store: Store) -> None:
    local = [T0.astimezone(SAO_PAULO), datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    stored = _round_trip(store, "at", [*local, None])
    assert stored == [*local, None]
    assert all(v.utcoffset() == timedelta(0) for v in stored[:2])


def test_historic_zone_offsets_keep_their_seconds(store: Store) -> None:
    # São Paulo's local mean time before 1914 was -03:06:28.
    old = [datetime(1900, 1, 1, tzinfo=ZoneInfo("America/Sao_Paulo")), T0]
    stored = _round_trip(store, "at", old)
    assert stored == old
    assert stored[0] == datetime(1900, 1, 1, 3, 6, 28, tzinfo=UTC)


def test_timestamps_accept_epoch_microseconds(store: Store) -> None:
    epoch_us = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert _round_trip(store, "at", [epoch_us, None]) == [T0, None]


@pytest.mark.parametrize("position", [0, 2])
def test_naive_timestamps_are_refused(store: Store, position: int) -> None:
    _create(store, VALUES)
    values: list[datetime | None] = [T0, None, T0]
    values[position] = datetime(2024, 1, 1, 12, 0)
    with pytest.raises(StoreError, match="naive"), store.transaction() as tx:
        tx.upsert(VALUES, {"k": [1, 2, 3], "at": values})


def test_uuids_round_trip_from_every_input_form(store: Store) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for form in ([*ids, None], [str(i) for i in ids] + [None], [i.bytes for i in ids] + [None]):
        with store.transaction() as tx:
            tx.execute("DROP TABLE IF EXISTS value_probe")
        assert _round_trip(store, "id", form) == [*ids, None]
    found = store.query("SELECT k FROM value_probe WHERE id = %s", (ids[1],))
    assert found == [(1,)]


def test_bytes_round_trip(store: Store) -> None:
    blobs = [b"", b"\x00\xff\x00", bytes(range(256)) * 4096, None]
    assert _round_trip(store, "blob", blobs) == blobs


def test_json_round_trips_as_parsed_values(store: Store) -> None:
    docs = [{"reason": "velocity", "count": 7, "nested": [1, "dois", None]}, [1, 2], None]
    assert _round_trip(store, "doc", docs) == docs


def test_doubles_and_booleans_round_trip(store: Store) -> None:
    assert _round_trip(store, "ratio", [0.1, -1e300, None]) == [0.1, -1e300, None]
    with store.transaction() as tx:
        tx.execute("DROP TABLE value_probe")
    assert _round_trip(store, "flag", [True, False, None]) == [True, False, None]


# --- transactions, statements, checkpoints ----------------------------------------------


class _Boom(Exception):
    pass


def test_an_exception_rolls_back_everything_and_propagates(store: Store) -> None:
    with pytest.raises(_Boom), store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(5))
        tx.upsert(PAYMENTS, _payment("ch-1"))
        tx.save_checkpoint("pipeline", b"offsets")
        raise _Boom
    assert store.query("SELECT count(*) FROM raw_events") == [(0,)]
    assert store.query("SELECT count(*) FROM payments") == [(0,)]
    with store.transaction() as tx:
        assert tx.load_checkpoint("pipeline") is None


def test_a_failed_statement_rolls_back_and_the_store_stays_usable(store: Store) -> None:
    with pytest.raises(StoreError, match="could not run a statement"), store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(2))
        tx.execute("INSERT INTO no_such_table VALUES (1)")
    assert store.query("SELECT count(*) FROM raw_events") == [(0,)]
    with store.transaction() as tx:
        assert tx.insert_new(RAW_EVENTS, _raw(2)) == 2
    assert store.query("SELECT count(*) FROM raw_events") == [(2,)]


def test_query_and_execute_take_percent_s_placeholders(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(3))
        tx.execute("UPDATE raw_events SET source = %s WHERE key = %s", ("webhook", "store-1"))
    rows = store.query(
        "SELECT key, source, 'a%%b' FROM raw_events WHERE source LIKE %s AND occurred_at = %s",
        ("web%", T0),
    )
    assert rows == [("store-1", "webhook", "a%b")]
    assert store.query("SELECT key FROM raw_events WHERE key = %s", ("nobody",)) == []


def test_a_bad_query_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="could not run a query"):
        store.query("SELECT no_such_column FROM raw_events")


def test_fetch_inside_a_transaction_sees_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(4))
        assert tx.fetch("SELECT count(*) FROM raw_events WHERE topic = %s", ("payments",)) == [(4,)]


def test_transactions_do_not_nest(store: Store) -> None:
    with pytest.raises(StoreError, match="do not nest"), store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(1))
        with store.transaction():
            pass
    assert store.query("SELECT count(*) FROM raw_events") == [(0,)]


def test_queries_from_another_thread_see_only_committed_rows(store: Store) -> None:
    seen: list[Any] = []
    with store.transaction() as tx:
        tx.insert_new(RAW_EVENTS, _raw(3))
        reader = threading.Thread(
            target=lambda: seen.append(store.query("SELECT count(*) FROM raw_events"))
        )
        reader.start()
        reader.join(timeout=30)
    assert seen == [[(0,)]]
    assert store.query("SELECT count(*) FROM raw_events") == [(3,)]


@pytest.mark.postgres
def test_a_dropped_postgresql_connection_fails_one_transaction_then_reconnects(
    postgres_url: str,
) -> None:
    import psycopg

    with PostgresStore(postgres_url) as store:
        store.migrate()
        with store.transaction() as tx:
            [(pid,)] = tx.fetch("SELECT pg_backend_pid()")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        lost = pytest.raises(StoreUnavailableError, match="lost the connection")
        with lost, store.transaction() as tx:
            tx.insert_new(RAW_EVENTS, _raw(1))
        with store.transaction() as tx:
            assert tx.insert_new(RAW_EVENTS, _raw(2)) == 2
        assert store.query("SELECT count(*) FROM raw_events") == [(2,)]


def test_checkpoints_save_load_and_overwrite(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.load_checkpoint("pipeline") is None
        tx.save_checkpoint("pipeline", b"\x00first")
        assert tx.load_checkpoint("pipeline") == b"\x00first"
    with store.transaction() as tx:
        assert tx.load_checkpoint("pipeline") == b"\x00first"
        tx.save_checkpoint("pipeline", b"second")
        tx.save_checkpoint("other", b"")
    with store.transaction() as tx:
        assert tx.load_checkpoint("pipeline") == b"second"
        assert tx.load_checkpoint("other") == b""
    assert store.query("SELECT count(*) FROM checkpoints") == [(2,)]


def test_a_closed_store_says_so(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.query("SELECT 1")


# --- opening ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_open_store_picks_the_backend_and_migrates(
    kind: str, request: pytest.FixtureRequest, settings_factory: Any, tmp_path: Path
) -> None:
    if kind == "duckdb":
        url = f"duckdb:///{(tmp_path / 'nested' / 'dir' / 'p.duckdb').as_posix()}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(settings_factory(store_url=url))
    try:
        assert store.dialect == kind
        assert store.migrate() == []
    finally:
        store.close()


@pytest.mark.postgres
def test_unreachable_postgresql_is_one_clear_line_without_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresStore("postgresql://pulso:s3cret@127.0.0.1:1/pulso")
    message = str(caught.value)
    assert "postgresql://pulso:********@127.0.0.1:1/pulso" in message
    assert "s3cret" not in message
    assert "check that the server is running" in message
    assert "\n" not in message


def test_a_duckdb_file_held_by_another_process_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
            " sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreUnavailableError) as caught:
            DuckDBStore(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    message = str(caught.value)
    assert f"another pulso process (PID {holder.pid}) holds the DuckDB file {path}" in message
    assert "use its HTTP API" in message and "stop it" in message
    DuckDBStore(path).close()  # free again once the holder is gone


def test_a_file_that_is_not_duckdb_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.duckdb"
    path.write_bytes(b"hello" * 2000)
    with pytest.raises(StoreError, match=r"not-a-database\.duckdb"):
        DuckDBStore(path)
