"""Embedded stream pipeline with event-time windows (and fraud scoring, when in the tree).

Generates labelled payment traffic once (pulso.sources.stream_generator, simulated clock;
the older payments generator if that module is missing), publishes it to a local bus, then
runs the embedded pipeline (local bus + DuckDB) over copies of it, each configuration in a
fresh process so its peak RSS is its own:

- baseline     : payments (+ orders) processors only, windows and fraud off
- windows      : + the windows processor
- windows+fraud: + the fraud processor (only if pulso.pipeline.processors.fraud imports)

Prints payments/s (``pix.charge.created`` events per second of pipeline run) and events/s,
the ratio to the baseline, peak RSS, and the RSS sampled every few batches (steady memory).
Target (issue 6): >= 50,000 payments/s with windows and fraud scoring on 2 cores.

    python benchmarks/bench_stream.py [--payments 300000] [--stores 200] [--minutes 0]
                                      [--previous /tmp/orig]

``--previous DIR`` also runs each configuration with the pulso package of DIR (the code before
a change, e.g. ``git archive HEAD | tar -x -C DIR``) right before the current one, on the same
data under the same load, and prints both.

``--minutes M`` adds a long run: a producer thread keeps generating traffic for M minutes
while the windows(+fraud) pipeline consumes it; RSS is sampled every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONFIGS = ("baseline", "windows", "windows+fraud")


def fraud_available() -> bool:
    try:
        import pulso.pipeline.processors.fraud  # noqa: F401
    except ImportError:
        return False
    from pulso.config import Settings

    return "fraud_enabled" in Settings.model_fields


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def generator_events(payments: int, stores: int, sim_rate: float, seed: int) -> tuple[str, Any]:
    """(generator name, iterator of Events)."""
    try:
        from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream
    except ImportError:
        from pulso.sources.payments_generator import (
            PaymentsConfig,
            generate_payments,
            local_today,
            period_start_date,
        )

        days = max(1, payments // (600 * stores))
        old = PaymentsConfig(
            start=period_start_date(days, today=local_today()), days=days, n_stores=stores
        )
        return "payments_generator", generate_payments(old)
    config = StreamConfig(
        rate=sim_rate,
        duration_s=None,
        payments=payments,
        anomaly_rate=0.005,
        n_stores=stores,
        seed=seed,
    )
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    return "stream_generator", generate_stream(config, SimulatedClock(start))


def fill(data_dir: Path, payments: int, stores: int, sim_rate: float) -> dict[str, Any]:
    from pulso.bus import open_bus
    from pulso.config import load_settings
    from pulso.domain.events import Topic, encode_event

    name, events = generator_events(payments, stores, sim_rate, seed=42)
    bus = open_bus(load_settings(data_dir=data_dir))
    chunk: list[tuple[bytes | None, bytes]] = []
    created = total = 0
    for event in events:
        chunk.append((event.key.encode(), encode_event(event)))
        created += event.type == "pix.charge.created"
        if len(chunk) == 50_000:
            bus.publish(Topic.PAYMENTS, chunk)
            total += len(chunk)
            chunk = []
    bus.publish(Topic.PAYMENTS, chunk)
    total += len(chunk)
    bus.close()
    return {"generator": name, "events": total, "payments": created}


def child(config: str, data_dir: Path, batch_size: int) -> None:
    """One configuration over the bus in ``data_dir``; prints a JSON line."""
    from pulso.bus import open_bus
    from pulso.config import load_settings
    from pulso.pipeline.factory import build_runner
    from pulso.store import open_store

    overrides: dict[str, Any] = {"window_enabled": config != "baseline"}
    if fraud_available():
        overrides["fraud_enabled"] = config == "windows+fraud"
    settings = load_settings(data_dir=data_dir, batch_size=batch_size, **overrides)
    bus, store = open_bus(settings), open_store(settings)
    runner = build_runner(settings, bus, store)
    samples: list[float] = []

    def on_batch(_: Any, stats: Any) -> None:
        if stats.batches % 5 == 0:
            samples.append(round(rss_mib(), 1))

    cpu_before = _cpu_s()
    started = time.perf_counter()
    stats = runner.run(stop=lambda _: True, on_batch=on_batch)
    seconds = time.perf_counter() - started
    cpu_s = _cpu_s() - cpu_before
    [(payments,)] = store.query("SELECT count(*) FROM payments")
    [(windows,)] = store.query("SELECT count(*) FROM stream_windows")
    runner.close()
    store.close()
    bus.close()
    print(
        json.dumps(
            {
                "config": config,
                "processors": [p.name for p in runner._processors],
                "messages": stats.messages,
                "payments": int(payments),
                "window_rows": int(windows),
                "seconds": seconds,
                "cpu_s": cpu_s,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_samples": samples,
            }
        )
    )


def long_run(data_dir: Path, minutes: float, stores: int, batch_size: int, rate: float) -> None:
    """Produce (``pulso generate`` in its own process) and consume (windows+fraud, this
    process) for ``minutes``: RSS, DuckDB's memory and the backlog every 10 s, first vs last
    minute, the slope of the last 5 minutes and a verdict (benchmarks/bench_memory.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_memory import run

    run(data_dir, minutes, stores, batch_size, rate)


def processor_seconds(data_dir: Path) -> tuple[int, dict[str, float], str]:
    """CPU seconds of each processor alone over the ``pix.charge.created`` events of the bus
    in ``data_dir``, in this process, writes discarded: (payments, seconds by processor, a
    line on the windows' state)."""
    from pulso.bus import open_bus
    from pulso.config import load_settings
    from pulso.domain.events import decode_event
    from pulso.pipeline.factory import pii_key, window_config
    from pulso.pipeline.processors.payments import PaymentsProcessor
    from pulso.pipeline.processors.windows import WindowsProcessor

    settings = load_settings(data_dir=data_dir)
    bus = open_bus(settings)
    consumer = bus.consumer("costs", ["payments"])
    events: list[Any] = []
    partitions: list[str] = []
    while batch := consumer.poll_batch(50_000, 0.5):
        for m in batch:
            event = decode_event(m.value)
            if event.type == "pix.charge.created":
                events.append(event)
                partitions.append(f"{m.topic}:{m.partition}")
    consumer.close()
    bus.close()

    class DiscardTx:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: 0

    tx: Any = DiscardTx()
    n = len(events)
    costs: dict[str, float] = {}
    payments = PaymentsProcessor(pii_key(settings))
    windows = WindowsProcessor(window_config(settings))
    step = 20_000
    # Warm up (imports, first-call caches) on throwaway instances.
    PaymentsProcessor(pii_key(settings)).fold(events[:step])
    WindowsProcessor(window_config(settings)).process_partitioned(
        events[:step], partitions[:step], tx
    )
    started = time.process_time()
    for i in range(0, n, step):
        payments.fold(events[i : i + step])
    costs["payments fold"] = time.process_time() - started
    started = time.process_time()
    for i in range(0, n, step):
        windows.process_partitioned(events[i : i + step], partitions[i : i + step], tx)
    costs["windows"] = time.process_time() - started
    if fraud_available():
        from pulso.fraud.thresholds import thresholds_from_settings
        from pulso.pipeline.processors.fraud import FraudProcessor

        fraud = FraudProcessor(thresholds_from_settings(settings), pii_key(settings))
        started = time.process_time()
        for i in range(0, n, step):
            fraud.score(events[i : i + step])
        costs["fraud score (created only)"] = time.process_time() - started
    state = windows.state
    about = (
        f"windows: {state.accepted:,} windowed, {state.late:,} late, {state.future:,} future, "
        f"{len(state.panes):,} open panes, snapshot {len(windows.snapshot()):,} B"
    )
    return n, costs, about


def processor_costs(data_dir: Path) -> None:
    """Prints the CPU per payment of each processor alone (``processor_seconds``): the
    windows' cost beside the payments fold it runs with (ratios hold under load)."""
    n, costs, about = processor_seconds(data_dir)
    print(f"processor CPU alone over {n:,} payments ({about}):")
    for name, seconds in costs.items():
        print(
            f"  {name:<27} {n / seconds:>11,.0f} payments/CPU-s "
            f"({seconds / n * 1e6:.2f} us each, {seconds / costs['payments fold']:.2f}x the fold)"
        )


def run_child(
    config: str, template: Path, tmp: Path, batch_size: int, tree: Path | None
) -> dict[str, Any]:
    """One configuration in a fresh process over a copy of the template; ``tree``: run the
    pulso package found there (the previous code) instead of this checkout's."""
    data = tmp / config.replace("+", "_")
    shutil.copytree(template, data)
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    command = [sys.executable, __file__, "--child", config, "--data", str(data)]
    out = subprocess.run(
        [*command, "--batch-size", str(batch_size)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    shutil.rmtree(data)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _timer(deadline: float) -> threading.Event:
    event = threading.Event()
    threading.Timer(max(0.0, deadline - time.monotonic()), event.set).start()
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=300_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument(
        "--sim-rate", type=float, default=1_000.0, help="simulated payments/s (event-time span)"
    )
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=0.0, help="also a long run (e.g. 10)")
    parser.add_argument(
        "--rate", type=float, default=2_000.0, help="payments/s produced in the long run"
    )
    parser.add_argument(
        "--long-only", action="store_true", help="only the long run (with --minutes)"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="a tree of the previous code (git archive HEAD | tar -x -C DIR) run beside this one",
    )
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.batch_size)
        return

    if args.long_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"long run ({args.minutes:g} min); load: {os.getloadavg()[0]:.2f}")
            long_run(
                Path(tmp) / "long", args.minutes or 1.0, args.stores, args.batch_size, args.rate
            )
        return
    configs = [c for c in CONFIGS if c != "windows+fraud" or fraud_available()]
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        started = time.perf_counter()
        made = fill(template, args.payments, args.stores, args.sim_rate)
        print(
            f"generated {made['events']:,} events ({made['payments']:,} payments, "
            f"{args.stores} stores) with {made['generator']} in "
            f"{time.perf_counter() - started:.1f} s; load: {os.getloadavg()[0]:.2f} "
            f"(1 min) on {os.cpu_count()} CPUs"
        )
        results: dict[str, dict[str, Any]] = {}
        previous: dict[str, dict[str, Any]] = {}
        for config in configs:
            # The previous code (if given) right before the current one: same load, same data.
            trees = [(previous, args.previous)] if args.previous else []
            for into, tree in [*trees, (results, None)]:
                into[config] = run_child(config, template, Path(tmp), args.batch_size, tree)
        base = results["baseline"]
        base_rate = base["payments"] / base["seconds"]
        base_cpu = base["payments"] / base["cpu_s"]
        print(
            f"{'config':<14} {'payments/s':>11} {'events/s':>10} {'ratio':>6} "
            f"{'pay/CPU-s':>10} {'ratio':>6} {'peak RSS':>9}  processors"
        )
        for config, r in results.items():
            rate, cpu_rate = r["payments"] / r["seconds"], r["payments"] / r["cpu_s"]
            print(
                f"{config:<14} {rate:>11,.0f} {r['messages'] / r['seconds']:>10,.0f} "
                f"{rate / base_rate:>6.2f} {cpu_rate:>10,.0f} {cpu_rate / base_cpu:>6.2f} "
                f"{r['peak_rss_mib']:>5.0f} MiB  {','.join(r['processors'])}"
            )
        if previous:
            print(f"previous code ({args.previous}), same run, same data:")
            for config, r in previous.items():
                now = results[config]
                rate, cpu_rate = r["payments"] / r["seconds"], r["payments"] / r["cpu_s"]
                print(
                    f"{config:<14} {rate:>11,.0f} payments/s {cpu_rate:>10,.0f} pay/CPU-s  "
                    f"now x{now['payments'] / now['seconds'] / rate:.2f} wall, "
                    f"x{now['payments'] / now['cpu_s'] / cpu_rate:.2f} CPU"
                )
        processor_costs(template)
        for config, r in results.items():
            print(f"RSS every 5 batches, {config}: {r['rss_samples']}")
        print(
            f"load after: {os.getloadavg()[0]:.2f}; target: >= 50,000 payments/s with windows+fraud"
        )
        if not fraud_available():
            print("fraud processor not in the tree: windows+fraud not run")
        if args.minutes > 0:
            print(f"long run ({args.minutes:g} min, windows+fraud if present):")
            long_run(Path(tmp) / "long", args.minutes, args.stores, args.batch_size, args.rate)


if __name__ == "__main__":
    main()
