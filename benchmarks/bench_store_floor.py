"""What DuckDB alone costs per payment: the floor under the embedded pipeline's throughput.

Issue 6 asks for >= 50,000 payments/s through the embedded pipeline (local bus + DuckDB,
windows + fraud; benchmarks/bench_stream.py) on 2 cores. Part of each batch's time is the
DuckDB writes themselves, whatever Python does around them; this benchmark measures that
part alone, so the pipeline's figure can be read against it (the pipeline cannot be faster
than its writes, minus what it overlaps with them).

1. Generates traffic exactly as bench_stream.py does (its ``fill()``: the same generator,
   seed and stores) into a temporary local bus and reads it back in batches of
   ``--batch-size`` events (the pipeline's default: 20,000).
2. Untimed: decodes the events and builds, per batch, the Arrow tables the pipeline writes:
   ``raw_events`` rows (``_raw_columns``), the payments fold, and (``--no-processors`` skips
   them) the rows the windows and fraud processors would write, captured by a recording
   transaction from their ``prepare()`` writes.
3. Timed, on a fresh DuckDB store (``open_store`` + ``migrate``, the pipeline's settings), each
   batch in one transaction, in the pipeline's order: ``raw_events`` insert_new (the probed
   plain INSERT the pipeline takes for big batches), the payments upsert, the confirmation
   times of charges created in an earlier batch, the ``payment_minutes`` refresh, the windows
   and fraud rows, then COMMIT; at the end a ``CHECKPOINT`` (a sustained run must get its WAL
   into the file: it is counted). Not written: the processors' state snapshots and the offsets
   checkpoint (small next to the rows; see bench_stream for the whole pipeline).
4. Baseline in the same run: the same ``raw_events`` rows by plain ``INSERT`` into a table
   without a primary key (what storing the events would cost without idempotency), one
   transaction per batch and the final CHECKPOINT, on its own fresh store.

Prints each part's seconds, µs per payment and process CPU (DuckDB's threads included), the
total wall, CPU/wall (cores used), the floor in payments/s beside the goal (50,000) and the
ratio floor/baseline; the payments rows written (a charge whose terminal event falls in a
later batch is written twice) and the commits that took DuckDB's automatic checkpoint (> 10x
the median commit).

    python benchmarks/bench_store_floor.py [--payments 200000] [--batch-size 20000]
                                           [--stores 200] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stream import _cpu_s, fill, fraud_available

from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.domain.events import decode_event
from pulso.pipeline.factory import pii_key, window_config
from pulso.pipeline.processors.payments import PaymentsProcessor, complete_stored
from pulso.pipeline.processors.windows import WindowsProcessor
from pulso.pipeline.runner import _raw_columns
from pulso.store import open_store
from pulso.store.duckdb import (
    _STAGED,
    PROBE_MIN_ROWS,
    _uuid_key,
    to_arrow,
    upsert_sql,
)
from pulso.store.sql import batch_columns, column_list, insert_new_sql
from pulso.store.tables import PAYMENTS, RAW_EVENTS, ColumnBatch, Table

GOAL = 50_000
"""payments/s the embedded pipeline must reach with windows + fraud (issue 6)."""
SMOKE_PAYMENTS = 2_000
PARTS = (
    "raw_events",
    "payments upsert",
    "confirmation + minutes",
    "windows",
    "fraud",
    "commit",
    "final CHECKPOINT",
)


@dataclass
class Staged:
    """One write, ready to run: an Arrow table and how it goes into ``table``, or (``kind``
    "execute") a statement and its parameters."""

    table: Table | None
    kind: str  # "insert_new" | "upsert" | "execute"
    rows: pa.Table | None
    sql: str = ""
    params: tuple[Any, ...] = ()


@dataclass
class Batch:
    """What the pipeline writes for one batch, built before the clock starts."""

    payments: int  # pix.charge.created events
    raw: pa.Table
    payment_rows: pa.Table
    payment_columns: ColumnBatch  # for the minutes' bounds (read in the timed part)
    processors: dict[str, list[Staged]] = field(default_factory=dict)


class RecordingTx:
    """Stands in for the store transaction a processor's ``prepare()`` write gets: keeps the
    rows it would insert or upsert, as Arrow typed like the target table."""

    def __init__(self) -> None:
        self.writes: list[Staged] = []

    def insert_new(self, table: Table, rows: ColumnBatch) -> int:
        return self._keep(table, "insert_new", rows)

    def upsert(self, table: Table, rows: ColumnBatch) -> None:
        self._keep(table, "upsert", rows)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.writes.append(Staged(None, "execute", None, sql, params))

    def _keep(self, table: Table, kind: str, rows: ColumnBatch) -> int:
        columns, count = batch_columns(table, rows)
        if count:
            self.writes.append(Staged(table, kind, to_arrow(table, columns, rows)))
        return count

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(
            f"RecordingTx.{name}: only insert_new, upsert and execute are recorded"
        )


def read_batches(data_dir: Path, batch_size: int) -> list[list[Any]]:
    """Every message of the bus in ``data_dir``, in the pipeline's batches."""
    bus = open_bus(load_settings(data_dir=data_dir))
    consumer = bus.consumer("floor", ["payments"])
    batches: list[list[Any]] = []
    while batch := consumer.poll_batch(batch_size, 0.5):
        batches.append(batch)
    consumer.close()
    bus.close()
    return batches


def processors_for(data_dir: Path) -> list[Any]:
    """Fresh windows and fraud processors with ``data_dir``'s settings (as the pipeline's)."""
    settings = load_settings(data_dir=data_dir)
    found: list[Any] = [WindowsProcessor(window_config(settings))]
    if fraud_available():
        from pulso.fraud.thresholds import thresholds_from_settings
        from pulso.pipeline.processors.fraud import FraudProcessor

        found.append(FraudProcessor(thresholds_from_settings(settings), pii_key(settings)))
    return found


def prepare(data_dir: Path, messages: list[list[Any]], processors: bool) -> list[Batch]:
    """Decode and build each batch's Arrow tables (and the processors' rows), untimed; the
    settings (and the PII key) of ``data_dir``."""
    payments = PaymentsProcessor(pii_key(load_settings(data_dir=data_dir)))
    others = processors_for(data_dir) if processors else []
    prepared: list[Batch] = []
    for batch in messages:
        events = [decode_event(m.value) for m in batch]
        partitions = [f"{m.topic}:{m.partition}" for m in batch]
        raw = _raw_columns(events, batch, datetime.now(UTC))
        raw_names, _ = batch_columns(RAW_EVENTS, raw)
        folded = payments.fold(events)
        pay_names, _ = batch_columns(PAYMENTS, folded)
        staged = Batch(
            payments=sum(e.type == "pix.charge.created" for e in events),
            raw=to_arrow(RAW_EVENTS, raw_names, raw),
            payment_rows=to_arrow(PAYMENTS, pay_names, folded),
            payment_columns=folded,
        )
        for processor in others:
            keep = [i for i, e in enumerate(events) if e.type in processor.event_types]
            write = processor.prepare([events[i] for i in keep], [partitions[i] for i in keep])
            recorder = RecordingTx()
            write(recorder)
            staged.processors[processor.name] = recorder.writes
        prepared.append(staged)
    return prepared


def insert_new(tx: Any, table: Table, rows: pa.Table) -> int:
    """``StoreTx.insert_new`` of Arrow rows, the branch the pipeline takes for their count."""
    columns = tuple(rows.column_names)
    if rows.num_rows >= PROBE_MIN_ROWS and _uuid_key(table):
        return int(tx._insert_new_probed(table, columns, rows))
    return int(tx._run_staged(table, rows, insert_new_sql(table, columns, _STAGED))[0][0])


def write(tx: Any, staged: Staged) -> None:
    if staged.kind == "execute":
        tx.execute(staged.sql, staged.params)
        return
    assert staged.table is not None and staged.rows is not None
    if staged.kind == "insert_new":
        insert_new(tx, staged.table, staged.rows)
    else:
        sql = upsert_sql(staged.table, tuple(staged.rows.column_names), _STAGED)
        tx._run_staged(staged.table, staged.rows, sql)


class Clock:
    """Wall and process CPU seconds per part."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(PARTS, 0.0)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), _cpu_s()
        yield
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += _cpu_s() - cpu


def run_floor(data_dir: Path, batches: list[Batch]) -> tuple[Clock, list[float], int]:
    """The pipeline's writes batch by batch: (clock, commit seconds, payments rows stored)."""
    store = open_store(load_settings(data_dir=data_dir))
    store.migrate()
    clock = Clock()
    commits: list[float] = []
    for batch in batches:
        wall, cpu = time.perf_counter(), _cpu_s()
        with store.transaction() as tx:  # BEGIN here, COMMIT on leaving: the "commit" part
            begun, begun_cpu = time.perf_counter(), _cpu_s()
            with clock.part("raw_events"):
                insert_new(tx, RAW_EVENTS, batch.raw)
            with clock.part("payments upsert"):
                write(tx, Staged(PAYMENTS, "upsert", batch.payment_rows))
            with clock.part("confirmation + minutes"):
                complete_stored(tx, batch.payment_columns)
            for name, writes in batch.processors.items():
                with clock.part(name):
                    for staged in writes:
                        write(tx, staged)
            ending, ending_cpu = time.perf_counter(), _cpu_s()
        seconds = time.perf_counter() - ending + begun - wall
        commits.append(seconds)
        clock.wall["commit"] += seconds
        clock.cpu["commit"] += _cpu_s() - ending_cpu + begun_cpu - cpu
    with clock.part("final CHECKPOINT"):
        store.query("CHECKPOINT")
    [(rows,)] = store.query("SELECT count(*) FROM payments")
    store.close()
    return clock, commits, int(rows)


def run_baseline(data_dir: Path, batches: list[Batch]) -> tuple[float, float]:
    """The same raw rows by plain INSERT into a table without a key: (wall, CPU) seconds."""
    store = open_store(load_settings(data_dir=data_dir))
    store.migrate()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE raw_events_plain AS SELECT * FROM raw_events LIMIT 0")
    names = column_list(tuple(batches[0].raw.column_names)) if batches else ""
    sql = f"INSERT INTO raw_events_plain ({names}) SELECT {names} FROM {_STAGED}"
    wall, cpu = time.perf_counter(), _cpu_s()
    for batch in batches:
        with store.transaction() as tx:
            tx._run_staged(RAW_EVENTS, batch.raw, sql)
    store.query("CHECKPOINT")
    wall, cpu = time.perf_counter() - wall, _cpu_s() - cpu
    store.close()
    return wall, cpu


def automatic_checkpoints(commits: list[float]) -> tuple[int, float]:
    """Commits over 10x the median (DuckDB checkpointing past its WAL threshold)."""
    if not commits:
        return 0, 0.0
    slow = [c for c in commits if c > 10 * statistics.median(commits)]
    return len(slow), sum(slow)


def report(
    clock: Clock,
    commits: list[float],
    payments_rows: int,
    baseline: tuple[float, float],
    batches: list[Batch],
    out: Callable[[str], None] = print,
) -> None:
    payments = sum(b.payments for b in batches)
    events = sum(b.raw.num_rows for b in batches)
    wall, cpu = sum(clock.wall.values()), sum(clock.cpu.values())
    out(f"{'part':<17} {'wall s':>8} {'us/payment':>11} {'CPU s':>8}")
    for name in PARTS:
        if clock.wall[name] or name in ("raw_events", "commit"):
            out(
                f"{name:<17} {clock.wall[name]:>8.2f} "
                f"{clock.wall[name] / max(payments, 1) * 1e6:>11.2f} {clock.cpu[name]:>8.2f}"
            )
    floor = payments / wall if wall else 0.0
    base_wall, base_cpu = baseline
    base_rate = payments / base_wall if base_wall else 0.0
    out(
        f"total: {wall:.2f} s wall, {cpu:.2f} s CPU, CPU/wall {cpu / wall if wall else 0:.2f} "
        f"cores; {wall / max(payments, 1) * 1e6:.2f} us/payment"
    )
    out(
        f"floor: {floor:,.0f} payments/s ({events / wall if wall else 0:,.0f} events/s); "
        f"goal {GOAL:,} payments/s: floor/goal {floor / GOAL:.2f}"
    )
    out(
        f"baseline (plain INSERT of the raw rows, no key, + CHECKPOINT): {base_wall:.2f} s wall, "
        f"CPU/wall {base_cpu / base_wall if base_wall else 0:.2f}, {base_rate:,.0f} payments/s; "
        f"floor/baseline {floor / base_rate if base_rate else 0:.2f}"
    )
    written = sum(b.payment_rows.num_rows for b in batches)
    extra: dict[str, int] = {}
    for batch in batches:
        for writes in batch.processors.values():
            for staged in writes:
                if staged.table is not None and staged.rows is not None:
                    name = staged.table.name
                    extra[name] = extra.get(name, 0) + staged.rows.num_rows
    out(
        f"rows written: raw_events {events:,}, payments {written:,}"
        + "".join(f", {name} {count:,}" for name, count in sorted(extra.items()))
    )
    slow, slow_s = automatic_checkpoints(commits)
    out(
        f"payments rows written {written:,} for {payments_rows:,} charges stored "
        f"({written - payments_rows:,} written twice across batches)"
    )
    out(
        f"automatic checkpoints (commit > 10x median {statistics.median(commits) * 1e3:.1f} ms): "
        f"{slow} taking {slow_s:.2f} s of {sum(commits):.2f} s of commits"
        if commits
        else "no commits"
    )


def traffic_options(description: str | None) -> argparse.ArgumentParser:
    """A parser with the options of the traffic these benchmarks generate and batch."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=200_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument(
        "--sim-rate", type=float, default=1_000.0, help="simulated payments/s (event-time span)"
    )
    parser.add_argument("--batch-size", type=int, default=20_000)
    return parser


def main() -> None:
    parser = traffic_options(__doc__)
    parser.add_argument(
        "--no-processors", action="store_true", help="skip the windows and fraud rows"
    )
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_PAYMENTS:,} payments")
    args = parser.parse_args()
    payments = SMOKE_PAYMENTS if args.smoke else args.payments
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        made = fill(Path(tmp) / "bus", payments, args.stores, args.sim_rate)
        messages = read_batches(Path(tmp) / "bus", args.batch_size)
        batches = prepare(Path(tmp) / "bus", messages, processors=not args.no_processors)
        del messages
        print(
            f"generated {made['events']:,} events ({made['payments']:,} payments, "
            f"{args.stores} stores) with {made['generator']}, {len(batches)} batches of "
            f"<= {args.batch_size:,}, prepared in {time.perf_counter() - started:.1f} s; "
            f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs"
        )
        baseline = run_baseline(Path(tmp) / "baseline", batches)
        clock, commits, rows = run_floor(Path(tmp) / "floor", batches)
        report(clock, commits, rows, baseline, batches)
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
