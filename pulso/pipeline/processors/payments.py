"""The payments processor: one row per PIX charge with its whole lifecycle, and per-minute
aggregates per store recomputed from those rows (so replays never double count)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from pulso.domain.events import Event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated, ChargeExpired, ChargeFailed
from pulso.domain.pii import payer_hasher
from pulso.pipeline.processors import Write, nothing_to_write
from pulso.store.protocol import StoreTx
from pulso.store.tables import PAYMENTS, ColumnBatch

STATUS_RANK: Final[dict[str, int]] = {"pending": 0, "expired": 1, "failed": 2, "confirmed": 3}

_CONFIRMATION_SQL = """
UPDATE payments
SET confirmation_seconds = EXTRACT(EPOCH FROM (confirmed_at - created_at))
WHERE charge_id = ANY(%s) AND confirmed_at IS NOT NULL AND created_at IS NOT NULL
"""

_CREATED_BOUNDS_SQL = (
    "SELECT min(created_at), max(created_at) FROM payments WHERE charge_id = ANY(%s)"
)

STORED_LOOKBACK: Final = timedelta(days=2)
"""The charges a batch completes (terminal events of charges created in an earlier batch) are
looked for among those created from this long before the batch's events: a scan DuckDB's zone
maps bound to the recent row groups, where ``charge_id = ANY(...)`` alone reads the whole
table (8,000 ids: 29 ms at 200,000 payments, 219 ms at 6 million, measured). The whole table
is read only when one of them is older, or has no creation stored."""

_RECENT_CREATED_SQL = (
    "SELECT count(created_at), min(created_at), max(created_at) FROM payments "
    "WHERE created_at >= %s AND charge_id = ANY(%s)"
)
_RECENT_CONFIRMATION_SQL = _CONFIRMATION_SQL.rstrip() + " AND created_at >= %s\n"

_DELETE_MINUTES_SQL = 'DELETE FROM payment_minutes WHERE "minute" >= %s AND "minute" < %s'

_INSERT_MINUTES_SQL = """
INSERT INTO payment_minutes (store_id, "minute", city, uf, charges, confirmed, amount_cents,
                             confirmed_cents, confirmation_seconds_sum)
SELECT p.store_id, date_trunc('minute', p.created_at) AS m, min(p.city), min(p.uf), count(*),
       count(*) FILTER (WHERE p.status = 'confirmed'),
       sum(p.amount_cents),
       coalesce(sum(p.paid_cents) FILTER (WHERE p.status = 'confirmed'), 0),
       coalesce(sum(p.confirmation_seconds) FILTER (WHERE p.status = 'confirmed'), 0)
FROM payments p
WHERE p.created_at >= %s AND p.created_at < %s
GROUP BY p.store_id, date_trunc('minute', p.created_at)
"""


_CREATED_COLUMNS: Final = (
    "txid",
    "store_id",
    "city",
    "uf",
    "amount_cents",
    "payment_type",
    "psp",
    "payer_hash",
    "created_at",
    "expires_at",
)


class _Fold:
    """A batch's charges as columns, one row per charge, merged like the table merges rows.

    Columnar on purpose: this loop runs once per event, and per-row objects cost three times
    as much here.
    """

    def __init__(self) -> None:
        self.columns: ColumnBatch = {name: [] for name in PAYMENTS.column_names}
        self.index: dict[str, int] = {}

    def row(self, charge_id: str, at: datetime) -> int:
        """The row of ``charge_id`` (appended when new), its ``updated_at`` advanced to ``at``."""
        i = self.index.get(charge_id)
        if i is None:
            i = self.index[charge_id] = len(self.index)
            for values in self.columns.values():
                values.append(None)
            self.columns["charge_id"][i] = charge_id
            self.columns["status"][i] = "pending"
            self.columns["status_rank"][i] = 0
            self.columns["updated_at"][i] = at
        elif at > self.columns["updated_at"][i]:
            self.columns["updated_at"][i] = at
        return i

    def keep_first(self, name: str, i: int, value: Any) -> None:
        column = self.columns[name]
        if column[i] is None:
            column[i] = value

    def advance(self, i: int, status: str) -> None:
        rank = STATUS_RANK[status]
        if rank >= self.columns["status_rank"][i]:
            self.columns["status"][i] = status
            self.columns["status_rank"][i] = rank


def _fill_confirmation_seconds(columns: ColumnBatch) -> None:
    seconds = columns["confirmation_seconds"]
    for i, (created_at, confirmed_at) in enumerate(
        zip(columns["created_at"], columns["confirmed_at"], strict=True)
    ):
        if created_at is not None and confirmed_at is not None:
            seconds[i] = (confirmed_at - created_at).total_seconds()


def _half_known(columns: ColumnBatch) -> list[str]:
    """Charges with one of creation/confirmation in this batch and the other maybe stored."""
    return [
        charge_id
        for charge_id, created_at, confirmed_at in zip(
            columns["charge_id"], columns["created_at"], columns["confirmed_at"], strict=True
        )
        if (created_at is None) != (confirmed_at is None)
    ]


def _cents(amount: Any) -> int:
    # Amounts were validated at decode (two places at most), so this is exact.
    return int(amount * 100)


class PaymentsProcessor:
    """Folds PIX lifecycle events into the ``payments`` and ``payment_minutes`` tables."""

    name = "payments"
    event_types = frozenset(
        {"pix.charge.created", "pix.charge.confirmed", "pix.charge.failed", "pix.charge.expired"}
    )

    def __init__(self, pii_key: bytes) -> None:
        self.payer_hash = payer_hasher(pii_key)
        """A keyed hash of the payer's CPF/CNPJ: links a payer's charges, reveals nothing."""

    def process(self, events: Sequence[Event], tx: StoreTx) -> None:
        self.prepare(events, ())(tx)

    def prepare(self, events: Sequence[Event], partitions: Sequence[str]) -> Write:
        """The fold now; the upsert, the confirmation times and the minutes in ``tx``."""
        columns = self.fold(events)
        if not columns["charge_id"]:
            return nothing_to_write

        def write(tx: StoreTx) -> None:
            tx.upsert(PAYMENTS, columns)
            complete_stored(tx, columns)

        return write

    def fold(self, events: Sequence[Event]) -> ColumnBatch:
        """One row per charge, in columns; the order of the events does not matter."""
        created: list[ChargeCreated] = []
        confirmed: list[ChargeConfirmed] = []
        failed: list[ChargeFailed] = []
        expired: list[ChargeExpired] = []
        sort: dict[type, Callable[[Any], None]] = {
            ChargeCreated: created.append,
            ChargeConfirmed: confirmed.append,
            ChargeFailed: failed.append,
            ChargeExpired: expired.append,
        }
        for event in events:
            data = event.data
            append = sort.get(type(data))
            if append is not None:
                append(data)
        columns = self._fold_unique(created, confirmed, failed, expired)
        if columns is None:  # a charge with two events of one type in the batch: rare
            columns = self._fold_rows(events)
        return columns

    def _fold_unique(
        self,
        created: list[ChargeCreated],
        confirmed: list[ChargeConfirmed],
        failed: list[ChargeFailed],
        expired: list[ChargeExpired],
    ) -> ColumnBatch | None:
        """The fold when no charge has two events of one type: whole columns at a time
        (created charges first, in order, then the others), or None when one has."""
        index = {c.charge_id: i for i, c in enumerate(created)}
        if len(index) != len(created):
            return None
        ids = list(index)
        for terminal in (confirmed, failed, expired):
            for data in terminal:
                if data.charge_id not in index:
                    index[data.charge_id] = len(ids)
                    ids.append(data.charge_id)
            if len({d.charge_id for d in terminal}) != len(terminal):
                return None
        n, k = len(ids), len(created)
        pad: list[Any] = [None] * (n - k)
        payer_hash = self.payer_hash
        columns: ColumnBatch = {
            "charge_id": ids,
            "txid": [c.txid for c in created] + pad,
            "store_id": [c.store_id for c in created] + pad,
            "city": [c.city for c in created] + pad,
            "uf": [c.uf for c in created] + pad,
            "amount_cents": [int(c.amount * 100) for c in created] + pad,
            "paid_cents": [None] * n,
            "status": ["pending"] * n,
            "status_rank": [0] * n,
            "payment_type": [c.payment_type for c in created] + pad,
            "psp": [c.psp for c in created] + pad,
            "payer_hash": [payer_hash(c.payer_document) for c in created] + pad,
            "created_at": [c.created_at for c in created] + pad,
            "expires_at": [c.expires_at for c in created] + pad,
            "confirmed_at": [None] * n,
            "failed_at": [None] * n,
            "expired_at": [None] * n,
            "failure_reason": [None] * n,
            "confirmation_seconds": [None] * n,
        }
        updated = columns["updated_at"] = [*columns["created_at"]]
        status, rank = columns["status"], columns["status_rank"]
        # Ascending rank: each later status outranks what an earlier loop set.
        at_column = columns["expired_at"]
        for data in expired:
            i = index[data.charge_id]
            at = at_column[i] = data.expired_at
            status[i], rank[i] = "expired", 1
            if updated[i] is None or at > updated[i]:
                updated[i] = at
        at_column, reason = columns["failed_at"], columns["failure_reason"]
        for failure in failed:
            i = index[failure.charge_id]
            at = at_column[i] = failure.failed_at
            reason[i] = failure.reason
            status[i], rank[i] = "failed", 2
            if updated[i] is None or at > updated[i]:
                updated[i] = at
        at_column, paid = columns["confirmed_at"], columns["paid_cents"]
        created_at, seconds = columns["created_at"], columns["confirmation_seconds"]
        for confirmation in confirmed:
            i = index[confirmation.charge_id]
            at = at_column[i] = confirmation.confirmed_at
            paid[i] = int(confirmation.amount_paid * 100)
            status[i], rank[i] = "confirmed", 3
            if updated[i] is None or at > updated[i]:
                updated[i] = at
            if created_at[i] is not None:
                seconds[i] = (at - created_at[i]).total_seconds()
        return columns

    def _fold_rows(self, events: Sequence[Event]) -> ColumnBatch:
        """The fold one event at a time, merging like the table merges rows."""
        fold = _Fold()
        for event in events:
            data = event.data
            if isinstance(data, ChargeCreated):
                self._created(fold, data)
            elif isinstance(data, ChargeConfirmed):
                i = fold.row(data.charge_id, data.confirmed_at)
                fold.keep_first("confirmed_at", i, data.confirmed_at)
                fold.columns["paid_cents"][i] = _cents(data.amount_paid)
                fold.advance(i, "confirmed")
            elif isinstance(data, ChargeFailed):
                i = fold.row(data.charge_id, data.failed_at)
                fold.keep_first("failed_at", i, data.failed_at)
                fold.columns["failure_reason"][i] = data.reason
                fold.advance(i, "failed")
            elif isinstance(data, ChargeExpired):
                i = fold.row(data.charge_id, data.expired_at)
                fold.keep_first("expired_at", i, data.expired_at)
                fold.advance(i, "expired")
        _fill_confirmation_seconds(fold.columns)
        return fold.columns

    def _created(self, fold: _Fold, data: ChargeCreated) -> None:
        is_new = data.charge_id not in fold.index
        i = fold.row(data.charge_id, data.created_at)
        values = (
            data.txid,
            data.store_id,
            data.city,
            data.uf,
            _cents(data.amount),
            data.payment_type,
            data.psp,
            self.payer_hash(data.payer_document),
            data.created_at,
            data.expires_at,
        )
        columns = fold.columns
        for name, value in zip(_CREATED_COLUMNS, values, strict=True):
            if is_new or columns[name][i] is None:  # "first" merge: an earlier value stays
                columns[name][i] = value


def complete_stored(tx: StoreTx, columns: ColumnBatch) -> None:
    """After the batch's rows are upserted: the confirmation time of charges whose creation
    and confirmation came in different batches, and every store's minutes between the
    earliest and latest creation time of the batch's charges recomputed from the stored facts
    (idempotent, and a range scan). Stored charges are looked for among the recent ones first
    (``STORED_LOOKBACK``)."""
    half_known = _half_known(columns)
    created = [t for t in columns["created_at"] if t is not None]
    stored_only = [
        c for c, t in zip(columns["charge_id"], columns["created_at"], strict=True) if t is None
    ]
    since = None
    if half_known or stored_only:
        since = _earliest_known(columns) - STORED_LOOKBACK
    if stored_only:
        assert since is not None
        [(found, lower, upper)] = tx.fetch(_RECENT_CREATED_SQL, (since, stored_only))
        if found != len(stored_only):  # older, or never created: the whole table
            since = None
            [(lower, upper)] = tx.fetch(_CREATED_BOUNDS_SQL, (stored_only,))
        created += [t for t in (lower, upper) if t is not None]
    if half_known:
        if since is not None:
            tx.execute(_RECENT_CONFIRMATION_SQL, (half_known, since))
        else:
            tx.execute(_CONFIRMATION_SQL, (half_known,))
    if not created:
        return
    lower = min(created).replace(second=0, microsecond=0)
    upper = max(created).replace(second=0, microsecond=0) + timedelta(minutes=1)
    tx.execute(_DELETE_MINUTES_SQL, (lower, upper))
    tx.execute(_INSERT_MINUTES_SQL, (lower, upper))


def _earliest_known(columns: ColumnBatch) -> datetime:
    """The earliest time the batch knows of a charge it completes or is completed by: its
    creation when in the batch, else its terminal event (a stored creation is at most that
    late)."""
    earliest: datetime = min(
        created_at if created_at is not None else updated_at
        for created_at, confirmed_at, updated_at in zip(
            columns["created_at"], columns["confirmed_at"], columns["updated_at"], strict=True
        )
        if created_at is None or confirmed_at is None
    )
    return earliest
