"""Event-to-alert latency at 5,000 payments/s (embedded profile): from a charge's event time
to the moment a channel is handed its alert, and to the moment ``alert.raised`` is read from
the alerts topic, split into where the time goes.

Three measurements in one run, each on a fresh data folder:

1. **Baseline, the bus alone**: ``pulso generate payments --rate 5000/s --to-bus`` (its own
   process, wall clock) publishes on the local bus; a consumer in this process notes when
   each ``pix.charge.created`` arrives. No store, no detector.
2. **Event to alert**: the same generator process, with labelled anomalies; in this process,
   as in ``pulso up``, the pipeline runner (``build_runner``: payments, windows and fraud
   processors; ``runner.step()`` in a loop, then ``--linger``) writes the ``alerts`` rows and
   the alert dispatcher folds, publishes and delivers them to an in-memory channel that notes
   the time. Twice: the dispatcher **woken after each batch** (what ``pulso up`` does) and
   **polling only** every PULSO_ALERT_POLL_S (a dispatcher in another process). A notice's
   latency runs from the event time of the charge its first alert names
   (``payments.created_at`` of ``details.charge_id``) and is split at the commit of the batch
   that wrote that alert row: event -> row committed (generator, bus, pipeline) and row
   committed -> channel (dispatcher). The batches' sizes and durations are printed too.
3. **Dispatcher alone**: hand-made alert rows (distinct subjects, so each is delivered)
   committed at a steady pace; latency from the row's commit to the channel, woken and
   polling.

Goal (issue 6): p99 <= 1 s at 5,000 payments/s.

    python benchmarks/bench_alerts.py [--rate 5000] [--duration 20] [--anomaly-rate 1%]
                                      [--linger 0] [--skip-polling]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.bus import open_bus
from pulso.cli.serve import DEFAULT_LINGER_S, linger_after
from pulso.config import Settings, load_settings
from pulso.domain.alerts import Alert
from pulso.domain.events import Topic, decode_event
from pulso.domain.payments import ChargeCreated
from pulso.notify import Notification, SendResult
from pulso.pipeline.factory import build_runner
from pulso.store import open_store
from pulso.store.tables import ALERTS

GENERATE = "from pulso.cli import main; main()"


@dataclass
class TimedChannel:
    """A channel that notes when each notice first reached it."""

    name: str = "bench"
    arrivals: dict[str, float] = field(default_factory=dict)

    def send(self, notification: Notification) -> SendResult:
        notice_id = notification.notification_id.rsplit("-", 1)[0]
        self.arrivals.setdefault(notice_id, time.time())
        return SendResult()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values):,} p50={statistics.median(values) * 1000:.0f} ms "
        f"p99={percentile(values, 0.99) * 1000:.0f} ms max={max(values) * 1000:.0f} ms"
    )


def generator(
    data_dir: Path, rate: float, duration_s: float, anomaly: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env["PULSO_DATA_DIR"] = str(data_dir)
    command = [
        sys.executable, "-c", GENERATE, "generate", "payments", "--rate", f"{rate:g}/s",
        "--duration", f"{duration_s:g}s", "--anomaly-rate", anomaly, "--to-bus",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes]) -> str:
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise SystemExit(f"the generator failed:\n{out.decode()}")
    lines = [line for line in out.decode().splitlines() if "/s" in line or "sent" in line]
    return lines[0].strip() if lines else ""


@contextmanager
def running(target: Callable[[threading.Event], None], name: str) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def bus_alone(settings: Settings, rate: float, duration_s: float, anomaly: str) -> list[float]:
    bus = open_bus(settings)
    latencies: list[float] = []

    def consume(stop: threading.Event) -> None:
        consumer = bus.consumer("baseline", [Topic.PAYMENTS])
        try:
            while not stop.is_set():
                for message in consumer.poll_batch(20_000, 0.05):
                    now = time.time()
                    event = decode_event(message.value)
                    if isinstance(event.data, ChargeCreated):
                        latencies.append(now - event.occurred_at.timestamp())
        finally:
            consumer.close()

    with running(consume, "baseline-reader"):
        sent = finish(generator(settings.data_dir, rate, duration_s, anomaly))
        time.sleep(1.0)
    bus.close()
    print(f"  generator: {sent}")
    return latencies


@dataclass
class Batch:
    started: float
    committed: float
    messages: int
    write_s: float


def event_to_alert(
    settings: Settings,
    rate: float,
    duration_s: float,
    anomaly: str,
    *,
    linger_s: float,
    wake: bool,
    linger_every: bool = True,
    full_state: bool = False,
) -> dict[str, list[float]]:
    """Event -> channel and -> alerts topic, split into the pipeline's share (event -> its
    alert row committed) and the dispatcher's (row committed -> channel), plus the batches.

    The pipeline loop is ``pulso up``'s (``runner.step()``, then ``linger_s``); with ``wake``
    it wakes the dispatcher after each batch as ``pulso up`` does, else the dispatcher only
    polls. To know when each alert row committed, the loop reads the new alert ids after each
    batch (one small query, timed and reported).

    ``linger_every``: the linger after every batch (``pulso up`` before issue 6's latency
    work); else ``pulso up``'s ``linger_after`` (only after a small batch). ``full_state``:
    the fraud state saved whole in every batch (as before the incremental checkpoints)."""
    store, bus = open_store(settings), open_bus(settings)
    runner = build_runner(settings, bus, store)
    if full_state:
        runner._deltas.clear()  # every stateful processor saved by snapshot(), each batch
    channel = TimedChannel()
    dispatcher = AlertDispatcher(store, bus, [channel], DispatchConfig.from_settings(settings))
    on_topic: dict[str, float] = {}
    committed: dict[str, float] = {}
    batches: list[Batch] = []
    probe_s: list[float] = []

    def pipeline(stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.time()
            result = runner.step()
            if result is None:
                continue
            done = time.time()
            batches.append(Batch(started, done, result.messages, result.seconds))
            if wake:
                dispatcher.wake()
            for (alert_id,) in store.query(
                "SELECT alert_id FROM alerts WHERE alert_id <> ALL(%s)", (list(committed),)
            ):
                committed[alert_id] = done
            probe_s.append(time.time() - done)
            wait_s = linger_s if linger_every else linger_after(result.messages, linger_s)
            if wait_s:
                stop.wait(wait_s)

    def read_alerts(stop: threading.Event) -> None:
        consumer = bus.consumer("bench-alerts", [Topic.ALERTS])
        try:
            while not stop.is_set():
                for message in consumer.poll_batch(1000, 0.02):
                    data = decode_event(message.value).data
                    assert isinstance(data, Alert)
                    on_topic.setdefault(data.alert_id, time.time())
        finally:
            consumer.close()

    with (
        running(pipeline, "pipeline"),
        running(dispatcher.run, "alerts"),
        running(read_alerts, "alert-reader"),
    ):
        sent = finish(generator(settings.data_dir, rate, duration_s, anomaly))
        time.sleep(3.0)  # the tail
    rows = store.query(
        "SELECT n.notice_id, p.created_at FROM alert_notices n "
        "JOIN payments p ON p.charge_id = n.details->>'charge_id'"
    )
    every_row = store.query(
        "SELECT a.alert_id, p.created_at FROM alerts a "
        "JOIN payments p ON p.charge_id = a.details->>'charge_id'"
    )
    alert_rows, notices = store.query(
        "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alert_notices)"
    )[0]
    runner.close()
    bus.close()
    store.close()
    print(f"  generator: {sent}")
    print(
        f"  {alert_rows:,} alert rows -> {notices:,} notices "
        f"(throttle {settings.alert_throttle_s:g} s, poll {settings.alert_poll_s:g} s, "
        f"wake {'on' if wake else 'off'}, linger {linger_s:g} s "
        f"{'after every batch' if linger_every else 'after small batches'}, "
        f"state {'in full' if full_state else 'as deltas'} each batch)"
    )
    at = {n: created.timestamp() for n, created in rows}
    batch_of = {b.committed: b for b in batches}
    slowest = sorted(batches, key=lambda b: b.committed - b.started, reverse=True)[:3]
    start = batches[0].started if batches else 0.0
    for b in slowest:
        print(
            f"  slow batch at t={b.started - start:5.1f} s: {b.messages:,} messages, "
            f"{(b.committed - b.started) * 1000:.0f} ms "
            f"(store transaction {b.write_s * 1000:.0f} ms)"
        )
    return {
        "queued": [batch_of[committed[n]].started - t for n, t in at.items() if n in committed],
        "own_batch": [committed[n] - batch_of[committed[n]].started for n in at if n in committed],
        "delivered": [channel.arrivals[n] - t for n, t in at.items() if n in channel.arrivals],
        "published": [on_topic[n] - t for n, t in at.items() if n in on_topic],
        "pipeline": [committed[n] - t for n, t in at.items() if n in committed],
        "rows": [committed[a] - c.timestamp() for a, c in every_row if a in committed],
        "dispatcher": [
            channel.arrivals[n] - committed[n]
            for n in at
            if n in channel.arrivals and n in committed
        ],
        "batch_messages": [float(b.messages) for b in batches],
        "batch_s": [b.committed - b.started for b in batches],
        "write_s": [b.write_s for b in batches],
        "gap_s": [b.started - a.committed for a, b in itertools.pairwise(batches)],
        "probe_s": probe_s,
    }


def dispatcher_alone(
    settings: Settings, rows_per_s: float, seconds: float, *, wake: bool
) -> list[float]:
    store = open_store(settings)
    channel = TimedChannel()
    dispatcher = AlertDispatcher(store, None, [channel], DispatchConfig.from_settings(settings))
    committed: dict[str, float] = {}
    with running(dispatcher.run, "alerts"):
        n = int(rows_per_s * seconds)
        start = time.perf_counter()
        for i in range(n):
            time.sleep(max(0.0, start + i / rows_per_s - time.perf_counter()))
            alert_id = f"bench-{i:06d}"
            row = {
                "alert_id": alert_id,
                "kind": "fraud.velocity",
                "severity": "critical",
                "subject": f"payer-{i:06d}",
                "message": "7 lojas em 3 minutos",
                "raised_at": datetime.now(UTC),
                "count": 1,
                "details": {"charge_id": f"ch-{i}"},
            }
            with store.transaction() as tx:
                tx.insert_new(ALERTS, {k: [row[k]] for k in ALERTS.column_names})
            committed[alert_id] = time.time()
            if wake:
                dispatcher.wake()
        time.sleep(2.0)
    store.close()
    return [channel.arrivals[a] - at for a, at in committed.items() if a in channel.arrivals]


def batch_breakdown(
    settings: Settings, rate: float, seconds: float, batch: int, *, full_state: bool = False
) -> None:
    """Where a batch's milliseconds go: ``seconds`` of traffic at ``rate`` (simulated clock,
    published beforehand), read in batches of ``batch`` messages (what the pipeline takes
    per step at this rate), each step timed by part: poll, decode and validate, each
    processor's own work, the store writes (all ``StoreTx`` calls, processors' included),
    the commit."""
    from pulso.domain.events import encode_event
    from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream
    from pulso.store.duckdb import _DuckDBTx

    bus = open_bus(settings)
    config = StreamConfig(rate=rate, duration_s=seconds, anomaly_rate=0.01, seed=11)
    clock = SimulatedClock(datetime.now(UTC))
    for chunk in generate_stream(config, clock).chunks:
        if chunk:
            bus.publish(Topic.PAYMENTS, [(e.key.encode(), encode_event(e)) for e in chunk])
    store = open_store(settings)
    runner = build_runner(settings.model_copy(update={"batch_size": batch}), bus, store)
    if full_state:
        runner._deltas.clear()
    spent: dict[str, float] = {}
    in_tx = [0.0]
    depth = [0]  # StoreTx calls made by other StoreTx calls are counted once, in the outer

    def timed(name: str, fn: Callable[..., object], *, tx: bool = False) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            if tx and depth[0]:
                return fn(*args, **kwargs)
            depth[0] += tx
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= tx
                elapsed = time.perf_counter() - started
                spent[name] = spent.get(name, 0.0) + elapsed
                if tx:
                    in_tx[0] += elapsed

        return call

    originals = {n: getattr(_DuckDBTx, n) for n in ("insert_new", "upsert", "execute", "fetch")}
    for name in ("save_checkpoint", "delete_checkpoints"):
        originals[name] = getattr(_DuckDBTx, name)
    for name, fn in originals.items():
        setattr(_DuckDBTx, name, timed(f"store: {name}", fn, tx=True))
    for processor in runner._processors:
        for method in ("process", "process_partitioned"):
            if hasattr(processor, method):
                bound = getattr(processor, method)

                def own(*args: object, _bound: Any = bound, _name: str = processor.name) -> object:
                    before, started = in_tx[0], time.perf_counter()
                    try:
                        return _bound(*args)
                    finally:
                        own_s = time.perf_counter() - started - (in_tx[0] - before)
                        spent[f"processor {_name} (own)"] = (
                            spent.get(f"processor {_name} (own)", 0.0) + own_s
                        )

                setattr(processor, method, own)
        for method in ("snapshot", "snapshot_delta"):
            if hasattr(processor, method):
                setattr(
                    processor,
                    method,
                    timed(f"processor {processor.name} {method}()", getattr(processor, method)),
                )
    runner._prepare = timed("decode + validate", runner._prepare)  # type: ignore[method-assign,assignment]
    steps = messages = 0
    total = 0.0
    try:
        while True:
            started = time.perf_counter()
            result = runner.step()
            if result is None:
                break
            total += time.perf_counter() - started
            steps += 1
            messages += result.messages
    finally:
        for name, fn in originals.items():
            setattr(_DuckDBTx, name, fn)
        saved = ""
        if not full_state:
            with store.transaction() as tx:
                deltas = [(n, v) for n, v in tx.list_checkpoints("state/") if "/delta/" in n]
            saved = (
                f"; {len(deltas)} deltas stored at the end, "
                f"{sum(len(v) for _, v in deltas) / max(len(deltas), 1) / 1024:,.0f} kB each"
            )
        sizes = ", ".join(
            f"{p.name} {len(p.snapshot()) / 1024:,.0f} kB"
            for p in runner._processors
            if hasattr(p, "snapshot")
        )
        runner.close()
        store.close()
        bus.close()
    accounted = sum(spent.values())
    spent["commit, poll and the rest"] = total - accounted
    print(
        f"  {steps} batches of up to {batch:,} messages ({messages:,} messages), "
        f"{total / max(steps, 1) * 1000:.0f} ms a batch on average; full state at the end: "
        f"{sizes}{saved}:"
    )
    for name, value in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(
            f"    {name:<34} {value / max(steps, 1) * 1000:7.1f} ms a batch "
            f"({value / total * 100:4.1f} %)"
        )


def report(name: str, result: dict[str, list[float]]) -> None:
    print(f"  {name}")
    print("    " + describe("event -> channel     ", result["delivered"]))
    print("    " + describe("event -> alerts topic", result["published"]))
    print("    " + describe("  event -> row committed (bus, pipeline)", result["pipeline"]))
    print("    " + describe("    event -> its batch polled", result["queued"]))
    print("    " + describe("    its batch polled -> committed", result["own_batch"]))
    print("    " + describe("  row committed -> channel   ", result["dispatcher"]))
    print("    " + describe("every alert row: event -> committed", result["rows"]))
    sizes, steps = result["batch_messages"], result["batch_s"]
    if sizes:
        print(
            f"    batches: {len(sizes):,}, messages p50 {statistics.median(sizes):,.0f} "
            f"max {max(sizes):,.0f}; poll+decode+write+commit p50 "
            f"{statistics.median(steps) * 1000:.0f} ms p99 {percentile(steps, 0.99) * 1000:.0f} ms"
            f" (store transaction p50 {statistics.median(result['write_s']) * 1000:.0f} ms); "
            f"between batches p50 {statistics.median(result['gap_s'] or [0.0]) * 1000:.0f} ms "
            f"(of which the bench's alert-id probe p50 "
            f"{statistics.median(result['probe_s']) * 1000:.0f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--anomaly-rate", default="1%")
    parser.add_argument(
        "--linger",
        type=float,
        default=DEFAULT_LINGER_S,
        help="seconds the pipeline waits after a small batch (pulso up --pipeline-linger)",
    )
    parser.add_argument(
        "--linger-every-batch",
        action="store_true",
        help="wait --linger after every batch, not only after small ones (pulso up before)",
    )
    parser.add_argument(
        "--full-state",
        action="store_true",
        help="save the fraud state whole in every batch (before the incremental checkpoints)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help=(
            "section 2 twice more with the arrangement before issue 6's latency work (state "
            "saved whole each batch, 0.5 s linger after every batch), in the same run"
        ),
    )
    parser.add_argument(
        "--skip-polling", action="store_true", help="skip the polling-only (no wake) run"
    )
    parser.add_argument(
        "--batch", type=int, default=2_000, help="batch size for the breakdown (section 4)"
    )
    parser.add_argument(
        "--breakdown-only", action="store_true", help="only section 4, where a batch's time goes"
    )
    args = parser.parse_args()
    print(f"{uptime()} (2 cores, shared with other work)")
    if args.breakdown_only:
        with tempfile.TemporaryDirectory() as folder:
            print(f"4. where a batch's time goes at {args.rate:,.0f}/s (batches of {args.batch:,})")
            for full_state in (True, False):
                print(f"  state saved {'whole' if full_state else 'as deltas'} each batch:")
                batch_breakdown(
                    load_settings(data_dir=Path(folder) / f"d{int(full_state)}"),
                    args.rate,
                    10.0,
                    args.batch,
                    full_state=full_state,
                )
        print(f"{uptime()}")
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"1. baseline, the bus alone at {args.rate:,.0f}/s")
        baseline = bus_alone(
            load_settings(data_dir=root / "a"), args.rate, args.duration, args.anomaly_rate
        )
        print("  " + describe("event -> bus consumer", baseline))
        print(f"2. event to alert at {args.rate:,.0f}/s (pipeline + fraud + dispatcher)")
        runs: dict[str, dict[str, list[float]]] = {}
        arrangements = [("", args.linger, args.linger_every_batch, args.full_state)]
        if args.compare:  # before first: a machine busier later penalises the new one
            arrangements.insert(
                0, ("before (full state, 0.5 s after every batch): ", 0.5, True, True)
            )
            arrangements[1] = ("after: ", *arrangements[1][1:])
        for label, linger_s, every, full_state in arrangements:
            for wake in (True, False) if not args.skip_polling else (True,):
                name = label + ("woken after each batch (pulso up)" if wake else "polling only")
                runs[name] = event_to_alert(
                    load_settings(data_dir=root / f"b{len(runs)}"),
                    args.rate,
                    args.duration,
                    args.anomaly_rate,
                    linger_s=linger_s,
                    wake=wake,
                    linger_every=every,
                    full_state=full_state,
                )
                report(name, runs[name])
        print("3. dispatcher alone: alert row committed -> channel, 25 rows/s")
        for wake in (True, False):
            alone = dispatcher_alone(
                load_settings(data_dir=root / f"c{int(wake)}"), 25.0, 10.0, wake=wake
            )
            print("  " + describe(f"row -> channel ({'woken' if wake else 'polling'})", alone))
        print(f"4. where a batch's time goes at {args.rate:,.0f}/s (batches of {args.batch:,})")
        for full_state in (True, False):
            print(f"  state saved {'whole' if full_state else 'as deltas'} each batch:")
            batch_breakdown(
                load_settings(data_dir=root / f"d{int(full_state)}"),
                args.rate,
                10.0,
                args.batch,
                full_state=full_state,
            )
    for name, result in runs.items():
        delivered = result["delivered"]
        if baseline and delivered:
            p99, base = percentile(delivered, 0.99), percentile(baseline, 0.99)
            verdict = "met" if p99 <= 1.0 else "NOT met"
            print(
                f"{name}: p99 event -> alert {p99 * 1000:.0f} ms, bus alone {base * 1000:.0f} ms "
                f"(ratio {p99 / base:.1f}x); goal p99 <= 1 s: {verdict}"
            )
    print(f"{uptime()}")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load {os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    main()
