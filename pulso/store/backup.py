"""Backups of the whole store as Parquet files plus a manifest, and restores from them.

``backup(store, out_dir)`` writes every table the store's catalog lists (``schema_migrations``
included) to ``tables/<name>.parquet`` inside one read transaction (REPEATABLE READ on
PostgreSQL: one consistent snapshot), then ``manifest.json`` last: the schema version, and
per table its rows, columns with logical types, and the SHA-256 of its file. A folder
without a manifest is not a backup.

``restore(store, from_dir)`` checks the manifest and every checksum before it touches the
store, refuses a backup from a newer schema than this pulso knows and a store that holds rows
(unless ``force``: then the backed-up tables are emptied first), and loads every table in one
transaction. ``schema_migrations`` is compared, not copied: the target's schema is made by its
own migrations. Types survive exactly across DuckDB and PostgreSQL in both directions:
numeric as decimal128, timestamptz as UTC microseconds, uuid as Parquet UUID, json as text,
bytes as binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pulso.errors import PulsoError, StoreError
from pulso.store.catalog import (
    StoredColumn,
    StoredTable,
    export_select,
    stored_tables,
    transport_schema,
)
from pulso.store.protocol import Store, StoreTx
from pulso.store.schema import MIGRATIONS, MIGRATIONS_TABLE
from pulso.store.sql import quote
from pulso.store.tables import LogicalType

MANIFEST: Final = "manifest.json"
FORMAT: Final = "pulso-backup"
FORMAT_VERSION: Final = 1
TABLES_FOLDER: Final = "tables"
BATCH_ROWS: Final = 65_536
_COMPRESSION: Final = "zstd"
_HASH_CHUNK: Final = 1 << 20


class BackupError(PulsoError):
    """A backup cannot be written or restored; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class TableEntry:
    name: str
    file: str
    rows: int
    sha256: str
    bytes: int
    key: tuple[str, ...]
    columns: tuple[StoredColumn, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: datetime
    dialect: str
    schema_version: int
    migrations: tuple[tuple[int, str], ...]
    tables: tuple[TableEntry, ...]

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at.isoformat(),
            "dialect": self.dialect,
            "schema_version": self.schema_version,
            "migrations": [list(m) for m in self.migrations],
            "tables": [
                {
                    "name": t.name,
                    "file": t.file,
                    "rows": t.rows,
                    "sha256": t.sha256,
                    "bytes": t.bytes,
                    "key": list(t.key),
                    "columns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "nullable": c.nullable,
                            "precision": c.precision,
                            "scale": c.scale,
                        }
                        for c in t.columns
                    ],
                }
                for t in self.tables
            ],
        }
        return json.dumps(doc, indent=2).encode() + b"\n"


@dataclass(slots=True)
class BackupResult:
    folder: Path
    manifest: Manifest
    seconds: float = 0.0


@dataclass(slots=True)
class RestoreResult:
    manifest: Manifest
    rows: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def backup(store: Store, out_dir: Path, *, now: datetime | None = None) -> BackupResult:
    """Write every table of ``store`` to ``out_dir`` (new or empty) as Parquet + manifest."""
    started = time.perf_counter()
    _prepare_out_dir(out_dir)
    entries: list[TableEntry] = []
    with store.transaction() as tx:
        if store.dialect == "postgresql":
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        found = stored_tables(store.dialect, tx.fetch)
        migrations = _migrations(tx)
        for table in found:
            entries.append(_dump_table(tx, store, table, out_dir))
    manifest = Manifest(
        created_at=now or datetime.now(UTC),
        dialect=store.dialect,
        schema_version=max((v for v, _ in migrations), default=0),
        migrations=tuple(migrations),
        tables=tuple(entries),
    )
    _write_atomically(out_dir / MANIFEST, manifest.to_json())
    return BackupResult(out_dir, manifest, time.perf_counter() - started)


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise BackupError(f"{out_dir} is a file; give --out a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise BackupError(
            f"{out_dir} is not empty; give --out a new or empty folder (a backup never "
            "overwrites files)"
        )
    try:
        (out_dir / TABLES_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BackupError(f"cannot create {out_dir} ({e.strerror}); check the path") from e


def _migrations(tx: StoreTx) -> list[tuple[int, str]]:
    rows = tx.fetch(f"SELECT version, name FROM {quote(MIGRATIONS_TABLE)} ORDER BY version")
    return [(int(v), str(n)) for v, n in rows]


def _dump_table(tx: StoreTx, store: Store, table: StoredTable, out_dir: Path) -> TableEntry:
    relative = f"{TABLES_FOLDER}/{table.name}.parquet"
    path = out_dir / relative
    schema = table.arrow_schema
    rows = 0
    with pq.ParquetWriter(path, schema, compression=_COMPRESSION) as writer:
        sql = export_select(table, store.dialect)
        for batch in tx.fetch_arrow(sql, transport_schema(table, store.dialect), BATCH_ROWS):
            writer.write_batch(_to_backup_types(batch, schema))
            rows += batch.num_rows
    digest, size = _sha256(path)
    return TableEntry(table.name, relative, rows, digest, size, table.key, table.columns)


def _to_backup_types(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [batch.column(i).cast(f.type) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_atomically(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


# --- restore -----------------------------------------------------------------------------


def read_manifest(from_dir: Path) -> Manifest:
    """The backup's manifest, checked for shape; BackupError says what is wrong."""
    if not from_dir.is_dir():
        raise BackupError(f"{from_dir} is not a folder; give --from the folder a backup wrote")
    path = from_dir / MANIFEST
    if not path.is_file():
        raise BackupError(f"{from_dir} holds no {MANIFEST}: not a pulso backup (or unfinished)")
    try:
        doc = orjson.loads(path.read_bytes())
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {FORMAT!r}")
        if int(doc["format_version"]) > FORMAT_VERSION:
            raise BackupError(
                f"{path} is backup format {doc['format_version']}, newer than this pulso "
                f"reads ({FORMAT_VERSION}); upgrade pulso"
            )
        return Manifest(
            created_at=datetime.fromisoformat(doc["created_at"]),
            dialect=str(doc["dialect"]),
            schema_version=int(doc["schema_version"]),
            migrations=tuple((int(v), str(n)) for v, n in doc["migrations"]),
            tables=tuple(_table_entry(t) for t in doc["tables"]),
        )
    except BackupError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise BackupError(
            f"{path} is corrupt ({type(e).__name__}: {e}); the backup is unusable"
        ) from e


def _table_entry(doc: dict[str, Any]) -> TableEntry:
    columns = tuple(
        StoredColumn(
            str(c["name"]),
            _logical(str(c["type"])),
            bool(c["nullable"]),
            c.get("precision"),
            c.get("scale"),
        )
        for c in doc["columns"]
    )
    file = str(doc["file"])
    if file != f"{TABLES_FOLDER}/{doc['name']}.parquet":
        raise ValueError(f"table {doc['name']!r} points at an unexpected file {file!r}")
    return TableEntry(
        str(doc["name"]),
        file,
        int(doc["rows"]),
        str(doc["sha256"]),
        int(doc["bytes"]),
        tuple(str(k) for k in doc["key"]),
        columns,
    )


def _logical(name: str) -> LogicalType:
    known: tuple[LogicalType, ...] = (
        "text",
        "int",
        "bigint",
        "smallint",
        "double",
        "bool",
        "timestamptz",
        "bytes",
        "uuid",
        "json",
        "numeric",
    )
    for logical in known:
        if logical == name:
            return logical
    raise ValueError(f"unknown column type {name!r}")


def verify_backup(from_dir: Path) -> Manifest:
    """Read the manifest and check every file's size and SHA-256 against it."""
    manifest = read_manifest(from_dir)
    for entry in manifest.tables:
        path = from_dir / entry.file
        if not path.is_file():
            raise BackupError(f"{path} is missing; the backup is incomplete")
        digest, size = _sha256(path)
        if digest != entry.sha256 or size != entry.bytes:
            raise BackupError(
                f"checksum mismatch for {entry.file} (expected sha256 {entry.sha256[:12]}..., "
                f"found {digest[:12]}...): the backup is damaged; use another one"
            )
    return manifest


def restore(store: Store, from_dir: Path, *, force: bool = False) -> RestoreResult:
    """Load a backup into ``store`` (migrated, empty unless ``force``); all or nothing."""
    started = time.perf_counter()
    manifest = verify_backup(from_dir)
    _check_schema(manifest, store)
    with store.transaction() as tx:
        targets = {t.name: t for t in stored_tables(store.dialect, tx.fetch)}
        data = [e for e in manifest.tables if e.name != MIGRATIONS_TABLE]
        plan = [(entry, _target(entry, targets)) for entry in data]
        result = RestoreResult(manifest)
        occupied = _occupied(tx, list(targets.values()))
        if occupied and not force:
            listed = ", ".join(f"{name} ({rows:,} rows)" for name, rows in occupied.items())
            raise BackupError(
                f"the store is not empty: {listed}; restore into an empty store, or pass "
                "--force to replace the contents of the backed-up tables"
            )
        for entry, target in plan:
            if force and occupied.get(target.name):
                tx.execute(f"DELETE FROM {quote(target.name)}")
                result.cleared[target.name] = occupied[target.name]
            result.rows[entry.name] = _load_table(tx, store, from_dir, entry, target)
    result.seconds = time.perf_counter() - started
    return result


def _check_schema(manifest: Manifest, store: Store) -> None:
    known = max(m.version for m in MIGRATIONS)
    if manifest.schema_version > known:
        raise BackupError(
            f"the backup has schema version {manifest.schema_version}, newer than this pulso "
            f"knows ({known}); restore it with the pulso that made it, or upgrade"
        )
    recorded = {
        int(row[0]) for row in store.query(f"SELECT version FROM {quote(MIGRATIONS_TABLE)}")
    }
    missing = sorted({v for v, _ in manifest.migrations} - recorded)
    if missing:
        raise BackupError(
            f"the store lacks schema versions {missing} the backup has; "
            "open it with this pulso (it migrates) and retry"
        )


def _target(entry: TableEntry, targets: dict[str, StoredTable]) -> StoredTable:
    target = targets.get(entry.name)
    if target is None:
        raise BackupError(
            f"the backup has a table {entry.name} this store lacks; restore with the pulso "
            "version that made the backup"
        )
    missing = [c.name for c in entry.columns if target.column(c.name) is None]
    if missing:
        raise BackupError(f"{entry.name} in the store lacks column(s) {', '.join(missing)}")
    return target


def _occupied(tx: StoreTx, tables: list[StoredTable]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in tables:
        if table.name == MIGRATIONS_TABLE:
            continue
        rows = int(tx.fetch(f"SELECT count(*) FROM {quote(table.name)}")[0][0])
        if rows:
            counts[table.name] = rows
    return counts


def _load_table(
    tx: StoreTx, store: Store, from_dir: Path, entry: TableEntry, target: StoredTable
) -> int:
    names = [c.name for c in entry.columns]
    spec = StoredTable(
        target.name, tuple(c for c in target.columns if c.name in names), target.key
    ).spec
    schema = pa.schema([pa.field(c.name, c.arrow_type) for c in spec_columns(target, names)])
    path = from_dir / entry.file
    try:
        parquet = pq.ParquetFile(path)
        batches = _cast_batches(parquet.iter_batches(BATCH_ROWS, columns=names), schema)
        loaded = _write(tx, store, spec, schema, batches)
    except (pa.ArrowException, OSError) as e:
        raise BackupError(f"cannot read {path}: {e}") from e
    if loaded != entry.rows:
        raise BackupError(
            f"{entry.file} gave {loaded:,} rows, the manifest says {entry.rows:,}; "
            "the backup is damaged"
        )
    return loaded


def spec_columns(target: StoredTable, names: list[str]) -> list[StoredColumn]:
    by_name = {c.name: c for c in target.columns}
    return [by_name[n] for n in names]


def _cast_batches(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        try:
            yield _to_backup_types(batch, schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise StoreError(f"a value does not fit the store's column: {e}") from e


def _write(
    tx: StoreTx,
    store: Store,
    spec: Any,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
) -> int:
    if store.dialect == "duckdb":
        # One stream: DuckDB writes row groups as they fill.
        return tx.append_arrow(spec, pa.RecordBatchReader.from_batches(schema, batches))
    json_columns = [f.name for f in schema if f.name in _json_names(spec)]
    loaded = 0
    for batch in batches:
        if json_columns:
            # A str bound to jsonb would be stored as a JSON string: pass parsed values.
            rows = batch.to_pydict()
            for name in json_columns:
                rows[name] = [None if v is None else orjson.loads(v) for v in rows[name]]
            loaded += tx.insert_new(spec, rows)
        else:
            loaded += tx.append_arrow(spec, pa.Table.from_batches([batch], schema))
    return loaded


def _json_names(spec: Any) -> set[str]:
    return {c.name for c in spec.columns if c.type == "json"}
