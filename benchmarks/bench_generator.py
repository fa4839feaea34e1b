"""Payments generator throughput (records/s, encoded) beside the domain's own floor.

Baseline: rebuilding the very same events from their already-drawn fields (payload structs
with their validation, new_event, encode_event) — what any generator must pay per event.
"""

from __future__ import annotations

import time
from datetime import date

import msgspec

from pulso.domain.events import encode_event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.sources.payments_generator import (
    SOURCE,
    PaymentsConfig,
    generate_payment_records,
    generate_payments,
)

CONFIG = PaymentsConfig(start=date(2024, 5, 6), days=7, n_stores=20, n_cities=8, seed=42)
KINDS = {c.__name__: c for c in (ChargeCreated, ChargeConfirmed, ChargeFailed, ChargeExpired)}


def best_rate(run, repeats: int = 3) -> tuple[float, int]:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - t0))
    return best, n


def generator() -> int:
    return sum(1 for _ in generate_payment_records(CONFIG))


gen_rate, n = best_rate(generator)  # first: with the baseline's 225k events alive, GC is slower
events = list(generate_payments(CONFIG))
fields = [(KINDS[type(e.data).__name__], msgspec.structs.asdict(e.data), e) for e in events]


def floor() -> int:
    for cls, kwargs, e in fields:
        encode_event(
            new_event(
                cls(**kwargs),
                source=SOURCE,
                key=e.key,
                occurred_at=e.occurred_at,
                event_id=e.event_id,
            )
        )
    return len(fields)


floor_rate, _ = best_rate(floor)
print(f"generator: {gen_rate:,.0f} records/s ({n:,} records, 7 days x 20 stores)")
print(f"baseline (domain structs + new_event + encode only): {floor_rate:,.0f} events/s")
print(f"ratio generator/baseline: {gen_rate / floor_rate:.2f}")
