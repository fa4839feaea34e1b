"""What a payment costs at the least, against what 50,000 payments/s allows on this machine.

Issue 6 asks the embedded pipeline (local bus + DuckDB, windows + fraud) for >= 50,000
payments/s on the 2-core machine: two CPU-seconds a second, so 40 us of CPU a payment (a
payment is two events: created, then confirmed, failed or expired). This benchmark measures,
on the same generated traffic in one run, the process CPU (all threads) of each part of the
work a payment needs, each at the cheapest this machine does it:

1. bus read: the events read back from the local bus (the durable log), in the pipeline's
   batches of ``--batch-size`` events.
2. decode: today's decoding and validation (msgspec and the domain rules), and beside it the
   parse floor: the same bytes parsed by pyarrow's C++ JSON reader, one thread, into Arrow
   columns, with no validation and no Decimal or datetime conversion (the least any JSON
   decoding costs here).
3. processors alone: the payments fold, the windows and the fraud scoring, writes discarded
   (``bench_stream.processor_seconds``: created events only, so an underestimate).
4. writes: today's DuckDB writes from prebuilt Arrow (``bench_store_floor.run_floor``), and
   the minimal writes any design keeping the same data needs: each event kept, keyed by its
   ``event_id`` (idempotency), each charge's row written once, the windows and fraud rows,
   the commits and a final CHECKPOINT; no per-minute aggregates, no confirmation times, no
   rewrite of a charge completed in a later batch. And the most generous design: the same
   without the events in DuckDB, each kept only in the Parquet raw archive (its Parquet
   encoding measured apart: ``archive Parquet``; it is not in the other sums, since the
   pipeline measured here runs no archiver).
5. baseline, same run and data: the pipeline itself (bench_stream's windows + fraud run, in
   a process of its own): its CPU and wall time per payment.

Then the bounds, each as payments/s with every core of the machine busy all the time (no cost
of sharing cores counted, so they are optimistic): today's parts summed, and the lower bound
(bus read + parse floor + minimal writes, the windows and fraud for free), then with today's
processors, then with the events kept in the archive only.

Last, the generous design is run the pipeline's way, to see what overlapping its parts on this
machine gives: the main thread reads each batch from the bus, parses it with pyarrow and runs
today's payments fold, windows and fraud (on events decoded beforehand, standing in for
columnar ones: no validation is paid) while a writer thread encodes the previous batch's
Parquet archive file and stores its charges once and its windows and fraud rows (no events,
no state snapshots, no offsets). Its payments/s is an upper bound for any redesign that keeps
today's processors.

    python benchmarks/bench_stream_budget.py [--payments 200000] [--batch-size 20000]
                                             [--stores 200] [--smoke]
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store_floor import (
    GOAL,
    Batch,
    insert_new,
    prepare,
    processors_for,
    read_batches,
    run_floor,
    traffic_options,
    write,
)
from bench_stream import fill, processor_seconds, run_child

from pulso.archive.archiver import parquet_bytes
from pulso.bus import open_bus
from pulso.config import load_settings
from pulso.domain.events import decode_event
from pulso.pipeline.factory import pii_key
from pulso.pipeline.processors.payments import PaymentsProcessor
from pulso.store import open_store
from pulso.store.duckdb import to_arrow
from pulso.store.sql import batch_columns
from pulso.store.tables import PAYMENTS, RAW_EVENTS

SMOKE_PAYMENTS = 2_000
PIPELINE_CONFIG = "windows+fraud"
DECODE = "decode today (msgspec + rules)"
PARSE = "parse floor (pyarrow JSON)"
ARCHIVE = "archive Parquet (the raw rows)"
NO_EVENTS = "writes minimal, events not stored"


@dataclass
class Budget:
    """CPU seconds by part over ``payments`` payments, and the pipeline's own run."""

    payments: int
    cores: int
    cpu: dict[str, float] = field(default_factory=dict)
    pipeline_cpu_s: float = 0.0
    pipeline_wall_s: float = 0.0
    overlapped_cpu_s: float = 0.0
    overlapped_wall_s: float = 0.0

    def us(self, part: str) -> float:
        return self.cpu[part] / max(self.payments, 1) * 1e6

    def rate(self, us_per_payment: float) -> float:
        """Payments/s with every core busy on work costing ``us_per_payment`` CPU each."""
        return self.cores * 1e6 / us_per_payment if us_per_payment else 0.0


def cpu_of(action: Callable[[], Any]) -> tuple[float, Any]:
    """(process CPU seconds, result) of ``action()``."""
    started = time.process_time()
    result = action()
    return time.process_time() - started, result


def decode_all(messages: list[list[Any]]) -> list[Any]:
    return [decode_event(m.value) for batch in messages for m in batch]


def parse_floor(messages: list[list[Any]]) -> int:
    """Each batch's payloads parsed by pyarrow's JSON reader (one thread); rows parsed."""
    options = pa_json.ReadOptions(use_threads=False)
    rows = 0
    for batch in messages:
        blob = b"\n".join(m.value for m in batch)
        rows += pa_json.read_json(io.BytesIO(blob), read_options=options).num_rows
    return rows


def charges_once(data_dir: Path, events: list[Any], parts: int) -> list[pa.Table]:
    """Each charge's final row (one fold over every event), in ``parts`` equal slices."""
    folded = PaymentsProcessor(pii_key(load_settings(data_dir=data_dir))).fold(events)
    names, count = batch_columns(PAYMENTS, folded)
    table = to_arrow(PAYMENTS, names, folded)
    size = -(-count // max(parts, 1))
    return [table.slice(i * size, size) for i in range(parts)]


def run_minimal(
    data_dir: Path, batches: list[Batch], charges: list[pa.Table], *, events: bool = True
) -> int:
    """The minimal writes, one transaction a batch, then CHECKPOINT; the payments rows stored.
    ``events=False``: the events are not stored in DuckDB (kept in the Parquet archive only)."""
    store = open_store(load_settings(data_dir=data_dir))
    store.migrate()
    for batch, rows in zip(batches, charges, strict=True):
        with store.transaction() as tx:
            if events:
                insert_new(tx, RAW_EVENTS, batch.raw)
            insert_new(tx, PAYMENTS, rows)
            for writes in batch.processors.values():
                for staged in writes:
                    write(tx, staged)
    store.query("CHECKPOINT")
    [(stored,)] = store.query("SELECT count(*) FROM payments")
    store.close()
    return int(stored)


def write_generous(store: Any, batch: Batch, charges: pa.Table) -> None:
    """One batch of the generous design's writes: its Parquet archive file (encoded), then
    the charges once and the windows and fraud rows in one transaction, no events."""
    parquet_bytes(batch.raw)
    with store.transaction() as tx:
        insert_new(tx, PAYMENTS, charges)
        for writes in batch.processors.values():
            for staged in writes:
                write(tx, staged)


def run_overlapped(
    data_dir: Path,
    template: Path,
    batch_size: int,
    events: list[Any],
    batches: list[Batch],
    charges: list[pa.Table],
) -> tuple[float, float, int]:
    """The generous design run the pipeline's way, (wall, CPU) seconds and the rows the store
    holds (payments + raw events, to check that no event went in): the main thread reads
    a batch from the bus, parses it with pyarrow and runs today's payments fold, windows and
    fraud (on the events decoded beforehand, standing in for columnar ones) while a writer
    thread stores the previous batch (``write_generous``); CHECKPOINT at the end."""
    bus = open_bus(load_settings(data_dir=template))
    consumer = bus.consumer("overlapped", ["payments"])
    store = open_store(load_settings(data_dir=data_dir))
    store.migrate()
    fold = PaymentsProcessor(pii_key(load_settings(data_dir=template))).fold
    others = processors_for(template)
    options = pa_json.ReadOptions(use_threads=False)
    wall, cpu = time.perf_counter(), time.process_time()
    start = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future[None] | None = None
        for batch, rows in zip(batches, charges, strict=True):
            messages = consumer.poll_batch(batch_size, 0.5)
            pa_json.read_json(io.BytesIO(b"\n".join(m.value for m in messages)), options)
            chunk = events[start : start + batch.raw.num_rows]
            start += batch.raw.num_rows
            partitions = [f"{m.topic}:{m.partition}" for m in messages]
            fold(chunk)
            for processor in others:
                keep = [i for i, e in enumerate(chunk) if e.type in processor.event_types]
                processor.prepare([chunk[i] for i in keep], [partitions[i] for i in keep])
            if pending is not None:
                pending.result()
            pending = writer.submit(write_generous, store, batch, rows)
        if pending is not None:
            pending.result()
    store.query("CHECKPOINT")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    [(rows,)] = store.query("SELECT (SELECT count(*) FROM payments) + count(*) FROM raw_events")
    consumer.close()
    bus.close()
    store.close()
    return wall, cpu, int(rows)


def measure(
    tmp: Path, payments: int, stores: int, sim_rate: float, batch_size: int
) -> tuple[Budget, dict[str, int]]:
    """Every part on the same traffic; also the row counts the stores hold (for checking)."""
    template = tmp / "bus"
    made = fill(template, payments, stores, sim_rate)
    pipeline = run_child(PIPELINE_CONFIG, template, tmp, batch_size, None)
    budget = Budget(payments=made["payments"], cores=os.cpu_count() or 1)
    budget.pipeline_cpu_s, budget.pipeline_wall_s = pipeline["cpu_s"], pipeline["seconds"]

    cpu, messages = cpu_of(lambda: read_batches(template, batch_size))
    budget.cpu["bus read"] = cpu
    cpu, events = cpu_of(lambda: decode_all(messages))
    budget.cpu[DECODE] = cpu
    cpu, parsed = cpu_of(lambda: parse_floor(messages))
    budget.cpu[PARSE] = cpu
    _, seconds, _ = processor_seconds(template)
    budget.cpu.update(seconds)
    batches = prepare(template, messages, processors=True)
    charges = charges_once(template, events, len(batches))
    clock, _, stored_today = run_floor(tmp / "today", batches)
    budget.cpu["writes today"] = sum(clock.cpu.values())
    cpu, stored_once = cpu_of(lambda: run_minimal(tmp / "minimal", batches, charges))
    budget.cpu["writes minimal"] = cpu
    cpu, _ = cpu_of(lambda: [parquet_bytes(b.raw) for b in batches])
    budget.cpu[ARCHIVE] = cpu
    cpu, _ = cpu_of(lambda: run_minimal(tmp / "no_events", batches, charges, events=False))
    budget.cpu[NO_EVENTS] = cpu
    wall, cpu, overlapped_rows = run_overlapped(
        tmp / "overlapped", template, batch_size, events, batches, charges
    )
    budget.overlapped_wall_s, budget.overlapped_cpu_s = wall, cpu
    counts = {
        "events": made["events"],
        "parsed": parsed,
        "charges written once": sum(t.num_rows for t in charges),
        "stored today": stored_today,
        "stored once": stored_once,
        "stored overlapped (payments + events)": overlapped_rows,
        "pipeline payments": pipeline["payments"],
    }
    return budget, counts


PROCESSORS = ("payments fold", "windows", "fraud score (created only)")


def report(budget: Budget, out: Callable[[str], None] = print) -> None:
    goal_us = budget.cores * 1e6 / GOAL
    out(f"{'part':<36} {'CPU us/payment':>15}")
    for part in budget.cpu:
        out(f"{part:<36} {budget.us(part):>15.2f}")
    processors = sum(budget.us(p) for p in PROCESSORS if p in budget.cpu)
    today = budget.us("bus read") + budget.us(DECODE) + processors + budget.us("writes today")
    floor = budget.us("bus read") + budget.us(PARSE) + budget.us("writes minimal")
    pipe_cpu = budget.pipeline_cpu_s / max(budget.payments, 1) * 1e6
    pipe_rate = budget.payments / budget.pipeline_wall_s if budget.pipeline_wall_s else 0.0
    out(
        f"baseline, the pipeline ({PIPELINE_CONFIG}, own process, same data): "
        f"{pipe_cpu:.1f} us CPU a payment, {pipe_rate:,.0f} payments/s "
        f"({budget.pipeline_cpu_s / budget.pipeline_wall_s if budget.pipeline_wall_s else 0:.2f}"
        f" cores busy)"
    )
    out(f"budget: {GOAL:,} payments/s on {budget.cores} cores = {goal_us:.1f} us CPU a payment")
    out(
        f"today's parts summed (bus + decode + processors + writes): {today:.1f} us "
        f"= {today / goal_us:.2f}x the budget -> at most {budget.rate(today):,.0f} payments/s "
        f"(pipeline measured: {pipe_rate / budget.rate(today) if today else 0:.2f} of it)"
    )
    out(
        f"lower bound (bus read + parse floor + minimal writes; windows, fraud free): "
        f"{floor:.1f} us = {floor / goal_us:.2f}x the budget -> at most "
        f"{budget.rate(floor):,.0f} payments/s"
    )
    out(
        f"lower bound + today's processors ({processors:.1f} us): {floor + processors:.1f} us "
        f"= {(floor + processors) / goal_us:.2f}x the budget -> at most "
        f"{budget.rate(floor + processors):,.0f} payments/s"
    )
    archive_only = (
        budget.us("bus read") + budget.us(PARSE) + budget.us(NO_EVENTS) + budget.us(ARCHIVE)
    )
    out(
        f"events kept in the Parquet archive only (not in DuckDB), + today's processors: "
        f"{archive_only + processors:.1f} us = {(archive_only + processors) / goal_us:.2f}x "
        f"the budget -> at most {budget.rate(archive_only + processors):,.0f} payments/s"
    )
    if budget.overlapped_wall_s:
        rate = budget.payments / budget.overlapped_wall_s
        out(
            f"that design run overlapped here (bus + pyarrow parse + today's processors | "
            f"writer thread: charges once, windows, fraud, archive Parquet): {rate:,.0f} "
            f"payments/s, {budget.overlapped_cpu_s / budget.overlapped_wall_s:.2f} cores busy, "
            f"{budget.overlapped_cpu_s / max(budget.payments, 1) * 1e6:.1f} us CPU a payment "
            f"= {rate / GOAL:.2f} of the goal, {rate / pipe_rate if pipe_rate else 0:.2f}x "
            f"the pipeline"
        )


def main() -> None:
    parser = traffic_options(__doc__)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_PAYMENTS:,} payments")
    args = parser.parse_args()
    payments = SMOKE_PAYMENTS if args.smoke else args.payments
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        budget, counts = measure(Path(tmp), payments, args.stores, args.sim_rate, args.batch_size)
    print(
        f"{counts['events']:,} events, {budget.payments:,} payments, {args.stores} stores, "
        f"batches of {args.batch_size:,}; rows: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    report(budget)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
