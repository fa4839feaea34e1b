"""Steady memory of the embedded pipeline (local bus + DuckDB, windows and fraud on) over a
long run, and where the memory is when it is not steady.

The traffic comes from ``pulso generate payments --rate R/s --to-bus`` in **its own process**
(wall-clock event times, labelled anomalies): the measured process is the pipeline alone, its
GIL is not shared with the producer, and the producer's own state (its pending terminal
events) is not counted. This process runs the pipeline as ``pulso run`` does
(``PipelineRunner.run``) and a sampler thread that every ``--sample`` seconds records:

- RSS (``/proc/self/statm``);
- DuckDB's own accounting: ``sum(memory_usage_bytes) FROM duckdb_memory()`` and, at the end,
  its largest tags and ``current_setting('memory_limit')``;
- the backlog: events consumed vs the producer's paced rate, and the **lag**, now minus the
  newest ``payments.created_at`` stored. A lag that grows is the consumer falling behind the
  producer (the backlog sits in the bus files on disk, not in this process): it is reported
  on its own, and memory is judged only at a rate the pipeline sustains;
- with ``--trace``: tracemalloc snapshots after the first minute and at the end, diffed by
  source line (Python objects only; costs CPU, so use a lower rate).

At the end: first-minute vs last-minute mean RSS, the slope (MiB/min, least squares) over the
last 5 minutes (the last half of a shorter run) and a verdict: **steady** when that slope is
~0 within the noise: not told apart from 0 (within 2 standard errors; the RSS saws up and
down with DuckDB's checkpoints), or adding under 2 % of the mean RSS over the span.

    python benchmarks/bench_memory.py [--minutes 10] [--rate 2000] [--stores 200] [--trace]

``python benchmarks/bench_stream.py --long-only --minutes 10 --rate 2000`` runs the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENERATE = "from pulso.cli import main; main()"
LAG_GROWTH_S = 10.0
"""The lag may wander by a batch or a DuckDB checkpoint; more growth than this over the judged
span is a backlog building up."""


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


@dataclass(slots=True)
class Sample:
    t_s: float
    rss_mib: float
    duckdb_mib: float
    index_mib: float
    arrow_mib: float
    consumed: int
    lag_s: float | None


@dataclass(slots=True)
class Verdict:
    first_min_mib: float
    last_min_mib: float
    slope_mib_per_min: float
    slope_error_mib_per_min: float
    span_min: float
    noise_mib: float
    steady: bool
    lag_start_s: float | None
    lag_end_s: float | None
    backlog_growing: bool
    lines: list[str] = field(default_factory=list)


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares slope (per unit of x), its standard error and the standard deviation
    of the residuals."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if len(points) < 3 or not sxx:
        return 0.0, float("inf"), 0.0
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    residuals = [y - (my + slope * (x - mx)) for x, y in points]
    sd = (sum(r * r for r in residuals) / (len(points) - 2)) ** 0.5
    return slope, sd / sxx**0.5, statistics.pstdev(residuals)


def judge(samples: list[Sample], minutes: float) -> Verdict:
    """First vs last minute, the slope of the last 5 minutes (or last half), the verdict."""
    end = samples[-1].t_s
    first = [s.rss_mib for s in samples if s.t_s <= 60.0] or [samples[0].rss_mib]
    last = [s.rss_mib for s in samples if s.t_s >= end - 60.0]
    window_s = 300.0 if minutes >= 10 else end / 2
    tail = [s for s in samples if s.t_s >= end - window_s]
    slope_per_s, error_per_s, noise = fit([(s.t_s, s.rss_mib) for s in tail])
    span_min = (tail[-1].t_s - tail[0].t_s) / 60
    slope = slope_per_s * 60
    mean = statistics.fmean(s.rss_mib for s in tail)
    # ~0 within noise: the slope is not told apart from 0 (2 standard errors), or what it
    # adds over the span is under 2 % of the memory.
    steady = abs(slope_per_s) <= 2 * error_per_s or abs(slope * span_min) <= 0.02 * mean
    lags = [s.lag_s for s in tail if s.lag_s is not None]
    lag_start, lag_end = (lags[0], lags[-1]) if lags else (None, None)
    growing = lag_start is not None and lag_end is not None and lag_end - lag_start > LAG_GROWTH_S
    return Verdict(
        first_min_mib=statistics.fmean(first),
        last_min_mib=statistics.fmean(last),
        slope_mib_per_min=slope,
        slope_error_mib_per_min=error_per_s * 60,
        span_min=span_min,
        noise_mib=noise,
        steady=steady,
        lag_start_s=lag_start,
        lag_end_s=lag_end,
        backlog_growing=growing,
    )


def _duckdb_mib(store: Any) -> tuple[float, float]:
    """DuckDB's memory in use, and the part that is its indexes (ART)."""
    if getattr(store, "dialect", "") != "duckdb":
        return 0.0, 0.0
    [(used, index)] = store.query(
        "SELECT coalesce(sum(memory_usage_bytes), 0), "
        "coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'ART_INDEX'), 0) "
        "FROM duckdb_memory()"
    )
    return int(used) / 2**20, int(index) / 2**20


def _arrow_mib() -> float:
    import pyarrow as pa

    return pa.total_allocated_bytes() / 2**20


def _lag_s(store: Any) -> float | None:
    [(newest,)] = store.query("SELECT max(created_at) FROM payments")
    return None if newest is None else (datetime.now(UTC) - newest).total_seconds()


def _producer(data_dir: Path, rate: float, seconds: float, stores: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env["PULSO_DATA_DIR"] = str(data_dir)
    command = [
        sys.executable, "-c", GENERATE, "generate", "payments", "--rate", f"{rate:g}/s",
        "--duration", f"{seconds:g}s", "--anomaly-rate", "0.5%", "--stores", str(stores),
        "--to-bus",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _print_trace_diff(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> None:
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"  tracemalloc, end vs 1st minute: Python objects {total / 2**20:+.1f} MiB; top lines:")
    for s in stats[:12]:
        frame = s.traceback[0]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        print(f"    {s.size_diff / 2**20:+8.2f} MiB {s.count_diff:+9,} blocks  {where}")


def _print_duckdb(store: Any) -> None:
    if getattr(store, "dialect", "") != "duckdb":
        return
    [(limit,)] = store.query("SELECT current_setting('memory_limit')")
    tags = store.query(
        "SELECT tag, memory_usage_bytes FROM duckdb_memory() "
        "WHERE memory_usage_bytes > 0 ORDER BY memory_usage_bytes DESC LIMIT 5"
    )
    shown = ", ".join(f"{t} {int(b) / 2**20:.0f} MiB" for t, b in tags) or "nothing"
    print(f"  DuckDB memory_limit {limit}; in use at the end: {shown}")


def run(
    data_dir: Path,
    minutes: float,
    stores: int,
    batch_size: int,
    rate: float,
    *,
    trace: bool = False,
    sample_s: float = 10.0,
) -> Verdict:
    """Produce (another process) and consume (this one) for ``minutes``; print the samples
    and the verdict."""
    from pulso.bus import open_bus
    from pulso.config import load_settings
    from pulso.pipeline.factory import build_runner
    from pulso.store import open_store

    settings = load_settings(
        data_dir=data_dir, batch_size=batch_size, window_enabled=True, fraud_enabled=True
    )
    print(f"  {uptime()}")
    print(
        f"  {rate:,.0f} payments/s for {minutes:g} min from `pulso generate` (own process); "
        f"windows+fraud; PULSO_DUCKDB_MEMORY_LIMIT={settings.duckdb_memory_limit!r}"
    )
    if trace:
        tracemalloc.start(1)
    bus, store = open_bus(settings), open_store(settings)
    runner = build_runner(settings, bus, store)
    consumed = [0]
    samples: list[Sample] = []
    snapshots: list[tracemalloc.Snapshot] = []
    stop = threading.Event()
    started = time.monotonic()

    def on_batch(_: Any, stats: Any) -> None:
        consumed[0] = stats.messages

    def sample() -> None:
        next_at = started
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            now = time.monotonic() - started
            duck, index = _duckdb_mib(store)
            s = Sample(now, rss_mib(), duck, index, _arrow_mib(), consumed[0], _lag_s(store))
            samples.append(s)
            lag = "-" if s.lag_s is None else f"{s.lag_s:6.1f} s"
            print(
                f"  t={now:5.0f} s  rss {s.rss_mib:7.1f} MiB  duckdb {s.duckdb_mib:6.1f} MiB "
                f"(indexes {s.index_mib:5.1f})  arrow {s.arrow_mib:5.1f} MiB  "
                f"consumed {s.consumed:>10,} events  lag {lag}",
                flush=True,
            )
            if trace and not snapshots and now >= 60.0:
                snapshots.append(tracemalloc.take_snapshot())
            next_at += sample_s

    producer = _producer(data_dir, rate, minutes * 60 + 20, stores)
    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    sampler.start()
    cancel = threading.Event()
    timer = threading.Timer(minutes * 60 + 0.5, cancel.set)
    timer.start()
    try:
        runner.run(stop=lambda _: False, on_batch=on_batch, cancel=cancel)
    finally:
        stop.set()
        sampler.join()
        timer.cancel()
        producer.terminate()
        out, _ = producer.communicate(timeout=60)
    if trace and snapshots:
        _print_trace_diff(snapshots[0], tracemalloc.take_snapshot())
        tracemalloc.stop()
    _print_duckdb(store)
    runner.close()
    store.close()
    bus.close()
    if producer.returncode not in (0, -15):
        print(f"  the producer failed:\n{out.decode()}")
    else:
        sent = [line.strip() for line in out.decode().splitlines() if "/s" in line]
        print(f"  producer: {sent[-1] if sent else 'stopped at the deadline'}")
    verdict = judge(samples, minutes)
    v = verdict
    consumed_rate = samples[-1].consumed / max(samples[-1].t_s, 1e-9)
    print(
        f"memory: first minute {v.first_min_mib:.0f} MiB, last minute {v.last_min_mib:.0f} MiB "
        f"({(v.last_min_mib / v.first_min_mib - 1) * 100:+.1f} %); slope over the last "
        f"{v.span_min:.1f} min {v.slope_mib_per_min:+.1f} "
        f"± {2 * v.slope_error_mib_per_min:.1f} MiB/min "
        f"(RSS around the line ± {v.noise_mib:.0f} MiB)"
        f" -> {'steady' if v.steady else 'NOT steady'}"
    )
    lag = (
        "no payment stored"
        if v.lag_start_s is None or v.lag_end_s is None
        else f"lag {v.lag_start_s:.1f} s -> {v.lag_end_s:.1f} s"
    )
    print(
        f"backlog: {consumed_rate:,.0f} events/s consumed; {lag} over that span -> "
        + (
            "GROWING: the pipeline does not sustain this rate here; lower --rate "
            "(a backlog is on disk in the bus, not a leak)"
            if v.backlog_growing
            else "kept up"
        )
    )
    print(f"  {uptime()}")
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2_000.0, help="payments/s produced")
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--trace", action="store_true", help="tracemalloc diff (slower)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(
            Path(tmp) / "long",
            args.minutes,
            args.stores,
            args.batch_size,
            args.rate,
            trace=args.trace,
            sample_s=args.sample,
        )


if __name__ == "__main__":
    main()
