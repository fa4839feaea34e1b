"""How many payments the embedded store holds within DuckDB's memory limit, with event ids
in time order (UUIDv7, as pulso makes them) and in random order (UUIDv4).

DuckDB keeps each table's primary key in an ART index, buffer-managed within
``memory_limit`` (``PULSO_DUCKDB_MEMORY_LIMIT``, 512MB by default). The payment stream
stores, per payment, two ``raw_events`` rows (UUID key) and one ``payments`` row (text key).
Inserting keys in time order touches the index's newest corner; keys in random order touch
all of it, and once it no longer fits in the limit the store's writes fail with DuckDB's
"Out of Memory Error".

For each ``--limits`` value, on a fresh store (``open_store`` + ``migrate``, the pipeline's
settings but that limit): the rows the pipeline writes for a batch of ``--batch`` payments
(``bench_store_floor.prepare`` on generated traffic), written again and again with fresh
keys (``--ids v7``: UUIDv7 ids 4 s later each round; ``v4``: random ids), one transaction a
batch (``raw_events`` insert-if-new, ``payments`` upsert), until a write fails or ``--most``
payments are stored. Prints the payments stored and the failure, if any.

Baseline, same run: the same rows into copies of the two tables without a primary key,
under the smallest limit at which the keyed tables failed, up to twice the payments they held
there (skipped when none failed).

    python benchmarks/bench_duckdb_capacity.py [--ids v7|v4] [--limits 128MB 512MB]
                                               [--batch 20000] [--most 5000000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store_floor import Staged, insert_new, prepare, read_batches, write
from bench_stream import fill

from pulso.config import load_settings
from pulso.domain.ids import uuid7
from pulso.errors import StoreError
from pulso.store import open_store
from pulso.store.duckdb import _STAGED, MEMORY_HINT
from pulso.store.tables import PAYMENTS, RAW_EVENTS

T0_MS = 1_795_000_000_000  # 2026-11-18 UTC
ROUND_MS = 4_000  # a round's events span 4 s, as 20,000 payments do at 5,000 payments/s


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$")
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def limit_bytes(text: str) -> int:
    """A memory limit in bytes as DuckDB reads it (MB = 10^6 B, MiB = 2^20 B)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a memory size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def fresh_keys(
    raw: pa.Table, payments: pa.Table, round_: int, *, ordered: bool = True
) -> tuple[pa.Table, pa.Table]:
    """The batch with new ``charge_id``s (round ``round_``) and ``event_id``s: UUIDv7 later
    in time each round (``ordered``, as the pipeline's ids are), else random UUIDv4."""
    start_ms = T0_MS + round_ * ROUND_MS
    step = ROUND_MS / max(raw.num_rows, 1)
    if ordered:
        ids = [uuid7(start_ms + int(i * step)).bytes for i in range(raw.num_rows)]
    else:
        ids = [uuid.uuid4().bytes for _ in range(raw.num_rows)]
    storage = pa.array(ids, pa.binary(16))
    event_ids = pa.ExtensionArray.from_storage(pa.uuid(), storage)
    raw = raw.set_column(raw.schema.get_field_index("event_id"), "event_id", event_ids)
    charges = [f"{c}-{round_}" for c in payments.column("charge_id").to_pylist()]
    column = payments.schema.get_field_index("charge_id")
    return raw, payments.set_column(column, "charge_id", pa.array(charges, pa.string()))


def fill_until_full(
    data_dir: Path,
    limit: str,
    raw: pa.Table,
    payments: pa.Table,
    most: int,
    *,
    keys: bool,
    ordered: bool = True,
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
            batch_raw, batch_payments = fresh_keys(raw, payments, round_, ordered=ordered)
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
    parser.add_argument("--ids", choices=["v7", "v4"], default="v7", help="event id order")
    parser.add_argument("--limits", nargs="+", default=["128MB", "512MB"])
    parser.add_argument("--batch", type=int, default=20_000, help="payments a transaction")
    parser.add_argument("--most", type=int, default=5_000_000, help="stop after this many")
    args = parser.parse_args()
    ordered = args.ids == "v7"
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        made = fill(Path(tmp) / "bus", args.batch, 200, 1_000.0)
        messages = list(itertools.chain.from_iterable(read_batches(Path(tmp) / "bus", 10**9)))
        [batch] = prepare(Path(tmp) / "bus", [messages], processors=False)
        raw, payments = batch.raw, batch.payment_rows
        print(
            f"a batch: {made['payments']:,} payments -> {raw.num_rows:,} raw_events rows and "
            f"{payments.num_rows:,} payments rows; written with fresh keys ({args.ids} event "
            f"ids) until a write fails or {args.most:,} payments are stored"
        )
        held: dict[str, int] = {}
        for limit in args.limits:
            started = time.perf_counter()
            stored, failure = fill_until_full(
                Path(tmp) / f"keys_{limit}",
                limit,
                raw,
                payments,
                args.most,
                keys=True,
                ordered=ordered,
            )
            held[limit] = stored
            print(
                f"limit {limit:>6}: {stored:>11,} payments stored "
                f"({time.perf_counter() - started:.0f} s), then: {failure or 'no failure'}"
                + (
                    f"; {limit_bytes(limit) / stored:,.0f} B of the limit a payment"
                    if failure
                    else ""
                )
            )
        failed = [limit for limit in args.limits if held[limit] < args.most]
        if not failed:
            print("no keyed run failed: no baseline to compare with")
            return
        smallest = min(failed, key=limit_bytes)
        target = 2 * held[smallest]
        stored, failure = fill_until_full(
            Path(tmp) / "plain", smallest, raw, payments, target, keys=False, ordered=ordered
        )
        print(
            f"baseline, no primary keys, limit {smallest}: {stored:,} payments stored "
            f"(asked {target:,}), then: {failure or 'no failure'}"
        )


if __name__ == "__main__":
    main()
