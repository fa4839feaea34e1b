"""Event-time windows: the state machine against a one-event-at-a-time recomputation."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import numpy as np
import pytest

from pulso.pipeline.windows import (
    MINUTE_US,
    SLIDING,
    TUMBLING,
    Batch,
    Int64Array,
    WindowConfig,
    WindowRow,
    WindowState,
    brute_force,
    merge_rows,
)

S = 1_000_000  # one second in microseconds
T0 = 29_000_000 * MINUTE_US  # a whole minute in 2025
NOW = T0 + 10_000 * MINUTE_US
CONFIG = WindowConfig(
    out_of_orderness_us=5 * S, allowed_lateness_us=60 * S, max_future_us=300 * S, partitions=1
)
CONFIG4 = WindowConfig(
    out_of_orderness_us=5 * S, allowed_lateness_us=60 * S, max_future_us=300 * S, partitions=4
)

Event = tuple[int, int, str, str, str, str]  # time, cents, partition, store, city, type


def group(event: Event, dimension: int) -> str:
    """The event's store, city or payment type."""
    return (event[3], event[4], event[5])[dimension]


def batch_of(events: Sequence[Event]) -> Batch:
    def encode(values: list[str]) -> tuple[Int64Array, list[str]]:
        names = sorted(set(values))
        index = {n: i for i, n in enumerate(names)}
        return np.array([index[v] for v in values], dtype=np.int64), names

    parts, part_names = encode([e[2] for e in events])
    keys, names = zip(*(encode([group(e, d) for e in events]) for d in range(3)), strict=True)
    return Batch(
        time_us=np.array([e[0] for e in events], dtype=np.int64),
        amount_cents=np.array([e[1] for e in events], dtype=np.int64),
        partition=parts,
        partitions=part_names,
        keys=list(keys),
        names=list(names),
    )


def run(
    events: Sequence[Event], cuts: Sequence[int], state: WindowState | None = None
) -> tuple[dict[tuple[str, str, str, int], WindowRow], list[int], list[int], WindowState]:
    state = state or WindowState(CONFIG4)
    written: list[list[WindowRow]] = []
    late: list[int] = []
    future: list[int] = []
    bounds = [0, *cuts, len(events)]
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        outcome = state.apply(batch_of(events[lo:hi]), NOW)
        written.append(outcome.rows)
        late += [lo + i for i in outcome.late.tolist()]
        future += [lo + i for i in outcome.future.tolist()]
    return merge_rows(written), late, future, state


def expected(
    events: Sequence[Event],
) -> tuple[dict[tuple[str, str, str, int], WindowRow], list[int], list[int]]:
    rows, late, future = brute_force(
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        [[group(e, d) for e in events] for d in range(3)],
        CONFIG4,
        NOW,
    )
    return merge_rows([rows]), late, future


def random_stream(rng: random.Random, n: int, partitions: int = 4) -> list[Event]:
    stores = [f"LJ-{i:04d}" for i in range(9)]
    cities = {s: ("Recife/PE" if i % 3 else "Curitiba/PR") for i, s in enumerate(stores)}
    events: list[Event] = []
    clock = T0
    for _ in range(n):
        clock += rng.randrange(0, 400_000)  # ~5 events a second
        t = clock - rng.randrange(0, 8 * S)  # out of order, a bit past the bound sometimes
        roll = rng.random()
        if roll < 0.02:
            t = clock - rng.randrange(60 * S, 240 * S)  # late, some beyond the lateness
        elif roll < 0.025:
            t = NOW + rng.randrange(301 * S, 10**6 * S)  # a clock far ahead
        store = rng.choice(stores)
        partition = f"p:{rng.randrange(partitions)}"
        kind = rng.choice(("pix_dynamic", "pix_static"))
        events.append((t, rng.randrange(1, 500_000), partition, store, cities[store], kind))
    return events


@pytest.mark.parametrize("seed", range(5))
def test_windows_equal_a_brute_force_recomputation_however_the_stream_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    events = random_stream(rng, 3000)
    want_rows, want_late, want_future = expected(events)
    assert want_late and want_future and len(want_rows) > 100  # the stream exercises them all

    for cuts in ([], list(range(1, len(events))), sorted(rng.sample(range(1, 3000), 40))):
        rows, late, future, _ = run(events, cuts)
        assert rows == want_rows
        assert (late, future) == (want_late, want_future)


def test_a_restart_from_a_snapshot_gives_the_uninterrupted_result() -> None:
    rng = random.Random(99)
    events = random_stream(rng, 2000)
    reference, ref_late, ref_future, ref_state = run(events, [500, 1000, 1500])

    first, late1, future1, state = run(events[:777], [300])
    restored = WindowState(CONFIG4)
    restored.restore(state.snapshot())
    rest, late2, future2, end_state = run(events[777:], [100, 900], restored)
    merged = merge_rows([first.values(), rest.values()])
    assert merged == reference
    assert late1 + [777 + i for i in late2] == ref_late
    assert future1 + [777 + i for i in future2] == ref_future
    assert end_state.snapshot() == ref_state.snapshot()


def ev(t: int, cents: int = 100, *, store: str = "LJ-1", partition: str = "p:0") -> Event:
    return (t, cents, partition, store, "Recife/PE", "pix_dynamic")


def rows_of(state: WindowState, events: Sequence[Event]) -> list[WindowRow]:
    return state.apply(batch_of(events), NOW).rows


def store_rows(rows: Sequence[WindowRow], kind: str = TUMBLING) -> list[WindowRow]:
    return [r for r in rows if r.dimension == "store" and r.kind == kind]


def test_out_of_order_within_the_bound_lands_in_its_window() -> None:
    state = WindowState(CONFIG)
    assert rows_of(state, [ev(T0 + 30 * S, 100), ev(T0 + 62 * S, 200), ev(T0 + 58 * S, 300)]) == []
    # watermark = 62 s - 5 s: the first minute is not emitted yet
    rows = rows_of(state, [ev(T0 + 66 * S, 1)])
    [row] = store_rows(rows)
    assert (row.start_us, row.events, row.amount_cents, row.max_cents) == (T0, 2, 400, 300)
    assert row.mean_cents == 200 and not row.final


def test_late_within_the_lateness_updates_an_emitted_window_then_it_becomes_final() -> None:
    state = WindowState(CONFIG)
    [first] = store_rows(rows_of(state, [ev(T0 + 10 * S, 100), ev(T0 + 70 * S, 1)]))
    assert first.events == 1
    [updated] = store_rows(rows_of(state, [ev(T0 + 20 * S, 50)]))  # 50 s late, allowed
    assert (updated.events, updated.amount_cents, updated.final) == (2, 150, False)
    outcome = state.apply(batch_of([ev(T0 + 126 * S, 1)]), NOW)  # watermark 121 s
    final = [r for r in store_rows(outcome.rows) if r.start_us == T0]
    assert final[0].final and final[0].events == 2


def test_later_than_the_lateness_is_kept_aside_not_dropped() -> None:
    state = WindowState(CONFIG)
    state.apply(batch_of([ev(T0 + 10 * S), ev(T0 + 200 * S)]), NOW)
    outcome = state.apply(batch_of([ev(T0 + 20 * S, 999), ev(T0 + 150 * S, 5)]), NOW)
    assert outcome.late.tolist() == [0]
    assert outcome.bound_us[0] == T0 + 200 * S - 65 * S
    assert state.late == 1 and state.accepted == 3
    assert all(r.amount_cents != 999 + 100 for r in outcome.rows)


def test_a_clock_far_ahead_moves_no_watermark() -> None:
    state = WindowState(CONFIG)
    outcome = state.apply(batch_of([ev(T0), ev(NOW + 3600 * S, 7), ev(T0 + 30 * S)]), NOW)
    assert outcome.future.tolist() == [1]
    assert outcome.bound_us[1] == NOW + 300 * S
    assert state.watermark_us == T0 + 25 * S
    assert not any(r.amount_cents == 7 for r in outcome.rows)
    # still on time for everybody else
    assert state.apply(batch_of([ev(T0 + 40 * S)]), NOW).late.tolist() == []


def test_a_store_that_goes_quiet_still_has_its_windows_closed() -> None:
    state = WindowState(CONFIG)
    state.apply(batch_of([ev(T0 + 5 * S, 40, store="LJ-GONE"), ev(T0 + 6 * S, 1)]), NOW)
    emitted: list[WindowRow] = []
    for minute in range(1, 9):
        emitted += state.apply(batch_of([ev(T0 + minute * MINUTE_US, 1)]), NOW).rows
    gone = [r for r in emitted if r.key == "LJ-GONE"]
    assert {(r.kind, r.final) for r in gone} == {
        (TUMBLING, False),
        (TUMBLING, True),
        (SLIDING, False),
        (SLIDING, True),
    }
    assert not any(k[1] == "LJ-GONE" for k in state.panes)  # and its memory is freed


def test_sliding_windows_cover_five_minutes_in_one_minute_steps() -> None:
    state = WindowState(CONFIG)
    state.apply(batch_of([ev(T0 + 150 * S, 10)]), NOW)
    rows = state.apply(batch_of([ev(T0 + 20 * MINUTE_US, 1)]), NOW).rows
    sliding = [r for r in store_rows(rows, SLIDING) if r.amount_cents == 10]
    starts = sorted((r.start_us - T0) // MINUTE_US for r in sliding)
    assert starts == [-2, -1, 0, 1, 2]
    assert all(r.end_us - r.start_us == 5 * MINUTE_US for r in sliding)


def test_memory_stays_bounded_on_a_long_stream() -> None:
    state = WindowState(CONFIG)
    for minute in range(300):
        state.apply(
            batch_of(
                [ev(T0 + minute * MINUTE_US + s * S, store=f"LJ-{s % 20}") for s in range(0, 60, 2)]
            ),
            NOW,
        )
    minutes = {k[2] for k in state.panes}
    assert len(minutes) <= 8
    assert len(state.snapshot()) < 20_000


def test_a_bad_snapshot_is_refused() -> None:
    state = WindowState(CONFIG)
    data = bytearray(state.snapshot())
    data[1] = 7  # the version
    with pytest.raises(ValueError, match="version"):
        state.restore(bytes(data))


@pytest.mark.parametrize("limit_s", [2**32 - 1, 253_402_300_799])  # 2106, and 9999-12-31
def test_event_times_convert_to_the_exact_microsecond(limit_s: int) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from pulso.domain.payments import ChargeCreated
    from pulso.pipeline.processors.windows import to_batch

    rng = random.Random(limit_s)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micros = [rng.randrange(0, limit_s * S) for _ in range(2000)]
    charges = [
        ChargeCreated(
            charge_id=f"c{i}",
            txid=f"T{i}",
            store_id="LJ-1",
            city="Natal",
            uf="RN",
            amount=Decimal(i % 999 + 1) / 100,
            created_at=epoch + timedelta(microseconds=us),
            expires_at=epoch + timedelta(microseconds=us + 1),
        )
        for i, us in enumerate(micros)
    ]
    batch = to_batch(charges, ["p"] * len(charges))
    assert batch.time_us.tolist() == micros
    assert batch.amount_cents.tolist() == [i % 999 + 1 for i in range(len(charges))]
    assert batch.names[1] == ["Natal/RN"]
