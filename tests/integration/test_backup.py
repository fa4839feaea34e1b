"""Backups and restores: every table, row by row, on DuckDB and PostgreSQL and across them;
exact types; a damaged, foreign or newer backup and a non-empty store are refused."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pulso.store.backup import MANIFEST, BackupError, backup, read_manifest, restore
from pulso.store.catalog import stored_tables
from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.protocol import Store
from pulso.store.schema import MIGRATIONS, create_table_sql
from pulso.store.sql import quote
from pulso.store.tables import (
    ALERTS,
    CHECKPOINTS,
    DEADLETTER,
    PAYMENT_MINUTES,
    PAYMENTS,
    RAW_EVENTS,
    Column,
    ColumnBatch,
    Table,
)

T0 = datetime(2026, 11, 24, 13, 5, 7, 123456, tzinfo=UTC)
POSTGRES_URL = os.environ.get(
    "PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)  # as tests/conftest.py finds it

# A table no migration knows, with every logical type: the backup finds it in the catalog.
EXTRA = Table(
    "zz_every_type",
    (
        Column("id", "text", nullable=False),
        Column("money", "numeric"),
        Column("at", "timestamptz"),
        Column("uid", "uuid"),
        Column("doc", "json"),
        Column("blob", "bytes"),
        Column("ratio", "double"),
        Column("flag", "bool"),
        Column("small", "smallint"),
        Column("medium", "int"),
        Column("big", "bigint"),
    ),
    key=("id",),
)

# Only types PostgreSQL's CSV COPY carries: the backup reads it without Python objects.
PLAIN = Table(
    "zz_plain_types",
    (
        Column("id", "int", nullable=False),
        Column("label", "text"),
        Column("money", "numeric"),
        Column("at", "timestamptz"),
        Column("ratio", "double"),
        Column("flag", "bool"),
        Column("small", "smallint"),
    ),
    key=("id",),
)
EXTRA_TABLES = (EXTRA, PLAIN)


def open_duckdb(path: Path) -> Store:
    store = DuckDBStore(path)
    store.migrate()
    return store


def open_postgres(url: str) -> Store:
    store = PostgresStore(url)
    store.migrate()
    return store


@pytest.fixture
def other_postgres_url() -> Iterator[str]:
    """A second empty schema on the test server (the target of PostgreSQL→PostgreSQL)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def batch(rows: list[dict[str, Any]]) -> ColumnBatch:
    return {name: [r[name] for r in rows] for name in rows[0]}


def fill(store: Store, n: int = 300) -> None:
    """Rows in the v1 tables and the every-type table, with NULLs and awkward values."""
    with store.transaction() as tx:
        for table in EXTRA_TABLES:
            tx.execute(create_table_sql(table, store.dialect))
    payments = []
    for i in range(n):
        at = T0 + timedelta(minutes=7 * i, microseconds=i)
        payments.append(
            {
                "charge_id": f"ch_{i:05d}",
                "txid": None if i % 9 == 0 else f"TX{i}",
                "store_id": f"LJ-{i % 4:04d}",
                "city": "São Paulo" if i % 2 else "Florianópolis",
                "uf": "SP" if i % 2 else "SC",
                "amount_cents": 10**12 + i if i == 7 else i * 137,
                "paid_cents": None if i % 3 else i * 137,
                "status": "confirmed" if i % 3 == 0 else "pending",
                "status_rank": 3 if i % 3 == 0 else 0,
                "payment_type": "pix",
                "psp": "sandbox",
                "payer_hash": "" if i == 4 else "h" * 64,  # empty is not NULL
                "created_at": at,
                "expires_at": at + timedelta(hours=1),
                "confirmed_at": at + timedelta(seconds=3) if i % 3 == 0 else None,
                "failed_at": None,
                "expired_at": None,
                "failure_reason": 'a "quoted", comma\nnew line' if i == 5 else None,
                "confirmation_seconds": 1 / 3 + i if i % 3 == 0 else None,
                "updated_at": at,
            }
        )
    raw = [
        {
            "event_id": uuid.UUID(int=i * 7919 + 1),
            "type": "pix.charge.created",
            "topic": "payments",
            "occurred_at": T0 + timedelta(seconds=i),
            "source": "test",
            "key": f"ch_{i:05d}",
            "payload": bytes(range(256))[i % 200 :] + b"\x00",
            "received_at": T0 + timedelta(seconds=i, milliseconds=5),
        }
        for i in range(n)
    ]
    alerts = [
        {
            "alert_id": f"al_{i}",
            "kind": "fraud.velocity",
            "severity": "warning",
            "subject": "LJ-0001",
            "message": "Pagador em 5 lojas em 3 minutos — R$ 1.234,56",
            "raised_at": T0 + timedelta(minutes=i),
            "count": i + 1,
            "details": None
            if i == 0
            else {"risk_score": 0.5 + i / 100, "reasons": ["a", "ç"], "nested": {"n": [1, None]}},
        }
        for i in range(20)
    ]
    dead = [
        {
            "id": f"payments:0:{i}",
            "topic": "payments",
            "partition": 0,
            "offset": i,
            "reason": "bad_json",
            "detail": "x",
            "payload": b'{"broken": \xff',
            "received_at": T0,
            "replayed_at": None if i else T0,
        }
        for i in range(5)
    ]
    minutes = [
        {
            "store_id": "LJ-0001",
            "minute": T0.replace(second=0, microsecond=0) + timedelta(minutes=i),
            "city": "Recife",
            "uf": "PE",
            "charges": i,
            "confirmed": i // 2,
            "amount_cents": i * 100,
            "confirmed_cents": i * 50,
            "confirmation_seconds_sum": i * 0.1,
        }
        for i in range(30)
    ]
    extra = [
        {
            "id": f"x{i}",
            "money": None if i == 3 else Decimal("123456789012.34") - Decimal(i) / 100,
            "at": None if i == 4 else T0 + timedelta(days=i, microseconds=999_999 - i),
            "uid": None if i == 5 else uuid.uuid4(),
            "doc": None if i == 6 else {"i": i, "s": "ã"},
            "blob": None if i == 7 else os.urandom(i + 1),
            "ratio": None if i == 8 else 0.1 * i,
            "flag": None if i == 9 else i % 2 == 0,
            "small": -32768 if i == 0 else i,
            "medium": 2**31 - 1 if i == 1 else i,
            "big": 2**63 - 1 if i == 2 else -i,
        }
        for i in range(12)
    ]
    plain = [
        {
            "id": i,
            "label": [None, "", '"', "a,b\nc", "ção", "\\N"][i % 6],
            "money": None if i == 1 else Decimal("-999999999999.99") + Decimal(i) / 100,
            "at": None if i == 2 else T0 - timedelta(days=3650 * i, microseconds=i),
            "ratio": None if i == 3 else [0.1, 1e-300, -2.5e300, 1 / 3][i % 4],
            "flag": None if i == 4 else i % 2 == 1,
            "small": None if i == 5 else 32767 - i,
        }
        for i in range(14)
    ]
    with store.transaction() as tx:
        tx.insert_new(PLAIN, batch(plain))
        tx.upsert(PAYMENTS, batch(payments))
        tx.insert_new(RAW_EVENTS, batch(raw))
        tx.insert_new(ALERTS, batch(alerts))
        tx.insert_new(DEADLETTER, batch(dead))
        tx.upsert(PAYMENT_MINUTES, batch(minutes))
        tx.insert_new(EXTRA, batch(extra))
        tx.save_checkpoint("offsets/pipeline", b"\x00\x01binary")
    assert CHECKPOINTS.name in {t.name for t in stored_tables(store.dialect, store.query)}


def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in key order (schema_migrations: version and name only)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in stored_tables(store.dialect, store.query):
        if table.name == "schema_migrations":
            found[table.name] = store.query(
                "SELECT version, name FROM schema_migrations ORDER BY 1"
            )
            continue
        order = ", ".join(quote(k) for k in table.key) or "1"
        names = ", ".join(quote(c.name) for c in table.columns)
        found[table.name] = store.query(f"SELECT {names} FROM {quote(table.name)} ORDER BY {order}")
    return found


def round_trip(source: Store, target: Store, folder: Path) -> None:
    with target.transaction() as tx:
        for table in EXTRA_TABLES:
            tx.execute(create_table_sql(table, target.dialect))
    result = backup(source, folder)
    manifest = result.manifest
    assert manifest.schema_version == max(m.version for m in MIGRATIONS)
    restored = restore(target, folder)
    expected = contents(source)
    got = contents(target)
    assert set(got) == set(expected)
    for name, rows in expected.items():
        assert got[name] == rows, f"{name} differs after the restore"
    counts = {t.name: t.rows for t in manifest.tables}
    assert counts["payments"] == 300 and counts["zz_every_type"] == 12
    assert counts["zz_plain_types"] == 14
    assert restored.rows["raw_events"] == 300
    assert "schema_migrations" not in restored.rows


def test_duckdb_to_duckdb(tmp_path: Path) -> None:
    source = open_duckdb(tmp_path / "a.duckdb")
    target = open_duckdb(tmp_path / "b.duckdb")
    try:
        fill(source)
        round_trip(source, target, tmp_path / "bk")
    finally:
        source.close()
        target.close()


@pytest.mark.postgres
def test_postgres_to_postgres(postgres_url: str, other_postgres_url: str, tmp_path: Path) -> None:
    source = open_postgres(postgres_url)
    target = open_postgres(other_postgres_url)
    try:
        fill(source)
        round_trip(source, target, tmp_path / "bk")
    finally:
        source.close()
        target.close()


@pytest.mark.postgres
def test_duckdb_backup_restored_into_postgres(postgres_url: str, tmp_path: Path) -> None:
    source = open_duckdb(tmp_path / "a.duckdb")
    target = open_postgres(postgres_url)
    try:
        fill(source)
        round_trip(source, target, tmp_path / "bk")
    finally:
        source.close()
        target.close()


@pytest.mark.postgres
def test_postgres_backup_restored_into_duckdb(postgres_url: str, tmp_path: Path) -> None:
    source = open_postgres(postgres_url)
    target = open_duckdb(tmp_path / "b.duckdb")
    try:
        fill(source)
        round_trip(source, target, tmp_path / "bk")
    finally:
        source.close()
        target.close()


def test_parquet_files_carry_exact_types(tmp_path: Path) -> None:
    source = open_duckdb(tmp_path / "a.duckdb")
    try:
        fill(source)
        backup(source, tmp_path / "bk")
    finally:
        source.close()
    schema = pq.read_schema(tmp_path / "bk" / "tables" / "zz_every_type.parquet")
    types = {f.name: str(f.type) for f in schema}
    assert types["money"] == "decimal128(14, 2)"
    assert types["at"] == "timestamp[us, tz=UTC]"
    assert types["uid"] in ("extension<arrow.uuid>", "fixed_size_binary[16]")
    assert types["blob"] == "binary"
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    assert {t["name"] for t in manifest["tables"]} >= {"payments", "schema_migrations"}
    assert all(len(t["sha256"]) == 64 for t in manifest["tables"])


# --- refusals --------------------------------------------------------------------------------


@pytest.fixture
def made_backup(tmp_path: Path) -> Path:
    source = open_duckdb(tmp_path / "src.duckdb")
    try:
        fill(source, 40)
        backup(source, tmp_path / "bk")
    finally:
        source.close()
    return tmp_path / "bk"


@pytest.fixture
def empty_target(tmp_path: Path) -> Iterator[Store]:
    target = open_duckdb(tmp_path / "dst.duckdb")
    with target.transaction() as tx:
        for table in EXTRA_TABLES:
            tx.execute(create_table_sql(table, target.dialect))
    yield target
    target.close()


def test_refuses_a_non_empty_store_unless_forced(made_backup: Path, empty_target: Store) -> None:
    with empty_target.transaction() as tx:
        tx.save_checkpoint("something", b"x")
        tx.insert_new(ALERTS, batch([{**_alert(), "alert_id": "mine"}]))
    with pytest.raises(BackupError, match=r"not empty: alerts \(1 rows\), checkpoints"):
        restore(empty_target, made_backup)
    result = restore(empty_target, made_backup, force=True)
    assert result.cleared == {"alerts": 1, "checkpoints": 1}
    ids = [r[0] for r in empty_target.query("SELECT alert_id FROM alerts")]
    assert "mine" not in ids and len(ids) == 20


def _alert() -> dict[str, Any]:
    return {
        "alert_id": "a",
        "kind": "k",
        "severity": "info",
        "subject": "s",
        "message": "m",
        "raised_at": T0,
        "count": 1,
        "details": None,
    }


def test_refuses_a_newer_schema(made_backup: Path, empty_target: Store) -> None:
    path = made_backup / MANIFEST
    doc = json.loads(path.read_text())
    doc["schema_version"] = 999
    path.write_text(json.dumps(doc))
    with pytest.raises(BackupError, match="schema version 999, newer than this pulso"):
        restore(empty_target, made_backup)


def test_checksum_mismatch_is_caught_before_anything_is_written(
    made_backup: Path, empty_target: Store
) -> None:
    file = made_backup / "tables" / "payments.parquet"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"checksum mismatch for tables/payments\.parquet"):
        restore(empty_target, made_backup)
    assert empty_target.query("SELECT count(*) FROM raw_events") == [(0,)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text("{not json"), "is corrupt"),
        (lambda p: p.write_text('{"format": "zip"}'), "is corrupt"),
        (lambda p: p.write_text(p.read_text().replace('"rows"', '"rowz"')), "is corrupt"),
        (lambda p: p.unlink(), "holds no manifest.json"),
    ],
)
def test_bad_manifest(made_backup: Path, damage: Callable[[Path], Any], message: str) -> None:
    damage(made_backup / MANIFEST)
    with pytest.raises(BackupError, match=message):
        read_manifest(made_backup)


def test_missing_folder_and_missing_file(made_backup: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="is not a folder"):
        read_manifest(tmp_path / "nowhere")
    (made_backup / "tables" / "alerts.parquet").unlink()
    target = open_duckdb(tmp_path / "t.duckdb")
    try:
        with pytest.raises(BackupError, match=r"alerts\.parquet is missing"):
            restore(target, made_backup)
    finally:
        target.close()


def test_backup_never_overwrites(made_backup: Path, tmp_path: Path) -> None:
    source = open_duckdb(tmp_path / "again.duckdb")
    try:
        with pytest.raises(BackupError, match="is not empty"):
            backup(source, made_backup)
        (tmp_path / "afile").write_text("x")
        with pytest.raises(BackupError, match="is a file"):
            backup(source, tmp_path / "afile")
    finally:
        source.close()


def test_restore_refuses_a_table_the_store_lacks(made_backup: Path, tmp_path: Path) -> None:
    target = open_duckdb(tmp_path / "t.duckdb")  # without the every-type table
    try:
        with pytest.raises(BackupError, match="table zz_every_type this store lacks"):
            restore(target, made_backup)
        assert target.query("SELECT count(*) FROM payments") == [(0,)]  # all or nothing
    finally:
        target.close()
