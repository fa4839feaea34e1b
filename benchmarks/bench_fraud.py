"""Fraud scoring rate beside a decode-only baseline of the same events, and the detector's
figures on labelled traffic (the ``pulso fraud evaluate`` numbers).

Measured in one run, on the same encoded events (one simulated day of labelled traffic):

1. **Baseline**: ``decode_event`` of every record (what the pipeline does anyway).
2. **Decode + observe**: the same, then ``Detector.observe`` per event (the per-event API).
3. **Decode + score**: the same, then ``Detector.score`` per batch of 20,000 events (the
   pipeline's path: one loop per batch, a verdict object only for what gets written).
4. **Scoring CPU per payment**: ``FraudProcessor.score`` alone on the created charges in
   batches of 20,000, as ``bench_stream.py``'s "processor CPU alone" measures it, beside
   ``PaymentsProcessor.fold`` on the same batches (both in CPU time, so the ratio holds
   under load). Issue 6 asks for about 3 µs of fraud scoring per payment.
5. **Processor into DuckDB**: ``FraudProcessor.process`` per batch of 20,000 decoded events
   inside a store transaction (alerts and ``fraud_scores`` rows), plus its snapshot, as the
   runner does per batch.
6. **Evaluation**: precision, recall, F1, false alarms per 10,000 normal payments.

    python benchmarks/bench_fraud.py [--payments 100000] [--seed 42] [--anomaly-rate 1%]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pulso.config import Settings
from pulso.domain.events import Event, decode_event, encode_event
from pulso.fraud.evaluate import (
    evaluate,
    evaluation_config,
    evaluation_detector,
    evaluation_start,
    labelled_events,
    percentile,
)
from pulso.fraud.thresholds import FraudThresholds
from pulso.pipeline.processors.fraud import FraudProcessor
from pulso.pipeline.processors.payments import PaymentsProcessor
from pulso.sources.stream_generator import (
    SimulatedClock,
    StreamConfig,
    generate_stream,
    parse_share,
)
from pulso.store import open_store

BATCH = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--anomaly-rate", default="1%")
    args = parser.parse_args()
    thresholds = FraudThresholds()
    config = evaluation_config(args.payments, parse_share(args.anomaly_rate), args.seed, 200)
    events = labelled_events(config)
    records = [encode_event(e) for e in events]
    payments = sum(1 for e in events if e.type == "pix.charge.created")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    print(f"{len(records):,} events ({payments:,} payments), seed {args.seed}\n")

    started = time.perf_counter()
    for record in records:
        decode_event(record)
    decode_s = time.perf_counter() - started

    detector = evaluation_detector(thresholds)
    observe = detector.observe
    started = time.perf_counter()
    for record in records:
        observe(decode_event(record))
    observed_s = time.perf_counter() - started

    detector = evaluation_detector(thresholds)
    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        batch = [decode_event(r) for r in records[start : start + BATCH]]
        detector.score(batch, thresholds.record_score)
    scored_s = time.perf_counter() - started
    started = time.perf_counter()
    blob = detector.snapshot()
    snapshot_s = time.perf_counter() - started

    fold_us, score_us = _cpu_per_payment(events, thresholds)
    processor_s, store_rate = _processor(events, thresholds)

    print(f"{'decode only (baseline)':34} {payments / decode_s:>10,.0f} payments/s")
    for name, seconds in (
        ("decode + observe (per event)", observed_s),
        ("decode + score", scored_s),
    ):
        print(
            f"{name:34} {payments / seconds:>10,.0f} payments/s  "
            f"(x{decode_s / seconds:.2f} of the baseline; scoring alone "
            f"{payments / (seconds - decode_s):,.0f} payments/s)"
        )
    print(
        f"{'CPU per payment, created only':34} fraud score {score_us:.2f} us, payments fold "
        f"{fold_us:.2f} us (x{score_us / fold_us:.2f} the fold; issue 6: ~3 us)"
    )
    print(
        f"{'processor into DuckDB, per 20k':34} {store_rate:>10,.0f} payments/s  "
        f"(x{decode_s / processor_s:.2f} of the baseline, snapshots included)"
    )
    print(
        f"state at the end: {len(blob) / 1e6:.2f} MB, snapshot {1000 * snapshot_s:.1f} ms "
        f"({detector.sizes})\n"
    )

    _live_rate_state(thresholds)

    result = evaluate(events, thresholds)
    o = result.overall
    print(
        f"evaluation, seed {args.seed}: precision {o.precision:.3f}, recall {o.recall:.3f}, "
        f"F1 {o.f1:.3f}; false alarms {result.false_alarms_per_10k:.2f} per 10,000 normal"
    )
    for kind, score in result.by_kind.items():
        print(
            f"  {kind:20} recall {score.recall:.3f}  precision {score.precision:.3f}  "
            f"F1 {score.f1:.3f}  ({score.labelled} labelled)"
        )
    print(
        f"detection delay p50 {percentile(result.delays_s, 0.5):.1f} s, "
        f"p99 {percentile(result.delays_s, 0.99):.1f} s (event time); batch of 1,000 events "
        f"p99 {1000 * percentile(result.batch_latencies_s, 0.99):.1f} ms"
    )


def _live_rate_state(thresholds: FraudThresholds, rate: float = 5_000.0) -> None:
    """State and snapshot cost at a live rate: almost every payer is new, so the payer table
    fills to ``max_payers`` and each batch dirties a batch's worth of payers."""
    config = StreamConfig(rate=rate, duration_s=40.0, anomaly_rate=0.005, n_stores=2_000)
    detector = evaluation_detector(thresholds)
    events = list(generate_stream(config, SimulatedClock(evaluation_start())))
    snapshot_ms: list[float] = []
    size = 0
    for start in range(0, len(events), 2_000):  # ~200 ms of traffic per batch at 5,000/s
        detector.score(events[start : start + 2_000], thresholds.record_score)
        began = time.perf_counter()
        size = len(detector.snapshot())
        snapshot_ms.append(1000 * (time.perf_counter() - began))
    steady = snapshot_ms[len(snapshot_ms) // 2 :]
    print(
        f"at {rate:,.0f} payments/s ({len(events):,} events, batches of 2,000): state "
        f"{size / 1e6:.1f} MB, {detector.sizes['payers']:,} payers "
        f"({detector.forgotten_payers:,} forgotten at the cap); snapshot per batch "
        f"p50 {percentile(steady, 0.5):.1f} ms, max {max(steady):.1f} ms\n"
    )


def _cpu_per_payment(events: list[Event], thresholds: FraudThresholds) -> tuple[float, float]:
    """CPU µs per payment of ``PaymentsProcessor.fold`` and ``FraudProcessor.score`` on the
    created charges in batches of 20,000 (``bench_stream.py``'s "processor CPU alone")."""
    created = [e for e in events if e.type == "pix.charge.created"]
    batches = [created[i : i + BATCH] for i in range(0, len(created), BATCH)]
    PaymentsProcessor(b"bench-key").fold(batches[0])  # warm up
    fold = PaymentsProcessor(b"bench-key")
    started = time.process_time()
    for batch in batches:
        fold.fold(batch)
    fold_s = time.process_time() - started
    fraud = FraudProcessor(thresholds, b"bench-key")
    started = time.process_time()
    for batch in batches:
        fraud.score(batch)
    score_s = time.process_time() - started
    return 1e6 * fold_s / len(created), 1e6 * score_s / len(created)


def _processor(events: list[Event], thresholds: FraudThresholds) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        store = open_store(settings)
        try:
            store.migrate()
            processor = FraudProcessor(thresholds, b"bench-key")
            started = time.perf_counter()
            for start in range(0, len(events), BATCH):
                with store.transaction() as tx:
                    processor.process(events[start : start + BATCH], tx)
                    tx.save_checkpoint("state/bench/fraud", processor.snapshot())
            elapsed = time.perf_counter() - started
        finally:
            store.close()
    payments = sum(1 for e in events if e.type == "pix.charge.created")
    return elapsed, payments / elapsed


if __name__ == "__main__":
    main()
