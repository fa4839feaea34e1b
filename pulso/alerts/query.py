"""Reading alerts back: the feed (notices with their delivery state, and rows the dispatcher
has not folded yet) and the fraud summary by UF over a period of local days."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

from pulso.alerts.dispatcher import _NOTICE_SELECT, FAILED, PENDING, SENT, Notice, _details
from pulso.alerts.text import SEVERITIES, hide_documents, severity_rank
from pulso.errors import PulsoError
from pulso.store.protocol import Store

MAX_LIMIT: Final = 1_000
MAX_SUMMARY_DAYS: Final = 366
KIND_PATTERN: Final = r"^[a-z0-9_][a-z0-9_.\-]{0,63}$"
_KIND = re.compile(KIND_PATTERN)

Status = Literal["new", "not_sent", "pending", "delivered", "failed"]


class AlertQueryError(PulsoError):
    """A listing or summary that cannot be answered as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    status: str
    attempts: int
    sent_count: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert as people see it: a notice (``count`` alerts folded) or a row not folded
    yet (status ``new``)."""

    alert_id: str
    kind: str
    severity: str
    subject: str
    message: str
    count: int
    first_at: datetime
    last_at: datetime
    details: dict[str, Any]
    status: Status
    deliveries: tuple[Delivery, ...]


def _status(notice: Notice, deliveries: Sequence[Delivery]) -> Status:
    if not deliveries:
        return "not_sent"
    if any(d.status == FAILED for d in deliveries):
        return "failed"
    if all(d.status == SENT and d.sent_count >= notice.count for d in deliveries):
        return "delivered"
    return "pending"


def list_alerts(
    store: Store,
    *,
    since: datetime | None = None,
    kind: str | None = None,
    severity: str | None = None,
    limit: int = 100,
    until: datetime | None = None,
) -> list[AlertView]:
    """Newest first (by last occurrence), those last seen at or after ``since`` and first
    seen before ``until``. ``kind`` matches exactly or as a family (``fraud`` matches
    ``fraud.velocity``); ``severity`` is the minimum shown."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise AlertQueryError(f"{name} needs a time zone, e.g. 2026-11-24T10:00:00-03:00")
    if kind is not None and not _KIND.fullmatch(kind):
        raise AlertQueryError(f"kind must look like fraud or fraud.velocity, got {kind[:64]!r}")
    if severity is not None and severity not in SEVERITIES:
        raise AlertQueryError(f"severity must be one of {', '.join(SEVERITIES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise AlertQueryError(f"limit must be between 1 and {MAX_LIMIT}")
    severities = list(SEVERITIES[severity_rank(severity) :]) if severity else None
    window = (since, until)
    notices = _notices(store, window, kind, severities, limit)
    views = [*notices, *_unfolded(store, window, kind, severities, limit)]
    views.sort(key=lambda v: (v.last_at, v.alert_id), reverse=True)
    return views[:limit]


def _filters(
    prefix: str,
    columns: tuple[str, str],
    window: tuple[datetime | None, datetime | None],
    kind: str | None,
    severities: list[str] | None,
) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    since, until = window
    if since is not None:
        where.append(f"{prefix}.{columns[1]} >= %s")
        params.append(since)
    if until is not None:
        where.append(f"{prefix}.{columns[0]} < %s")
        params.append(until)
    if kind is not None:
        where.append(f"({prefix}.kind = %s OR {prefix}.kind LIKE %s)")
        params += [kind, kind + ".%"]
    if severities is not None:
        where.append(f"{prefix}.severity = ANY(%s)")
        params.append(severities)
    return (" AND ".join(where) or "TRUE"), params


def _notices(
    store: Store,
    window: tuple[datetime | None, datetime | None],
    kind: str | None,
    severities: list[str] | None,
    limit: int,
) -> list[AlertView]:
    where, params = _filters("n", ("first_at", "last_at"), window, kind, severities)
    rows = store.query(
        f"SELECT {_NOTICE_SELECT} FROM alert_notices n WHERE {where} "
        "ORDER BY n.last_at DESC, n.notice_id DESC LIMIT %s",
        (*params, limit),
    )
    notices = [Notice.from_row(r) for r in rows]
    by_notice: dict[str, list[Delivery]] = {}
    if notices:
        for r in store.query(
            "SELECT notice_id, channel, status, attempts, sent_count, next_attempt_at, sent_at, "
            "last_error FROM alert_deliveries WHERE notice_id = ANY(%s) ORDER BY channel",
            ([n.notice_id for n in notices],),
        ):
            pending = r[2] == PENDING
            by_notice.setdefault(r[0], []).append(
                Delivery(r[1], r[2], int(r[3]), int(r[4]), r[5] if pending else None, r[6], r[7])
            )
    return [
        AlertView(
            alert_id=n.notice_id,
            kind=n.kind,
            severity=n.severity,
            subject=hide_documents(n.subject),
            message=hide_documents(n.message),
            count=n.count,
            first_at=n.first_at,
            last_at=n.last_at,
            details=n.details,
            status=_status(n, by_notice.get(n.notice_id, ())),
            deliveries=tuple(by_notice.get(n.notice_id, ())),
        )
        for n in notices
    ]


def _unfolded(
    store: Store,
    window: tuple[datetime | None, datetime | None],
    kind: str | None,
    severities: list[str] | None,
    limit: int,
) -> list[AlertView]:
    where, params = _filters("a", ("raised_at", "raised_at"), window, kind, severities)
    rows = store.query(
        "SELECT a.alert_id, a.kind, a.severity, a.subject, a.message, a.raised_at, a.count, "
        "a.details FROM alerts a LEFT JOIN alert_links l ON l.alert_id = a.alert_id "
        f"WHERE l.alert_id IS NULL AND {where} ORDER BY a.raised_at DESC, a.alert_id DESC "
        "LIMIT %s",
        (*params, limit),
    )
    return [
        AlertView(
            alert_id=r[0],
            kind=r[1],
            severity=r[2],
            subject=hide_documents(r[3]),
            message=hide_documents(r[4]),
            count=max(int(r[6] or 1), 1),
            first_at=r[5],
            last_at=r[5],
            details=_details(r[7]),
            status="new",
            deliveries=(),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class UfFigures:
    uf: str
    payments: int
    flagged: int
    alerts: int

    @property
    def rate(self) -> float | None:
        return self.flagged / self.payments if self.payments else None


@dataclass(frozen=True, slots=True)
class KindFigures:
    kind: str
    alerts: int


@dataclass(frozen=True, slots=True)
class FraudSummary:
    """Fraud over local days ``start``..``end``: payments created, payments flagged by a
    fraud alert (``details.charge_id``; an alert without one counts once), by UF and kind."""

    start: date
    end: date
    payments: int
    flagged: int
    alerts: int
    notices: int
    undelivered: int
    by_uf: tuple[UfFigures, ...]
    by_kind: tuple[KindFigures, ...]

    @property
    def rate(self) -> float | None:
        return self.flagged / self.payments if self.payments else None


UNKNOWN_UF: Final = "??"


def fraud_summary(store: Store, *, start: date, end: date) -> FraudSummary:
    from pulso.domain.timefmt import local_midnight

    if end < start:
        raise AlertQueryError("the period ends before it starts")
    if (end - start).days + 1 > MAX_SUMMARY_DAYS:
        raise AlertQueryError(f"the period is longer than {MAX_SUMMARY_DAYS} days")
    lo, hi = local_midnight(start), local_midnight(end + timedelta(days=1))
    payments_by_uf = {
        str(r[0] or UNKNOWN_UF): int(r[1])
        for r in store.query(
            "SELECT uf, count(*) FROM payments WHERE created_at >= %s AND created_at < %s "
            "GROUP BY uf",
            (lo, hi),
        )
    }
    fraud = "(a.kind = 'fraud' OR a.kind LIKE 'fraud.%%')"
    flagged_rows = store.query(
        "SELECT COALESCE(p.uf, s.uf, a.details->>'uf') AS uf, "
        "count(DISTINCT COALESCE(a.details->>'charge_id', a.alert_id)), count(*) "
        "FROM alerts a "
        "LEFT JOIN payments p ON p.charge_id = a.details->>'charge_id' "
        "LEFT JOIN stores s ON s.store_id = COALESCE(a.details->>'store_id', a.subject) "
        f"WHERE {fraud} AND a.raised_at >= %s AND a.raised_at < %s GROUP BY 1",
        (lo, hi),
    )
    flagged_by_uf = {str(r[0] or UNKNOWN_UF): (int(r[1]), int(r[2])) for r in flagged_rows}
    ufs = sorted(set(payments_by_uf) | set(flagged_by_uf))
    by_uf = tuple(
        UfFigures(
            uf,
            payments_by_uf.get(uf, 0),
            flagged_by_uf.get(uf, (0, 0))[0],
            flagged_by_uf.get(uf, (0, 0))[1],
        )
        for uf in ufs
    )
    totals = store.query(
        "SELECT count(DISTINCT COALESCE(a.details->>'charge_id', a.alert_id)), count(*) "
        f"FROM alerts a WHERE {fraud} AND a.raised_at >= %s AND a.raised_at < %s",
        (lo, hi),
    )[0]
    kinds = store.query(
        f"SELECT a.kind, count(*) FROM alerts a WHERE {fraud} AND a.raised_at >= %s "
        "AND a.raised_at < %s GROUP BY a.kind ORDER BY 2 DESC, 1",
        (lo, hi),
    )
    notice_rows = store.query(
        "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM alert_deliveries d "
        "WHERE d.notice_id = n.notice_id AND d.status <> 'sent')) FROM alert_notices n "
        "WHERE (n.kind = 'fraud' OR n.kind LIKE 'fraud.%%') AND n.last_at >= %s "
        "AND n.first_at < %s",
        (lo, hi),
    )[0]
    return FraudSummary(
        start=start,
        end=end,
        payments=sum(payments_by_uf.values()),
        flagged=int(totals[0]),
        alerts=int(totals[1]),
        notices=int(notice_rows[0]),
        undelivered=int(notice_rows[1]),
        by_uf=by_uf,
        by_kind=tuple(KindFigures(str(r[0]), int(r[1])) for r in kinds),
    )
