"""The cluster's stream-state runner: ONE elected runner of the stateful processors.

The event-time windows and the fraud detector keep one state (a ``StatefulProcessor``
snapshot, checkpointed with the offsets), so they cannot share partitions among several
runners the way the stateless facts processors do. In the cluster profile they run in a
consumer group of their own (``<group>-state``, by default ``pulso-pipeline-state``), read by
one runner at a time, with any number of hot standbys:

- **Election.** Every worker that may run the state opens a connection of its own and tries
  ``pg_try_advisory_lock`` (session level; the key is derived from the schema and the state
  group). The holder runs the state runner; the others try again every
  ``PULSO_STREAM_STANDBY_POLL_S``. A holder that dies (``kill -9``, a crashed machine) loses
  its PostgreSQL session and with it the lock, so a standby takes over within seconds,
  restores the checkpoint (offsets and state, saved in one transaction) and continues: the
  results equal an uninterrupted run's.
- **Fencing.** Taking the lock raises the group's ``epoch`` in ``stream_leader``. Every batch
  transaction first checks that the lock's connection is alive and then updates that row
  *with the epoch it was elected with*: no row, no commit. The update holds the row until the
  batch commits, so a new holder's epoch bump waits for an old holder's batch in flight and
  restores the checkpoint after it; an old holder cut off from PostgreSQL (or just slow to see
  it lost the lock) can never commit after the new holder started. A batch in flight that
  holds the row longer than ``TAKEOVER_WAIT_S`` (its process frozen, its connection alive)
  has its session ended by the new holder, which then goes on: the old holder lost the lock,
  so that batch could only be stale.
- **Idempotency.** The facts workers write ``raw_events``, so the state runner dedupes
  producer re-sends against its own ``stream_seen_events`` (event ids, kept for
  ``PULSO_STREAM_DEDUPE_HOURS``): a re-sent event is not counted twice, a first-seen one is
  never skipped.

PostgreSQL only: DuckDB has no advisory locks (and one process owns its file anyway; the
embedded profile runs everything in one runner).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import psycopg

from pulso.domain.events import EVENT_KINDS
from pulso.errors import ConfigError, StoreError
from pulso.pipeline.processors import Processor
from pulso.pipeline.runner import DEFAULT_GROUP, PipelineRunner
from pulso.store.tables import STREAM_LEADER, STREAM_SEEN_EVENTS

if TYPE_CHECKING:
    from pulso.bus.protocol import Bus
    from pulso.config import Settings
    from pulso.doctor.result import Finding
    from pulso.store.protocol import Store, StoreTx

log = logging.getLogger(__name__)

TAKEOVER_WAIT_S: Final = 30.0
"""How long a new holder waits for the previous holder's batch in flight before ending its
session (a batch takes seconds; a frozen process would hold the row for ever)."""

_ROW_HOLDERS_SQL: Final = (
    "SELECT l.pid FROM pg_locks l JOIN "
    f"(SELECT xmax FROM {STREAM_LEADER.name} WHERE group_name = %s) r "
    "ON l.locktype = 'transactionid' AND l.transactionid::text = r.xmax::text "
    "WHERE l.granted AND l.pid <> pg_backend_pid()"
)
"""The sessions whose open transaction holds the group's row (its ``xmax``)."""

PRUNE_EVERY_S: Final = 600.0
"""How often the holder drops event ids older than the dedupe horizon (in a batch's tx)."""

_LOCK_KEY_SQL: Final = "hashtextextended('pulso-stream-state/' || current_schema() || '/' || %s, 0)"
"""The advisory lock's key: per database (as advisory locks are), schema and state group."""


class LeaseLost(StoreError):
    """This worker no longer holds the stream-state lock; its batch was rolled back."""


def state_group(group: str = DEFAULT_GROUP) -> str:
    """The stream-state runner's consumer group beside the facts workers' ``group``."""
    return f"{group}-state"


def require_postgres(store: Store) -> None:
    if store.dialect != "postgresql":
        raise ConfigError(
            "PULSO_STORE_URL",
            "the elected stream-state runner (windows and fraud with several workers) needs "
            "PostgreSQL advisory locks; DuckDB has none: use the embedded profile (`pulso up`, "
            "`pulso run`: one runner with everything) or PULSO_STORE_URL=postgresql://...",
        )


class StateLease:
    """The stream-state lock of ``group``, on a PostgreSQL connection of its own."""

    def __init__(
        self,
        store: Store,
        group: str,
        holder: str,
        *,
        dedupe_hours: float = 168.0,
        takeover_wait_s: float = TAKEOVER_WAIT_S,
    ) -> None:
        require_postgres(store)
        self._store = store
        self.group = group
        self.holder = holder
        self._dedupe_hours = dedupe_hours
        self._takeover_wait_s = takeover_wait_s
        self.epoch: int | None = None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._pruned_at = 0.0

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free, raising the group's epoch; False while another holds
        it. The epoch bump waits for a previous holder's batch still in flight."""
        if self.held:
            return True
        conn = self._connection()
        try:
            row = conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY_SQL})", (self.group,))
            got = row.fetchone()
            if not (got and got[0]):
                return False
            wait_ms = max(1, round(self._takeover_wait_s * 1000))
            conn.execute(f"SET lock_timeout = {wait_ms}")
            try:
                bumped = self._bump(conn)
            except psycopg.errors.LockNotAvailable:
                self._end_stale_batch(conn)
                bumped = self._bump(conn)
        except psycopg.Error as e:
            self.release()
            raise StoreError(f"could not take the stream-state lock: {e}") from e
        assert bumped is not None
        self.epoch = int(bumped[0])
        return True

    def _bump(self, conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        return conn.execute(
            f"INSERT INTO {STREAM_LEADER.name} (group_name, epoch, holder, since) "
            "VALUES (%s, 1, %s, now()) ON CONFLICT (group_name) DO UPDATE SET "
            f"epoch = {STREAM_LEADER.name}.epoch + 1, holder = EXCLUDED.holder, "
            "since = EXCLUDED.since, last_batch_at = NULL RETURNING epoch",
            (self.group, self.holder),
        ).fetchone()

    def _end_stale_batch(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """End the sessions whose transaction still holds the group's row: a previous holder's
        batch, stale since this worker has the lock."""
        pids = [row[0] for row in conn.execute(_ROW_HOLDERS_SQL, (self.group,)).fetchall()]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        log.warning(
            "%s: the previous holder's batch held the stream state for over %.0f s; "
            "its session %s was ended",
            self.holder,
            self._takeover_wait_s,
            ", ".join(map(str, pids)) or "(gone by now)",
        )

    def fence(self, tx: StoreTx) -> None:
        """First statement of every state batch: the lock still held, the epoch still ours."""
        epoch = self.epoch
        if epoch is None or not self.alive():
            raise LeaseLost(f"{self.holder}: the stream-state lock is not held (session lost)")
        now = datetime.now(UTC)
        rows = tx.fetch(
            f"UPDATE {STREAM_LEADER.name} SET last_batch_at = %s "
            "WHERE group_name = %s AND epoch = %s RETURNING epoch",
            (now, self.group, epoch),
        )
        if not rows:
            self.release()
            raise LeaseLost(
                f"{self.holder}: another worker took the stream state (epoch {epoch} is over)"
            )
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            horizon = timedelta(hours=self._dedupe_hours)
            tx.execute(
                f"DELETE FROM {STREAM_SEEN_EVENTS.name} WHERE received_at < %s", (now - horizon,)
            )

    def alive(self) -> bool:
        """Whether the lock's session still answers (a lost session has released it)."""
        conn = self._conn
        if self.epoch is None or conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as e:
            log.warning("%s: the stream-state lock's session broke: %s", self.holder, e)
            self.release()
            return False
        return True

    def release(self) -> None:
        """Let the lock go (closing the session releases it)."""
        self.epoch = None
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        if not conn.broken:
            try:  # at once, not when the server notices the closed socket
                conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY_SQL})", (self.group,))
            except psycopg.Error as e:
                log.debug("%s: unlock: %s (closing the session releases it)", self.holder, e)
        conn.close()

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            session = getattr(self._store, "session", None)
            if session is None:
                require_postgres(self._store)
                raise ConfigError("PULSO_STORE_URL", "this store cannot open a session")
            self._conn = session()
        return self._conn


def stateful_processors(settings: Settings) -> list[Processor]:
    """The windows and the fraud scoring, as the settings enable them."""
    from pulso.fraud.thresholds import thresholds_from_settings
    from pulso.pipeline.factory import pii_key, window_config
    from pulso.pipeline.processors.fraud import FraudProcessor
    from pulso.pipeline.processors.windows import WindowsProcessor

    processors: list[Processor] = []
    if settings.window_enabled:
        processors.append(WindowsProcessor(window_config(settings)))
    if settings.fraud_enabled:
        processors.append(FraudProcessor(thresholds_from_settings(settings), pii_key(settings)))
    return processors


def build_state_runner(
    settings: Settings, bus: Bus, store: Store, lease: StateLease
) -> PipelineRunner:
    """The state-only runner of ``lease.group``, fenced by ``lease`` (which must be held)."""
    if not lease.held:
        raise LeaseLost(f"{lease.holder}: the stream-state lock is not held")
    processors = stateful_processors(settings)
    if not processors:
        raise ConfigError(
            "PULSO_WINDOW_ENABLED/PULSO_FRAUD_ENABLED",
            "the stream-state runner has nothing to run: the windows and the fraud scoring are "
            "off (PULSO_WINDOW_ENABLED, PULSO_FRAUD_ENABLED)",
        )
    topics = sorted({EVENT_KINDS[t].topic for p in processors for t in p.event_types})
    return PipelineRunner(
        bus,
        store,
        processors,
        topics=topics,
        group=lease.group,
        batch_size=settings.batch_size,
        poll_timeout_s=settings.batch_timeout_ms / 1000,
        state_only=True,
        fence=lease.fence,
    )


_HOLDER_SQL: Final = (
    f"SELECT holder, epoch, since, last_batch_at FROM {STREAM_LEADER.name} "
    "WHERE group_name = %s AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
    "AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) "
    f"= {_LOCK_KEY_SQL})"
)


def check_stream_state(settings: Settings, timeout_s: float) -> Finding | None:
    """``pulso doctor``'s line on the cluster's stream state: who holds its lock (None when
    it does not apply: DuckDB, or the windows and fraud both off)."""
    from pulso.doctor.result import failed, first_line, ok, warning

    if settings.store.kind != "postgresql" or not (
        settings.window_enabled or settings.fraud_enabled
    ):
        return None
    group = state_group()
    component = "stream state (windows, fraud)"
    try:
        with psycopg.connect(
            settings.store.dsn, autocommit=True, connect_timeout=max(1, math.ceil(timeout_s))
        ) as conn:
            if conn.execute("SELECT to_regclass(%s)", (STREAM_LEADER.name,)).fetchone() == (None,):
                return ok(component, "no worker has run the cluster's stream state here yet")
            rows = conn.execute(_HOLDER_SQL, (group, group)).fetchall()
    except psycopg.Error as e:
        return failed(component, f"cannot read the lock holder: {first_line(e)}", "see store")
    if not rows:
        return warning(
            component,
            f"nobody holds the stream-state lock of {group!r}: the windows and the fraud "
            "scoring do not advance in the cluster profile (fine for the embedded profile)",
            "start `pulso worker` (--role all or state), or `pulso up --profile cluster`",
        )
    holder, epoch, since, last = rows[0]
    last_text = f", last batch {last:%Y-%m-%d %H:%M:%S %Z}" if last else ", no batch yet"
    return ok(
        component,
        f"{holder} runs the stream state of {group!r} (epoch {epoch}, since "
        f"{since:%Y-%m-%d %H:%M:%S %Z}{last_text})",
    )


def describe_holder(store: Store, group: str) -> tuple[str, int, datetime, datetime | None] | None:
    """(holder, epoch, since, last batch) of ``group``'s live lock holder; None when nobody
    holds the lock (the row of a dead holder is not reported)."""
    require_postgres(store)
    rows = store.query(_HOLDER_SQL, (group, group))
    if not rows:
        return None
    holder, epoch, since, last = rows[0]
    return str(holder), int(epoch), since, last
