"""``pulso worker``: one pipeline worker of the cluster profile.

Workers are separate processes that join one Kafka consumer group: Kafka splits the topics'
partitions among them and moves a member's partitions to the others when it leaves or goes
silent for ``PULSO_KAFKA_SESSION_TIMEOUT_S``. Each batch is one PostgreSQL transaction and its
offsets are committed after it (at-least-once; the writes are idempotent), so a worker killed
at any moment costs a re-read, never a double count.

A failure of the store or the bus (PostgreSQL restarting, brokers gone) does not end the worker:
it logs the error, drops its runner (the uncommitted batch is read again), waits with
exponential backoff (capped at ``PULSO_WORKER_RETRY_MAX_S``) and starts again from the last
committed offsets and checkpoint. SIGTERM (or Ctrl-C) stops it after the batch in hand.

Stateful processors (event-time windows, fraud) keep one state, so they need exactly one runner
in their group. A worker has a ``--role``: ``facts`` runs only the stateless processors
(payments, orders) in ``--group``; ``state`` takes part in the election of the ONE stream-state
runner (windows, fraud) of ``<group>-state``: it holds a PostgreSQL advisory lock and runs the
stateful processors, or waits as a hot standby (pulso/pipeline/leader.py); ``all`` (the
default) does both, on two threads with a bus and a store connection each. ``pulso up
--profile cluster --workers N`` starts N ``--role all`` workers: the facts scale out over N,
one of them also runs the state and the other N-1 are its standbys.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors
from pulso.errors import BusError, ConfigError, StoreError

if TYPE_CHECKING:
    from pulso.bus.protocol import Bus, TopicPartition
    from pulso.config import Settings
    from pulso.pipeline.runner import BatchResult, PipelineRunner, RunStats, _Prepared
    from pulso.store.protocol import Store

log = logging.getLogger(__name__)

DEFAULT_GROUP = "pulso-pipeline"
ROLES = ("facts", "state", "all")
FIRST_RETRY_S = 0.5
LEASE_CHECK_S = 1.0
IN_PLACE_RETRIES = 4

RETRYABLE: tuple[type[BaseException], ...] = (StoreError, BusError, OSError)
"""What a worker outlives: the store or the bus being unreachable, a transaction refused
(deadlock, a concurrent worker's row), a consumer that lost its group. Anything else is a bug
or a configuration error and stops the worker."""


def cluster_problems(settings: Settings) -> list[str]:
    """Why ``settings`` cannot run the cluster profile (empty when it can)."""
    problems: list[str] = []
    if settings.bus.kind != "kafka":
        problems.append(
            f"PULSO_BUS_URL is {settings.bus_url!r}: the local bus is embedded-only (one "
            "process); set PULSO_BUS_URL=kafka://host:9092[,host:9092...]"
        )
    if settings.store.kind != "postgresql":
        problems.append(
            "PULSO_STORE_URL is DuckDB, which one process owns; set "
            "PULSO_STORE_URL=postgresql://user:password@host:5432/pulso"
        )
    return problems


def require_cluster(settings: Settings, what: str) -> None:
    """Exit with the reasons when ``settings`` name an embedded-only bus or store."""
    problems = cluster_problems(settings)
    if problems:
        raise fail(f"{what} needs Kafka and PostgreSQL:\n  " + "\n  ".join(problems))


def stateful_enabled(settings: Settings) -> bool:
    return settings.window_enabled or settings.fraud_enabled


@dataclass(slots=True)
class WorkerTotals:
    """What a worker did over its life, across restarts of its runner."""

    batches: int = 0
    messages: int = 0
    new_events: int = 0
    retries: int = 0
    partitions: set[TopicPartition] = field(default_factory=set)


class PipelineWorker:
    """One consumer-group member that survives store and bus failures (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        *,
        group: str = DEFAULT_GROUP,
        facts_only: bool = False,
        name: str | None = None,
        open_bus: Callable[[Settings], Bus] | None = None,
        open_store: Callable[[Settings], Store] | None = None,
    ) -> None:
        if facts_only:
            settings = settings.model_copy(update={"window_enabled": False, "fraud_enabled": False})
        self._settings = settings
        self._group = group
        self.name = name or f"worker-{os.getpid()}"
        self._open_bus = open_bus
        self._open_store = open_store
        self.totals = WorkerTotals()
        self._attempt = 0

    def run(self, cancel: threading.Event) -> WorkerTotals:
        """Process batches until ``cancel`` is set; the batch in hand is finished first."""
        bus: Bus | None = None
        store: Store | None = None
        try:
            while not cancel.is_set():
                try:
                    if bus is None:
                        bus = self._bus()
                    if store is None:
                        store = self._store()
                    self._run_once(bus, store, cancel)
                except RETRYABLE as e:
                    self._attempt += 1
                    self.totals.retries += 1
                    delay = self._backoff()
                    log.warning(
                        "%s: %s: %s; retry %d in %.1f s (the uncommitted batch is read again)",
                        self.name,
                        type(e).__name__,
                        e,
                        self._attempt,
                        delay,
                    )
                    cancel.wait(delay)
        finally:
            if store is not None:
                store.close()
            if bus is not None:
                bus.close()
        return self.totals

    def _bus(self) -> Bus:
        if self._open_bus is not None:
            return self._open_bus(self._settings)
        from pulso.bus import open_bus

        return open_bus(self._settings)

    def _store(self) -> Store:
        if self._open_store is not None:
            return self._open_store(self._settings)
        from pulso.store import open_store

        return open_store(self._settings)

    def _backoff(self) -> float:
        """Exponential from FIRST_RETRY_S, capped, with ±20 % jitter (workers that failed
        together do not all come back in the same instant)."""
        cap = self._settings.worker_retry_max_s
        delay = min(cap, FIRST_RETRY_S * 2 ** min(self._attempt - 1, 30))
        return float(delay * random.uniform(0.8, 1.2))

    def _run_once(self, bus: Bus, store: Store, cancel: threading.Event) -> RunStats:
        with self._runner(bus, store) as runner:
            return runner.run(stop=lambda _: False, on_batch=self._on_batch, cancel=cancel)

    @contextmanager
    def _runner(self, bus: Bus, store: Store) -> Iterator[PipelineRunner]:
        from pulso.pipeline.factory import build_runner

        runner = build_runner(self._settings, bus, store, group=self._group)
        if not stateful_enabled(self._settings):
            runner._write = self._retrying(runner._write)  # type: ignore[method-assign,assignment]
        try:
            yield runner
        finally:
            runner.close()  # leaves the group: the partitions go to the other members now

    def _retrying(
        self, write: Callable[[_Prepared], BatchResult]
    ) -> Callable[[_Prepared], BatchResult]:
        """A batch's transaction retried in place, up to IN_PLACE_RETRIES times.

        With several workers, two transactions that refresh the same stores' minutes collide
        (a duplicate key or a deadlock: PostgreSQL refuses the second one); writing the batch
        again, on fresh snapshots, is then correct and cheap, where dropping the runner would
        cost a rebalance. Only for stateless processors: a stateful one has already folded the
        batch into its state, so its runner is rebuilt from the checkpoint instead.
        """

        def retrying(prepared: _Prepared) -> BatchResult:
            for attempt in range(1, IN_PLACE_RETRIES + 1):
                try:
                    return write(prepared)
                except StoreError as e:
                    if attempt == IN_PLACE_RETRIES:
                        raise
                    delay = random.uniform(0.02, 0.1) * 2**attempt
                    log.info(
                        "%s: %s: %s; batch written again in %.2f s (attempt %d)",
                        self.name,
                        type(e).__name__,
                        e,
                        delay,
                        attempt + 1,
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")

        return retrying

    def _on_batch(self, result: BatchResult, _stats: RunStats) -> None:
        if self._attempt:
            log.warning("%s: recovered after %d retries", self.name, self._attempt)
            self._attempt = 0
        totals = self.totals
        totals.batches += 1
        totals.messages += result.messages
        totals.new_events += result.new_events
        fresh = set(result.offsets) - totals.partitions
        if fresh:
            totals.partitions |= fresh
            log.info(
                "%s: reading partitions %s",
                self.name,
                ", ".join(f"{t}:{p}" for t, p in sorted(fresh)),
            )


class StateWorker(PipelineWorker):
    """A stream-state candidate: takes the group's lock and runs the state-only runner, or
    waits as a hot standby; failures (the lock lost included) go back to standby after the
    backoff (see pulso/pipeline/leader.py)."""

    def __init__(
        self,
        settings: Settings,
        *,
        group: str = DEFAULT_GROUP,
        state_group: str | None = None,
        name: str | None = None,
        open_bus: Callable[[Settings], Bus] | None = None,
        open_store: Callable[[Settings], Store] | None = None,
    ) -> None:
        from pulso.pipeline.leader import state_group as default_state_group

        super().__init__(
            settings,
            group=state_group or default_state_group(group),
            name=f"{name or f'worker-{os.getpid()}'}/state",
            open_bus=open_bus,
            open_store=open_store,
        )
        self.elected = 0
        """How many times this worker took the lock."""

    def _run_once(self, bus: Bus, store: Store, cancel: threading.Event) -> RunStats:
        from pulso.pipeline.leader import LeaseLost, StateLease, build_state_runner
        from pulso.pipeline.runner import RunStats

        lease = StateLease(
            store, self._group, self.name, dedupe_hours=self._settings.stream_dedupe_hours
        )
        try:
            announced = False
            while not lease.try_acquire():
                if not announced:
                    log.info("%s: standby (another worker runs the stream state)", self.name)
                    announced = True
                if cancel.wait(self._settings.stream_standby_poll_s):
                    return RunStats()
            self.elected += 1
            log.info(
                "%s: took the stream-state lock of %r (epoch %s): running windows/fraud",
                self.name,
                self._group,
                lease.epoch,
            )
            runner = build_state_runner(self._settings, bus, store, lease)
            checked = time.monotonic()

            def lost(_: RunStats) -> bool:  # between empty polls: is the session still alive?
                nonlocal checked
                if time.monotonic() - checked < LEASE_CHECK_S:
                    return False
                checked = time.monotonic()
                return not lease.alive()

            try:
                stats = runner.run(stop=lost, on_batch=self._on_batch, cancel=cancel)
            finally:
                runner.close()  # leaves the state group: its partitions go to the next holder
            if not cancel.is_set():
                raise LeaseLost(f"{self.name}: the stream-state lock's session broke")
            return stats
        finally:
            lease.release()


def check_role(settings: Settings, role: str) -> None:
    """Refuse an unknown role, and the state role with the windows and fraud both off."""
    if role not in ROLES:
        raise ConfigError("--role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "state" and not stateful_enabled(settings):
        raise ConfigError(
            "--role",
            "state runs the windows and the fraud scoring, and both are off "
            "(PULSO_WINDOW_ENABLED, PULSO_FRAUD_ENABLED)",
        )


def run_roles(
    settings: Settings,
    role: str,
    *,
    group: str = DEFAULT_GROUP,
    state_group: str | None = None,
    name: str | None = None,
    cancel: threading.Event,
) -> list[tuple[PipelineWorker, WorkerTotals]]:
    """Run the ``role``'s workers until ``cancel``: the facts one on this thread, the state
    one on its own; each worker and its totals."""
    check_role(settings, role)
    workers: list[PipelineWorker] = []
    if role in ("facts", "all"):
        workers.append(PipelineWorker(settings, group=group, facts_only=True, name=name))
    if role in ("state", "all") and stateful_enabled(settings):
        workers.append(StateWorker(settings, group=group, state_group=state_group, name=name))
    results: dict[int, WorkerTotals] = {}
    failures: list[BaseException] = []

    def run_one(index: int) -> None:
        try:
            results[index] = workers[index].run(cancel)
        except BaseException as e:  # a bug or a configuration error: stop the other too
            failures.append(e)
            cancel.set()

    threads = [
        threading.Thread(target=run_one, args=(i,), name=f"pulso-{w.name}", daemon=True)
        for i, w in enumerate(workers[1:], start=1)
    ]
    for thread in threads:
        thread.start()
    run_one(0)
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)
    if failures:
        raise failures[0]
    return [(w, results[i]) for i, w in enumerate(workers)]


@contextmanager
def stop_on_signals(cancel: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``cancel`` (main thread only), restored on the way out."""
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: cancel.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def worker(
    group: Annotated[str, typer.Option(help="Kafka consumer group the worker joins.")] = (
        DEFAULT_GROUP
    ),
    role: Annotated[
        str,
        typer.Option(
            help="facts: the stateless processors (payments, orders), scaled out over the "
            "group; state: a candidate for the ONE stream-state runner (windows, fraud), "
            "elected by a PostgreSQL lock, hot standby otherwise; all: both.",
        ),
    ] = "all",
    state_group: Annotated[
        str | None,
        typer.Option(help="Consumer group of the stream-state runner (default: <group>-state)."),
    ] = None,
    facts_only: Annotated[
        bool, typer.Option("--facts-only", help="The same as --role facts.", hidden=True)
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Name in the logs (default: worker-<pid>).")
    ] = None,
) -> None:
    """Run one pipeline worker (cluster profile: Kafka + PostgreSQL) until SIGTERM or Ctrl-C.

    Start several to scale out: they share the topics' partitions through the consumer group,
    and one of them at a time runs the windows and the fraud scoring (the others wait as hot
    standbys). Store and bus failures are retried with backoff; SIGTERM stops after the
    current batch.
    """
    settings = load_settings_or_exit()
    level = min(logging.INFO, logging.getLevelNamesMapping()[settings.log_level])
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pulso.store").setLevel(settings.log_level)
    if facts_only:
        role = "facts"
    with user_errors():
        require_cluster(settings, "pulso worker")
        if role not in ROLES:
            raise fail(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
        check_role(settings, role)
        from pulso.pipeline.leader import state_group as default_state_group

        label = name or f"worker-{os.getpid()}"
        parts = []
        if role in ("facts", "all"):
            parts.append(f"payments and orders in group {group!r}")
        if role in ("state", "all") and stateful_enabled(settings):
            parts.append(
                f"windows/fraud in group {state_group or default_state_group(group)!r} when "
                "elected (PostgreSQL lock), hot standby otherwise"
            )
        elif role == "all":
            parts.append("windows and fraud are off")
        console.print(
            f"{label}: {'; '.join(parts)}; bus {settings.bus_url} → PostgreSQL; SIGTERM stops "
            "after the current batch",
            markup=False,
            soft_wrap=True,
        )
        if settings.pii_key is None:
            console.print(
                f"note: PULSO_PII_KEY is not set: payer hashes use {settings.data_dir}/pii.key; "
                "workers on other machines must share one key (set PULSO_PII_KEY everywhere)",
                markup=False,
                soft_wrap=True,
            )
        cancel = threading.Event()
        started = time.monotonic()
        with stop_on_signals(cancel):
            ran = run_roles(
                settings, role, group=group, state_group=state_group, name=label, cancel=cancel
            )
        for runner, totals in ran:
            elected = f", elected {runner.elected}×" if isinstance(runner, StateWorker) else ""
            console.print(
                f"{runner.name} stopped: {totals.messages:,} messages in {totals.batches:,} "
                f"batches ({totals.new_events:,} new events, {totals.retries} retries{elected}) "
                f"in {time.monotonic() - started:,.0f} s",
                markup=False,
                soft_wrap=True,
            )


class WorkerPool:
    """``pulso up --profile cluster``'s pipeline workers: N ``pulso worker --role all``
    processes, each started again (after a pause) if it dies; SIGTERM to all on stop, SIGKILL
    after a grace.

    Every worker runs the facts, and every one is a candidate for the stream state: one holds
    the lock and also runs the windows and fraud, the others are its hot standbys. (Not a
    dedicated process: no extra process to supervise, N-1 standbys for free, and a restarted
    worker comes back as a standby; the cost is that the holder also carries a facts share.)"""

    def __init__(self, settings: Settings, count: int, *, group: str = DEFAULT_GROUP) -> None:
        self.count = count
        self._settings = settings
        self.stateful = stateful_enabled(settings)
        """Every worker is also a stream-state candidate: one runs the windows and fraud."""
        self._group = group
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self._restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="pulso-workers", daemon=True)

    def command(self, index: int) -> list[str]:
        command = [sys.executable, "-m", "pulso", "worker", "--group", self._group]
        return [*command, "--name", f"worker-{index + 1}", "--role", "all"]

    def start(self) -> None:
        from pulso.pipeline.factory import pii_key

        pii_key(self._settings)  # created once here, not raced for by the workers
        with self._lock:
            for index in range(self.count):
                self._processes[index] = self._spawn(index)
        self._monitor.start()

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p is not None]

    def problem(self) -> str | None:
        """None while every worker runs (a readiness check)."""
        with self._lock:
            down = [
                i + 1 for i, p in enumerate(self._processes) if p is None or p.poll() is not None
            ]
        return f"workers not running: {down}" if down else None

    def stop(self, grace_s: float = 30.0) -> None:
        self._stop.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)
        with self._lock:
            running = [p for p in self._processes if p is not None and p.poll() is None]
            for process in running:
                process.terminate()  # SIGTERM: the worker finishes its batch and leaves
            deadline = time.monotonic() + grace_s
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning(
                        "worker %d did not stop in %.0f s; killing it", process.pid, grace_s
                    )
                    process.kill()
                    process.wait()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self.command(index))  # inherits stdout/stderr: one log
        log.info("started worker-%d (pid %d)", index + 1, process.pid)
        return process

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                for index, process in enumerate(self._processes):
                    if process is None or process.poll() is None or self._stop.is_set():
                        continue
                    self._restarts += 1
                    log.warning(
                        "worker-%d (pid %d) exited with %s; starting it again",
                        index + 1,
                        process.pid,
                        process.returncode,
                    )
                    self._processes[index] = self._spawn(index)
