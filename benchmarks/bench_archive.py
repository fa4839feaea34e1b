"""The raw archive's write rate, and backup/restore of 1M payments, each beside a baseline.

Run: .venv/bin/python benchmarks/bench_archive.py [--events 200000] [--payments 1000000]
     [--postgres postgresql://...]

1. Archive: events/s of ``archive_messages`` (decode the envelope, split by hour and bus
   partition, build Arrow, write Parquet with zstd into a folder) over bus messages already in
   memory, beside a plain ``pyarrow.parquet.write_table`` of the same rows already built as one
   Arrow table (same compression): the baseline pays none of the decoding nor splitting.
2. Backup and restore of a store holding ``--payments`` payments (DuckDB; PostgreSQL too with
   ``--postgres``): ``pulso.store.backup`` beside DuckDB's own ``COPY payments TO ... (FORMAT
   parquet)`` and ``INSERT INTO payments SELECT * FROM read_parquet(...)``, and PostgreSQL's
   binary ``COPY payments TO STDOUT`` / ``COPY payments FROM STDIN``, in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pulso.archive.archiver import archive_messages, read_archive
from pulso.buckets.local import FileBucket
from pulso.bus.protocol import Message
from pulso.domain.events import encode_event, new_event
from pulso.domain.payments import ChargeCreated
from pulso.store.backup import backup, restore
from pulso.store.duckdb import DuckDBStore
from pulso.store.protocol import Store
from pulso.store.tables import PAYMENTS

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def messages(count: int, partitions: int = 4) -> list[Message]:
    out: list[Message] = []
    for i in range(count):
        at = T0 + timedelta(milliseconds=i * 20)  # 200k events: ~67 minutes, two hours
        cid = f"ch_{i:08d}"
        created = ChargeCreated(
            charge_id=cid,
            txid=f"T{i}",
            store_id=f"LJ-{i % 300:04d}",
            city="São Paulo",
            uf="SP",
            amount=Decimal(i % 9000 + 1) / 4,
            created_at=at,
            expires_at=at + timedelta(hours=1),
        )
        value = encode_event(new_event(created, source="bench", key=cid, occurred_at=at))
        out.append(Message("payments", i % partitions, i // partitions, cid.encode(), value))
    return out


def bench_archive(count: int) -> None:
    msgs = messages(count)
    with tempfile.TemporaryDirectory() as tmp:
        warm = FileBucket(Path(tmp) / "warm", create=True)
        archive_messages(warm, msgs[:1000], T0)  # imports and first-call costs, not per event
        pq.write_table(read_archive(warm), Path(tmp) / "warm.parquet", compression="zstd")
        bucket = FileBucket(Path(tmp) / "archive", create=True)
        started = time.perf_counter()
        batch_size = 50_000
        for i in range(0, len(msgs), batch_size):
            archive_messages(bucket, msgs[i : i + batch_size], T0)
        archive_s = time.perf_counter() - started
        table = read_archive(bucket)
        assert table.num_rows == count
        started = time.perf_counter()
        for i in range(0, count, batch_size):
            pq.write_table(table.slice(i, batch_size), Path(tmp) / f"base-{i}.parquet",
                           compression="zstd")  # fmt: skip
        base_s = time.perf_counter() - started
    print(f"archive: {count:,} events")
    print(f"  pulso archive_messages  {count / archive_s:>12,.0f} events/s  ({archive_s:.2f} s)")
    print(f"  baseline pq.write_table {count / base_s:>12,.0f} events/s  ({base_s:.2f} s)")
    print(f"  ratio archive/baseline  {base_s / archive_s:.2f}x   [{load()}]")


def payments_table(count: int) -> pa.Table:
    created = pa.array(
        [int((T0.timestamp() + i * 0.5) * 1_000_000) for i in range(count)], pa.int64()
    ).cast(pa.timestamp("us", tz="UTC"))
    status = pa.array(["confirmed" if i % 4 else "pending" for i in range(count)])
    return pa.table(
        {
            "charge_id": pa.array([f"ch_{i:08d}" for i in range(count)]),
            "txid": pa.array([f"T{i}" for i in range(count)]),
            "store_id": pa.array([f"LJ-{i % 300:04d}" for i in range(count)]),
            "city": pa.array(["Recife"] * count),
            "uf": pa.array(["PE"] * count),
            "amount_cents": pa.array([i % 90_000 + 1 for i in range(count)], pa.int64()),
            "status": status,
            "status_rank": pa.array([3 if i % 4 else 0 for i in range(count)], pa.int16()),
            "payment_type": pa.array(["pix"] * count),
            "created_at": created,
            "expires_at": created,
            "confirmation_seconds": pa.array([i % 50 / 7 for i in range(count)], pa.float64()),
            "updated_at": created,
        }
    )


def fill(store: Store, rows: pa.Table) -> None:
    with store.transaction() as tx:
        tx.append_arrow(PAYMENTS, rows)


def bench_backup(count: int, postgres: str | None) -> None:
    rows = payments_table(count)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = DuckDBStore(folder / "a.duckdb")
        source.migrate()
        fill(source, rows)
        result = backup(source, folder / "bk")
        target = DuckDBStore(folder / "b.duckdb")
        target.migrate()
        restored = restore(target, folder / "bk")
        assert restored.rows["payments"] == count
        source.close()
        target.close()
        # Baselines: DuckDB's own Parquet export and import of the same table.
        conn = duckdb.connect(str(folder / "a.duckdb"))
        started = time.perf_counter()
        conn.execute(f"COPY payments TO '{folder / 'base.parquet'}' (FORMAT parquet)")
        copy_out_s = time.perf_counter() - started
        conn.close()
        conn = duckdb.connect(str(folder / "b.duckdb"))
        conn.execute("DELETE FROM payments")
        started = time.perf_counter()
        conn.execute(
            f"INSERT INTO payments SELECT * FROM read_parquet('{folder / 'base.parquet'}')"
        )
        copy_in_s = time.perf_counter() - started
        conn.close()
        size = sum(t.bytes for t in result.manifest.tables)
    print(f"backup/restore, DuckDB, {count:,} payments (backup {size / 2**20:.0f} MiB)")
    print(f"  backup  {result.seconds:6.2f} s   baseline COPY TO parquet    {copy_out_s:6.2f} s"
          f"   ratio {result.seconds / copy_out_s:.2f}x")  # fmt: skip
    print(f"  restore {restored.seconds:6.2f} s   baseline INSERT read_parquet {copy_in_s:6.2f} s"
          f"   ratio {restored.seconds / copy_in_s:.2f}x   [{load()}]")  # fmt: skip
    if postgres:
        bench_postgres(rows, postgres)


def bench_postgres(rows: pa.Table, url: str) -> None:
    import psycopg

    from pulso.store.postgres import PostgresStore

    schemas = [f"bench_backup_{os.getpid()}_{n}" for n in ("a", "b")]
    with psycopg.connect(url, autocommit=True) as admin:
        for s in schemas:
            admin.execute(f'CREATE SCHEMA "{s}"')
        try:
            sep = "&" if "?" in url else "?"
            a, b = (f"{url}{sep}options=-csearch_path%3D{s}" for s in schemas)
            source = PostgresStore(a)
            source.migrate()
            fill(source, rows)
            with tempfile.TemporaryDirectory() as tmp:
                result = backup(source, Path(tmp) / "bk")
                target = PostgresStore(b)
                target.migrate()
                restored = restore(target, Path(tmp) / "bk")
                with tempfile.TemporaryDirectory() as tmp2:
                    into_duck = DuckDBStore(Path(tmp2) / "x.duckdb")
                    into_duck.migrate()
                    cross = restore(into_duck, Path(tmp) / "bk")
                    into_duck.close()
                copy_out_s, copy_in_s = postgres_copy_baseline(a, b, Path(tmp) / "dump.bin")
            source.close()
            target.close()
        finally:
            for s in schemas:
                admin.execute(f'DROP SCHEMA "{s}" CASCADE')
    n = rows.num_rows
    print(f"backup/restore, PostgreSQL, {n:,} payments")
    print(f"  backup  {result.seconds:6.2f} s   baseline COPY TO binary    {copy_out_s:6.2f} s"
          f"   ratio {result.seconds / copy_out_s:.2f}x")  # fmt: skip
    print(f"  restore {restored.seconds:6.2f} s   baseline COPY FROM binary  {copy_in_s:6.2f} s"
          f"   ratio {restored.seconds / copy_in_s:.2f}x")  # fmt: skip
    print(f"  restore of the same backup into DuckDB {cross.seconds:.2f} s   [{load()}]")


def postgres_copy_baseline(source: str, target: str, dump: Path) -> tuple[float, float]:
    """PostgreSQL's own binary COPY of payments out to a file and back into an empty table."""
    import psycopg

    with psycopg.connect(source) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with dump.open("wb") as out, cursor.copy("COPY payments TO STDOUT (FORMAT binary)") as cp:
            for chunk in cp:
                out.write(chunk)
        copy_out_s = time.perf_counter() - started
    with psycopg.connect(target) as conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM payments")
        started = time.perf_counter()
        with dump.open("rb") as src, cursor.copy("COPY payments FROM STDIN (FORMAT binary)") as cp:
            while chunk := src.read(1 << 20):
                cp.write(chunk)
        conn.commit()
        copy_in_s = time.perf_counter() - started
    return copy_out_s, copy_in_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("PULSO_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    print(load())
    bench_archive(args.events)
    bench_backup(args.payments, args.postgres)


if __name__ == "__main__":
    main()
