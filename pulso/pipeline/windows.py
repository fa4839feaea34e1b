"""Event-time windows over the payment stream: the state machine, with no I/O.

Windows: tumbling 1 minute and sliding 5 minutes (1-minute step), per store, per city and per
payment type; each holds count, sum, mean and max of the amounts, in centavos. Both are built
from 1-minute *panes* (count, sum, max per group and minute): a tumbling window is one pane, a
sliding window the merge of five.

Watermark. Each bus partition has its own: the latest event time read from it minus the
out-of-orderness bound. An event is *late beyond the allowed lateness* when its time is before
its partition's watermark minus the allowed lateness, judged against the events read before it
from the same partition, in offset order. That decision depends only on the partition's log,
never on how the log was cut into batches or how partitions interleave, so a restart from a
checkpoint decides every event as an uninterrupted run would. The stream's watermark is the
smallest partition watermark (never going back); a window is emitted when it passes the
window's end, rewritten when an accepted event lands in it afterwards, and *final* (its panes
dropped from memory) when it passes end + allowed lateness. An accepted event always finds its
window still open: its time is after its partition's watermark minus the lateness, which is
at or after the stream's.

Clock skew. An event stamped more than ``max_future`` ahead of the processing clock is kept
aside (``future_event``) and moves no watermark: one wrong clock cannot close everybody's
windows. (This is the one decision that reads the wall clock; events near ``now +
max_future`` during a crash could be decided differently on the retry.)

Partitions. The stream has no watermark until every one of its ``partitions`` (configured:
the topic's partition count) has been read from, so how the first batches interleave the
partitions changes nothing. A partition beyond that count, read for the first time later
(a topic that grew), starts at the stream's watermark so it cannot reopen final windows; that
start depends on when it is first read (the one case a restart may decide differently). A
partition that stops receiving data holds the stream's watermark back (its windows stay open,
nothing is lost, like an idle Kafka source in Flink); pulso keys payments by charge id, so
every partition carries traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

MINUTE_US: Final = 60_000_000
SLIDING_MINUTES: Final = 5
DIMENSIONS: Final = ("store", "city", "payment_type")
TUMBLING: Final = "tumbling_1m"
SLIDING: Final = "sliding_5m"
NEVER: Final = -(2**62)  # "no event yet": far below any real time, far from overflow

LATE: Final = "late_event"
FUTURE: Final = "future_event"

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Bounds, in microseconds."""

    out_of_orderness_us: int = 5_000_000
    allowed_lateness_us: int = 60_000_000
    max_future_us: int = 300_000_000
    partitions: int = 1
    """How many partitions the stream has: no watermark until each has been read from."""

    @classmethod
    def from_seconds(
        cls,
        out_of_orderness_s: float,
        allowed_lateness_s: float,
        max_future_s: float,
        partitions: int = 1,
    ) -> WindowConfig:
        return cls(
            round(out_of_orderness_s * 1e6),
            round(allowed_lateness_s * 1e6),
            round(max_future_s * 1e6),
            partitions,
        )


@dataclass(slots=True)
class Batch:
    """A batch of payments as columns, in the order read.

    ``keys[d][i]`` is event i's group in dimension ``DIMENSIONS[d]``, as a code into
    ``names[d]``; ``partition[i]`` a code into ``partitions``.
    """

    time_us: Int64Array
    amount_cents: Int64Array
    partition: Int64Array
    partitions: list[str]
    keys: list[Int64Array]
    names: list[list[str]]

    def __len__(self) -> int:
        return len(self.time_us)


@dataclass(frozen=True, slots=True)
class WindowRow:
    kind: str
    dimension: str
    key: str
    start_us: int
    end_us: int
    events: int
    amount_cents: int
    max_cents: int
    final: bool

    @property
    def mean_cents(self) -> Decimal:
        """Exact to 1/100 of a centavo (half-even)."""
        return (Decimal(self.amount_cents) / self.events).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_EVEN
        )


@dataclass(slots=True)
class Outcome:
    """What one batch did: rows to write, and the events kept out of the windows."""

    rows: list[WindowRow]
    late: Int64Array  # indexes into the batch
    future: Int64Array
    bound_us: Int64Array  # per event: the time it had to reach (late) or not pass (future)
    watermark_us: int


PaneKey = tuple[int, str, int]  # (dimension index, key, minute)


class _Snapshot(msgspec.Struct, array_like=True):
    version: int
    partitions: dict[str, int]
    watermark: int
    panes: list[tuple[int, str, int, int, int, int]]
    accepted: int
    late: int
    future: int


@dataclass(slots=True)
class WindowState:
    """Per-partition maxima, the open panes and the stream watermark: all a restart needs."""

    config: WindowConfig = field(default_factory=WindowConfig)
    partition_max: dict[str, int] = field(default_factory=dict)
    watermark_us: int = NEVER
    panes: dict[PaneKey, list[int]] = field(default_factory=dict)  # [count, sum, max]
    accepted: int = 0
    late: int = 0
    future: int = 0

    # --- checkpoints ------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        # Sorted: the same state always gives the same bytes.
        panes = sorted((d, k, m, v[0], v[1], v[2]) for (d, k, m), v in self.panes.items())
        return msgspec.msgpack.encode(
            _Snapshot(
                1,
                dict(sorted(self.partition_max.items())),
                self.watermark_us,
                panes,
                self.accepted,
                self.late,
                self.future,
            )
        )

    def restore(self, data: bytes | None) -> None:
        if data is None:
            self.partition_max, self.watermark_us, self.panes = {}, NEVER, {}
            self.accepted = self.late = self.future = 0
            return
        snap = msgspec.msgpack.decode(data, type=_Snapshot)
        if snap.version != 1:
            raise ValueError(f"unknown window state version {snap.version}")
        self.partition_max = dict(snap.partitions)
        self.watermark_us = snap.watermark
        self.panes = {(d, k, m): [c, s, x] for d, k, m, c, s, x in snap.panes}
        self.accepted, self.late, self.future = snap.accepted, snap.late, snap.future

    # --- one batch --------------------------------------------------------------------------

    def apply(self, batch: Batch, now_us: int) -> Outcome:
        """Classify, aggregate and emit one batch; the state moves past it."""
        cfg = self.config
        t = batch.time_us
        future = t > now_us + cfg.max_future_us
        late = np.zeros(len(t), dtype=np.bool_)
        bound = np.full(len(t), now_us + cfg.max_future_us, dtype=np.int64)
        slack = cfg.out_of_orderness_us + cfg.allowed_lateness_us
        for code, name in enumerate(batch.partitions):
            idx = np.flatnonzero(batch.partition == code)
            if not len(idx):
                continue
            start = self.partition_max.get(name)
            if start is None:  # a new partition starts at the stream's watermark
                start = (
                    self.watermark_us + cfg.out_of_orderness_us
                    if self.watermark_us > NEVER
                    else NEVER
                )
            times = np.where(future[idx], NEVER, t[idx])
            running = np.maximum.accumulate(np.concatenate(([start], times)))
            before = running[:-1]
            limit = np.where(before > NEVER, before - slack, NEVER)
            late[idx] = ~future[idx] & (t[idx] < limit)
            bound[idx] = np.where(future[idx], bound[idx], limit)
            if running[-1] > NEVER:
                self.partition_max[name] = int(running[-1])
        accepted = ~(late | future)
        self.accepted += int(accepted.sum())
        self.late += int(late.sum())
        self.future += int(future.sum())

        touched = self._aggregate(batch, accepted)
        previous = self.watermark_us
        if len(self.partition_max) >= cfg.partitions:
            candidate = min(self.partition_max.values()) - cfg.out_of_orderness_us
            self.watermark_us = max(previous, candidate)
        rows = self._emit(touched, previous, self.watermark_us)
        self._purge(self.watermark_us)
        return Outcome(rows, np.flatnonzero(late), np.flatnonzero(future), bound, self.watermark_us)

    def _aggregate(self, batch: Batch, accepted: BoolArray) -> set[PaneKey]:
        """Fold the accepted events into panes (one vectorised group-by per dimension)."""
        touched: set[PaneKey] = set()
        if not accepted.any():
            return touched
        minute = batch.time_us[accepted] // MINUTE_US
        amount = batch.amount_cents[accepted]
        low = int(minute.min())
        span = int(minute.max()) - low + 1
        for d, (codes, names) in enumerate(zip(batch.keys, batch.names, strict=True)):
            combined = codes[accepted] * span + (minute - low)
            order = np.argsort(combined, kind="stable")
            ordered = combined[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            counts = np.diff(np.r_[starts, len(ordered)])
            sums = np.add.reduceat(amount[order], starts)
            maxes = np.maximum.reduceat(amount[order], starts)
            groups = ordered[starts]
            for g, c, s, x in zip(
                groups.tolist(), counts.tolist(), sums.tolist(), maxes.tolist(), strict=True
            ):
                key = (d, names[g // span], low + g % span)
                pane = self.panes.get(key)
                if pane is None:
                    self.panes[key] = [c, s, x]
                else:
                    pane[0] += c
                    pane[1] += s
                    if x > pane[2]:
                        pane[2] = x
                touched.add(key)
        return touched

    def _emit(self, touched: set[PaneKey], previous: int, watermark: int) -> list[WindowRow]:
        """Rows for the windows emitted now, updated by this batch, or final now."""
        wanted: set[tuple[str, int, str, int]] = set()  # (kind, dimension, key, start minute)
        for d, k, m in touched:
            wanted.add((TUMBLING, d, k, m))
            for s in range(m - SLIDING_MINUTES + 1, m + 1):
                wanted.add((SLIDING, d, k, s))
        lateness = self.config.allowed_lateness_us
        if _crosses_minute(previous, watermark) or _crosses_minute(
            previous - lateness, watermark - lateness
        ):
            for d, k, m in self.panes:
                if _changes((m + 1) * MINUTE_US, previous, watermark, lateness):
                    wanted.add((TUMBLING, d, k, m))
                for s in range(m - SLIDING_MINUTES + 1, m + 1):
                    if _changes((s + SLIDING_MINUTES) * MINUTE_US, previous, watermark, lateness):
                        wanted.add((SLIDING, d, k, s))
        rows: list[WindowRow] = []
        for kind, d, k, s in wanted:
            length = 1 if kind == TUMBLING else SLIDING_MINUTES
            end = (s + length) * MINUTE_US
            if end > watermark:
                continue  # not emitted yet
            final = end + lateness <= watermark
            count = total = 0
            top = NEVER
            for m in range(s, s + length):
                pane = self.panes.get((d, k, m))
                if pane is not None:
                    count += pane[0]
                    total += pane[1]
                    top = max(top, pane[2])
            if count:
                rows.append(
                    WindowRow(kind, DIMENSIONS[d], k, s * MINUTE_US, end, count, total, top, final)
                )
        rows.sort(key=lambda r: (r.kind, r.dimension, r.key, r.start_us))
        return rows

    def _purge(self, watermark: int) -> None:
        """Drop panes every window of which is final."""
        horizon = watermark - self.config.allowed_lateness_us
        gone = [key for key in self.panes if (key[2] + SLIDING_MINUTES) * MINUTE_US <= horizon]
        for key in gone:
            del self.panes[key]


def _crosses_minute(before: int, after: int) -> bool:
    """Whether a minute boundary b has before < b <= after."""
    return after // MINUTE_US > before // MINUTE_US


def _changes(end: int, previous: int, watermark: int, lateness: int) -> bool:
    """Whether the window ending at ``end`` is emitted, or becomes final, as the watermark
    moves from ``previous`` to ``watermark``."""
    return previous < end <= watermark or previous < end + lateness <= watermark


def brute_force(
    times_us: Sequence[int],
    amounts: Sequence[int],
    partitions: Sequence[str],
    keys: Sequence[Sequence[str]],
    config: WindowConfig,
    now_us: int,
) -> tuple[list[WindowRow], list[int], list[int]]:
    """The windows by definition, one event at a time (for tests): the emitted rows at the
    end, the late and the future events' indexes."""
    maxima: dict[str, int] = {}
    watermark = NEVER
    late: list[int] = []
    future: list[int] = []
    events: list[tuple[int, int, list[str]]] = []
    slack = config.out_of_orderness_us + config.allowed_lateness_us
    for i, (t, a, p) in enumerate(zip(times_us, amounts, partitions, strict=True)):
        if t > now_us + config.max_future_us:
            future.append(i)
            continue
        start = maxima.get(p)
        if start is None:
            start = watermark + config.out_of_orderness_us if watermark > NEVER else NEVER
        if start > NEVER and t < start - slack:
            late.append(i)
        else:
            events.append((t, a, [k[i] for k in keys]))
        maxima[p] = max(start, t)
        if len(maxima) >= config.partitions:
            watermark = max(watermark, min(maxima.values()) - config.out_of_orderness_us)
    rows: list[WindowRow] = []
    groups: dict[tuple[str, int, str, int], list[int]] = {}
    for t, a, group in events:
        m = t // MINUTE_US
        for d, k in enumerate(group):
            groups.setdefault((TUMBLING, d, k, m), []).append(a)
            for s in range(m - SLIDING_MINUTES + 1, m + 1):
                groups.setdefault((SLIDING, d, k, s), []).append(a)
    for (kind, d, k, s), values in groups.items():
        end = (s + (1 if kind == TUMBLING else SLIDING_MINUTES)) * MINUTE_US
        if end <= watermark:
            final = end + config.allowed_lateness_us <= watermark
            row = WindowRow(
                kind,
                DIMENSIONS[d],
                k,
                s * MINUTE_US,
                end,
                len(values),
                sum(values),
                max(values),
                final,
            )
            rows.append(row)
    rows.sort(key=lambda r: (r.kind, r.dimension, r.key, r.start_us))
    return rows, late, future


def merge_rows(
    batches: Iterable[Iterable[WindowRow]],
) -> dict[tuple[str, str, str, int], WindowRow]:
    """The last row written per window: what the store holds after upserting ``batches``."""
    latest: dict[tuple[str, str, str, int], WindowRow] = {}
    for rows in batches:
        for row in rows:
            latest[(row.kind, row.dimension, row.key, row.start_us)] = row
    return latest
