"""How many payments the embedded store holds before DuckDB's primary-key indexes fill its
memory limit.

DuckDB keeps each table's primary key in an ART index, and an insert needs the whole index
in memory, within ``memory_limit`` (``PULSO_DUCKDB_MEMORY_LIMIT``, 512MB by default); a
checkpoint does not free it for the next insert. The payment stream stores, per payment,
two ``raw_events`` rows (UUID key) and one ``payments`` row (text key), so the indexes grow
with every payment kept until the store's writes fail with DuckDB's "Out of Memory Error".

For each ``--limits`` value, on a fresh store (``open_store`` + ``migrate``, the pipeline's
settings but that limit): the rows the pipeline writes for a batch of ``--batch`` payments
(``bench_store_floor.prepare`` on generated traffic), written again and again with fresh
keys, one transaction a batch (``raw_events`` insert-if-new, ``payments`` upsert), until a
write fails or ``--most`` payments are stored. Prints the payments stored at the failure and
the index memory per payment that implies, then what the default limit holds.

Baseline, same run: the same rows into copies of the two tables without a primary key,
under the smallest limit, up to twice the payments the keyed tables held (they do not fail:
the indexes are the cause).

    python benchmarks/bench_duckdb_capacity.py [--limits 64MB 128MB] [--batch 20000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store_floor import Staged, insert_new, prepare, read_batches, write
from bench_stream import fill

from pulso.config import load_settings
from pulso.errors import StoreError
from pulso.store import open_store
from pulso.store.duckdb import _STAGED, DEFAULT_MEMORY_LIMIT, MEMORY_HINT, memory_limit_bytes
from pulso.store.tables import PAYMENTS, RAW_EVENTS


def limit_bytes(text: str) -> int:
    size = memory_limit_bytes(text)
    if size is None:
        raise ValueError(f"not a memory size: {text!r}")
    return size


def fresh_keys(raw: pa.Table, payments: pa.Table, round_: int) -> tuple[pa.Table, pa.Table]:
    """The batch with new ``event_id``s and ``charge_id``s (round ``round_``)."""
    count = raw.num_rows
    storage = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), count, [None, pa.py_buffer(os.urandom(16 * count))]
    )
    ids = pa.ExtensionArray.from_storage(pa.uuid(), storage)
    raw = raw.set_column(raw.schema.get_field_index("event_id"), "event_id", ids)
    charges = [f"{c}-{round_}" for c in payments.column("charge_id").to_pylist()]
    column = payments.schema.get_field_index("charge_id")
    return raw, payments.set_column(column, "charge_id", pa.array(charges, pa.string()))


def fill_until_full(
    data_dir: Path, limit: str, raw: pa.Table, payments: pa.Table, most: int, *, keys: bool
) -> tuple[int, str]:
    """Payments stored before a write failed (or ``most``), and the failure ("" if none)."""
    store = open_store(load_settings(data_dir=data_dir, duckdb_memory_limit=limit))
    store.migrate()
    if not keys:
        with store.transaction() as tx:
            for name in ("raw_events", "payments"):
                tx.execute(f"CREATE TABLE {name}_plain AS SELECT * FROM {name} LIMIT 0")
    stored, round_, failure = 0, 0, ""
    try:
        while stored < most:
            round_ += 1
            batch_raw, batch_payments = fresh_keys(raw, payments, round_)
            try:
                with store.transaction() as tx:
                    if keys:
                        insert_new(tx, RAW_EVENTS, batch_raw)
                        write(tx, Staged(PAYMENTS, "upsert", batch_payments))
                    else:
                        for table, rows in ((RAW_EVENTS, batch_raw), (PAYMENTS, batch_payments)):
                            names = ", ".join(f'"{n}"' for n in rows.column_names)
                            tx._run_staged(  # type: ignore[attr-defined]
                                table,
                                rows,
                                f"INSERT INTO {table.name}_plain ({names}) "
                                f"SELECT {names} FROM {_STAGED}",
                            )
            except StoreError as e:
                failure = str(e).splitlines()[0].replace(MEMORY_HINT, " [+ pulso's hint]")
                break
            stored += batch_payments.num_rows
    finally:
        store.close()
    return stored, failure


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limits", nargs="+", default=["64MB", "128MB"])
    parser.add_argument("--batch", type=int, default=20_000, help="payments a transaction")
    parser.add_argument("--most", type=int, default=20_000_000, help="stop after this many")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        made = fill(Path(tmp) / "bus", args.batch, 200, 1_000.0)
        messages = list(itertools.chain.from_iterable(read_batches(Path(tmp) / "bus", 10**9)))
        [batch] = prepare(Path(tmp) / "bus", [messages], processors=False)
        raw, payments = batch.raw, batch.payment_rows
        print(
            f"a batch: {made['payments']:,} payments -> {raw.num_rows:,} raw_events rows and "
            f"{payments.num_rows:,} payments rows; written with fresh keys until a write fails"
        )
        held: dict[str, int] = {}
        for limit in args.limits:
            started = time.perf_counter()
            stored, failure = fill_until_full(
                Path(tmp) / f"keys_{limit}", limit, raw, payments, args.most, keys=True
            )
            held[limit] = stored
            per_payment = limit_bytes(limit) / stored if stored else 0.0
            print(
                f"limit {limit:>6}: {stored:>11,} payments stored "
                f"({time.perf_counter() - started:.0f} s), then: {failure or 'no failure'}; "
                f"{per_payment:,.0f} B of the limit a payment"
            )
        smallest = min(args.limits, key=limit_bytes)
        target = 2 * held[smallest]
        stored, failure = fill_until_full(
            Path(tmp) / "plain", smallest, raw, payments, target, keys=False
        )
        print(
            f"baseline, no primary keys, limit {smallest}: {stored:,} payments stored "
            f"(asked {target:,}), then: {failure or 'no failure'}"
        )
        largest = max(args.limits, key=limit_bytes)
        if held[largest]:
            rate = limit_bytes(largest) / held[largest]
            default = limit_bytes(DEFAULT_MEMORY_LIMIT)
            print(
                f"the default limit ({DEFAULT_MEMORY_LIMIT}) holds about "
                f"{default / rate:,.0f} payments at {rate:,.0f} B each (from {largest}; less "
                f"with the other tables' keys and the buffer pool's other uses)"
            )


if __name__ == "__main__":
    main()
