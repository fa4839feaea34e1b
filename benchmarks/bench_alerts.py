"""Event-to-alert latency at 5,000 payments/s (embedded profile): from a charge's event time
to the moment a channel is handed its alert, and to the moment ``alert.raised`` is read from
the alerts topic.

Three measurements in one run, each on a fresh data folder:

1. **Baseline, the bus alone**: ``pulso generate payments --rate 5000/s --to-bus`` (its own
   process, wall clock) publishes on the local bus; a consumer in this process notes when
   each ``pix.charge.created`` arrives. No store, no detector.
2. **Event to alert**: the same generator process, with labelled anomalies; in this process,
   as in ``pulso up``, the pipeline runner (``build_runner``: payments, windows and fraud
   processors) writes the ``alerts`` rows and the alert dispatcher (poll PULSO_ALERT_POLL_S,
   default throttle) folds, publishes and delivers them to an in-memory channel that notes
   the time. A notice's latency runs from the event time of the charge its first alert names
   (``payments.created_at`` of ``details.charge_id``).
3. **Dispatcher alone**: hand-made alert rows (distinct subjects, so each is delivered)
   committed at a steady pace; latency from the row's commit to the channel.

Goal (issue 6): p99 <= 1 s at 5,000 payments/s.

    python benchmarks/bench_alerts.py [--rate 5000] [--duration 20] [--anomaly-rate 1%]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pulso.alerts import AlertDispatcher, DispatchConfig
from pulso.bus import open_bus
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


def event_to_alert(
    settings: Settings, rate: float, duration_s: float, anomaly: str
) -> tuple[list[float], list[float]]:
    store, bus = open_store(settings), open_bus(settings)
    runner = build_runner(settings, bus, store)
    channel = TimedChannel()
    dispatcher = AlertDispatcher(store, bus, [channel], DispatchConfig.from_settings(settings))
    on_topic: dict[str, float] = {}

    def pipeline(stop: threading.Event) -> None:
        while not stop.is_set():
            runner.step()

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
    alert_rows, notices = store.query(
        "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alert_notices)"
    )[0]
    runner.close()
    bus.close()
    store.close()
    print(f"  generator: {sent}")
    print(
        f"  {alert_rows:,} alert rows -> {notices:,} notices "
        f"(throttle {settings.alert_throttle_s:g} s, poll {settings.alert_poll_s:g} s)"
    )
    delivered = [channel.arrivals[n] - at.timestamp() for n, at in rows if n in channel.arrivals]
    published = [on_topic[n] - at.timestamp() for n, at in rows if n in on_topic]
    return delivered, published


def dispatcher_alone(settings: Settings, rows_per_s: float, seconds: float) -> list[float]:
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
        time.sleep(2.0)
    store.close()
    return [channel.arrivals[a] - at for a, at in committed.items() if a in channel.arrivals]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--anomaly-rate", default="1%")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (2 cores, shared with other work)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"1. baseline, the bus alone at {args.rate:,.0f}/s")
        baseline = bus_alone(
            load_settings(data_dir=root / "a"), args.rate, args.duration, args.anomaly_rate
        )
        print("  " + describe("event -> bus consumer", baseline))
        print(f"2. event to alert at {args.rate:,.0f}/s (pipeline + fraud + dispatcher)")
        delivered, published = event_to_alert(
            load_settings(data_dir=root / "b"), args.rate, args.duration, args.anomaly_rate
        )
        print("  " + describe("event -> channel     ", delivered))
        print("  " + describe("event -> alerts topic", published))
        print("3. dispatcher alone: alert row committed -> channel, 25 rows/s")
        alone = dispatcher_alone(load_settings(data_dir=root / "c"), 25.0, 10.0)
        print("  " + describe("row -> channel", alone))
    if baseline and delivered:
        p99, base = percentile(delivered, 0.99), percentile(baseline, 0.99)
        verdict = "met" if p99 <= 1.0 else "NOT met"
        print(
            f"p99 event -> alert {p99 * 1000:.0f} ms, bus alone {base * 1000:.0f} ms "
            f"(ratio {p99 / base:.1f}x); goal p99 <= 1 s: {verdict}"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
