"""Hand-made ``alerts`` rows (as a detector writes them), notifiers that record or fail, and
a clock the test moves: what the alert dispatcher tests are built from."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pulso.notify import Notification, NotifyRejectedError, NotifyUnavailableError, SendResult
from pulso.store.protocol import Store
from pulso.store.tables import ALERTS, STORES

T0 = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 10:00 in São Paulo
CPF = "529.982.247-25"  # a valid CPF: must never reach a channel, a log or the API
CPF_DIGITS = "52998224725"


def alert(
    alert_id: str,
    *,
    at: datetime = T0,
    kind: str = "fraud.card_testing",
    subject: str = "LJ-0001",
    severity: str = "critical",
    message: str = "20 cobranças de R$ 1,00 em 2 minutos",
    count: int = 1,
    **details: Any,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "kind": kind,
        "severity": severity,
        "subject": subject,
        "message": message,
        "raised_at": at,
        "count": count,
        "details": {"risk_score": 0.97, "reasons": ["card_testing"], **details},
    }


def insert_alerts(store: Store, rows: Iterable[dict[str, Any]]) -> int:
    rows = list(rows)
    batch = {name: [r[name] for r in rows] for name in ALERTS.column_names}
    with store.transaction() as tx:
        return tx.insert_new(ALERTS, batch)


def burst(n: int, *, start: datetime = T0, step_s: float = 1.0, **kw: Any) -> list[dict[str, Any]]:
    return [
        alert(f"b{i:04d}", at=start + timedelta(seconds=i * step_s), charge_id=f"ch-{i}", **kw)
        for i in range(n)
    ]


def register_stores(store: Store, rows: Iterable[tuple[str, str, str, str]]) -> None:
    rows = list(rows)
    with store.transaction() as tx:
        tx.upsert(
            STORES,
            {
                "store_id": [r[0] for r in rows],
                "name": [r[1] for r in rows],
                "city": [r[2] for r in rows],
                "uf": [r[3] for r in rows],
                "updated_at": [T0] * len(rows),
            },
        )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Recorder:
    """A channel that keeps what it was sent; ``down`` makes it fail like a network error,
    ``refuse`` like a bad token."""

    name: str = "email"
    sent: list[Notification] = field(default_factory=list)
    down: bool = False
    refuse: bool = False
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, notification: Notification) -> SendResult:
        with self._lock:
            self.attempts += 1
            if self.down:
                raise NotifyUnavailableError(self.name, "connection refused")
            if self.refuse:
                raise NotifyRejectedError(self.name, "401 Unauthorized: check the token")
            self.sent.append(notification)
        return SendResult()
