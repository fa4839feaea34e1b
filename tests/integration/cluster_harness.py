"""Harness for the cluster-profile tests: `pulso worker` processes, librdkafka's mock cluster
with brokers that can be taken down, a TCP proxy that plays a PostgreSQL restart, and the
generator's own totals to compare the store with."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import confluent_kafka
import psycopg
from confluent_kafka import Producer

from pulso.domain.events import Event, encode_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.sources.payments_generator import PaymentsConfig, generate_payments

PII_KEY = "0" * 64
PARTITIONS = 4

# ----------------------------------------------------------------------------- generated data


@dataclass(frozen=True, slots=True)
class Expected:
    """What the store must hold after the pipeline read ``events`` (each exactly once)."""

    events: int
    charges: int
    amount_cents: int
    confirmed: int
    paid_cents: int


def generated(n_stores: int = 3, days: int = 1) -> tuple[list[tuple[bytes, bytes]], Expected]:
    """A day of generated PIX traffic as keyed records, and its totals counted here."""
    events = list(
        generate_payments(PaymentsConfig(start=date(2026, 11, 16), days=days, n_stores=n_stores))
    )
    return [(e.key.encode(), encode_event(e)) for e in events], expected_of(events)


def expected_of(events: list[Event]) -> Expected:
    created = [e.data for e in events if isinstance(e.data, ChargeCreated)]
    paid = [e.data for e in events if isinstance(e.data, ChargeConfirmed)]
    return Expected(
        events=len(events),
        charges=len(created),
        amount_cents=sum(int(c.amount * 100) for c in created),
        confirmed=len(paid),
        paid_cents=sum(int(p.amount_paid * 100) for p in paid),
    )


def store_totals(url: str) -> Expected:
    """The same figures read from the store (payments, their minutes and raw_events agree)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM raw_events), count(*), coalesce(sum(amount_cents), 0), "
            "count(*) FILTER (WHERE status = 'confirmed'), "
            "coalesce(sum(paid_cents) FILTER (WHERE status = 'confirmed'), 0) FROM payments"
        ).fetchone()
        minutes = conn.execute(
            "SELECT coalesce(sum(charges), 0), coalesce(sum(amount_cents), 0), "
            "coalesce(sum(confirmed), 0), coalesce(sum(confirmed_cents), 0) FROM payment_minutes"
        ).fetchone()
    assert row is not None and minutes is not None
    totals = Expected(*(int(v) for v in row))
    assert (totals.charges, totals.amount_cents, totals.confirmed, totals.paid_cents) == tuple(
        int(v) for v in minutes
    ), f"payment_minutes {minutes} disagree with payments {totals}"
    return totals


def raw_count(url: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM raw_events").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def extra_schema(base_url: str) -> Iterator[str]:
    """Another empty schema beside the ``postgres_url`` fixture's (a reference run's)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    root = base_url.split("?options=")[0].split("&options=")[0]
    with psycopg.connect(root, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in root else "?"
            yield f"{root}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# ----------------------------------------------------------------------------- workers


class Worker:
    """One `pulso worker` process; its log is a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *args: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulso", "worker", "--name", name, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def partitions(self) -> set[str]:
        """Every partition this worker has read from, from its log."""
        found: set[str] = set()
        for line in re.findall(rf"{self.name}: reading partitions (.+)", self.log()):
            found |= {p.strip() for p in line.split(",")}
        return found

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30) -> int:
        self.process.terminate()
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def worker_env(tmp_path: Path, brokers: str, store_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(
        PULSO_DATA_DIR=str(tmp_path / "data"),
        PULSO_BUS_URL=f"kafka://{brokers}",
        PULSO_STORE_URL=store_url,
        PULSO_PII_KEY=PII_KEY,
        PULSO_KAFKA_PARTITIONS=str(PARTITIONS),
        PULSO_KAFKA_SESSION_TIMEOUT_S="3",
        PULSO_BATCH_SIZE="200",
        PULSO_BATCH_TIMEOUT_MS="100",
        PULSO_WORKER_RETRY_MAX_S="2",
        PULSO_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- mock cluster


class MockCluster:
    """librdkafka's mock cluster, owned here, with its brokers' down/up switches.

    confluent-kafka exposes the mock cluster only as the ``test.mock.num.brokers`` setting;
    the switches are librdkafka's C test API (``rd_kafka_handle_mock_cluster``,
    ``rd_kafka_mock_broker_set_down``/``_up``), called through ctypes on the librdkafka the
    wheel bundles, with the ``rd_kafka_t *`` read from the client object (the first field
    after ``PyObject_HEAD`` in confluent-kafka's ``Handle``).
    """

    def __init__(self, brokers: int = 3) -> None:
        self.owner = Producer({"test.mock.num.brokers": brokers, "bootstrap.servers": "x"})
        metadata = self.owner.list_topics(timeout=10)
        self.broker_ids = sorted(metadata.brokers)
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for _, b in sorted(metadata.brokers.items()))
        self._lib, self._mcluster = _mock_handle(self.owner)

    def set_down(self, broker_id: int) -> None:
        assert self._lib.rd_kafka_mock_broker_set_down(self._mcluster, broker_id) == 0

    def set_up(self, broker_id: int) -> None:
        assert self._lib.rd_kafka_mock_broker_set_up(self._mcluster, broker_id) == 0

    def close(self) -> None:
        self.owner.flush(5)
        del self.owner


def _mock_handle(client: Any) -> tuple[ctypes.CDLL, int]:
    libs = os.path.join(
        os.path.dirname(confluent_kafka.__file__), os.pardir, "confluent_kafka.libs"
    )
    found = sorted(glob.glob(os.path.join(libs, "librdkafka*.so*")))
    lib = ctypes.CDLL(found[0] if found else "librdkafka.so.1")
    lib.rd_kafka_handle_mock_cluster.restype = ctypes.c_void_p
    lib.rd_kafka_handle_mock_cluster.argtypes = [ctypes.c_void_p]
    for name in ("rd_kafka_mock_broker_set_down", "rd_kafka_mock_broker_set_up"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int32]
        getattr(lib, name).restype = ctypes.c_int
    rk = ctypes.c_void_p.from_address(id(client) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    mcluster = lib.rd_kafka_handle_mock_cluster(rk)
    if not mcluster:
        raise RuntimeError("this librdkafka has no mock cluster handle")
    return lib, int(mcluster)


# ----------------------------------------------------------------------------- TCP proxy


class TcpProxy:
    """An asyncio TCP proxy on its own thread, in front of PostgreSQL: ``cut(seconds)`` drops
    every connection and refuses new ones for that long (what clients see when the server
    restarts), then accepts again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.cuts = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._listen(0))

    def url(self, url: str) -> str:
        """``url`` (a PostgreSQL URL) pointed at this proxy."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self, seconds: float) -> None:
        self._call(self._cut(seconds))

    def close(self) -> None:
        self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self, seconds: float) -> None:
        self.cuts += 1
        await self._close_all()
        self._loop.call_later(seconds, lambda: asyncio.ensure_future(self._listen(self.port)))

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()  # refuse new connections: nothing listens on the port
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, as a dying server's kernel would send
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()


def postgres_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


# ----------------------------------------------------------------------------- stream state


def checkpointed(url: str, group: str) -> int:
    """How many messages ``group``'s checkpoint has folded in (the sum of its next offsets)."""
    import orjson

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT value FROM checkpoints WHERE name = %s", (f"offsets/{group}",)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return sum(orjson.loads(row[0]).values()) if row else 0


def elected(worker: Worker) -> int:
    """How many times ``worker`` took the stream-state lock, from its log."""
    return worker.log().count(f"{worker.name}/state: took the stream-state lock")


def embedded_run(
    records: list[tuple[bytes, bytes]], url: str, tmp_path: Path, **extra: Any
) -> None:
    """The reference: ONE runner with every processor (the embedded profile's pipeline) over
    ``records`` on a mock cluster of its own, into ``url``, until every message is read."""
    from pulso.bus.kafka import KafkaBus
    from pulso.config import load_settings
    from pulso.domain.events import Topic
    from pulso.pipeline.factory import build_runner
    from pulso.store import open_store

    cluster = MockCluster(brokers=1)
    settings = load_settings(
        data_dir=tmp_path / "reference-data",
        store_url=url,
        pii_key=PII_KEY,
        kafka_partitions=PARTITIONS,
        **extra,
    )
    bus = KafkaBus(cluster.bootstrap, partitions=PARTITIONS)
    store = open_store(settings)
    try:
        for i in range(0, len(records), 2000):
            bus.publish(Topic.PAYMENTS, records[i : i + 2000])
        runner = build_runner(settings, bus, store, group="reference")
        try:
            runner.run(stop=lambda stats: stats.messages >= len(records))
        finally:
            runner.close()
    finally:
        store.close()
        bus.close()
        cluster.close()
