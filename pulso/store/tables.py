"""The one schema, as table specs both store backends turn into DDL and bulk writes.

A ``Column`` names its logical type (mapped per dialect) and how an upsert merges a new value
into an existing row (``merge``):

- ``replace``: the new value wins, even NULL
- ``latest``: the new value wins unless it is NULL
- ``first``: the stored value wins unless it is NULL (creation facts)
- ``max``: the larger of the two (NULLs ignored)
- ``rank:<column>``: the value from the row whose ``<column>`` is higher (ties: new wins)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LogicalType = Literal[
    "text",
    "int",
    "bigint",
    "smallint",
    "double",
    "bool",
    "timestamptz",
    "bytes",
    "uuid",
    "json",
    "numeric",
]

ColumnBatch = dict[str, list[Any]]
"""Rows in columns: column name -> values, every list the same length."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: LogicalType
    nullable: bool = True
    merge: str = "latest"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: LogicalType, merge: str = "latest", nullable: bool = True) -> Column:
    return Column(name, type_, nullable, merge)


RAW_EVENTS = Table(
    "raw_events",
    (
        _c("event_id", "uuid", nullable=False),
        _c("type", "text", nullable=False),
        _c("topic", "text", nullable=False),
        _c("occurred_at", "timestamptz", nullable=False),
        _c("source", "text", nullable=False),
        _c("key", "text", nullable=False),
        _c("payload", "bytes", nullable=False),
        _c("received_at", "timestamptz", nullable=False),
    ),
    key=("event_id",),
    indexes=(("occurred_at",),),
)

PAYMENTS = Table(
    "payments",
    (
        _c("charge_id", "text", nullable=False),
        _c("txid", "text", "first"),
        _c("store_id", "text", "first"),
        _c("city", "text", "first"),
        _c("uf", "text", "first"),
        _c("amount_cents", "bigint", "first"),
        _c("paid_cents", "bigint"),
        _c("status", "text", "rank:status_rank", nullable=False),
        _c("status_rank", "smallint", "max", nullable=False),
        _c("payment_type", "text", "first"),
        _c("psp", "text", "first"),
        _c("payer_hash", "text", "first"),
        _c("created_at", "timestamptz", "first"),
        _c("expires_at", "timestamptz", "first"),
        _c("confirmed_at", "timestamptz", "first"),
        _c("failed_at", "timestamptz", "first"),
        _c("expired_at", "timestamptz", "first"),
        _c("failure_reason", "text"),
        _c("confirmation_seconds", "double"),
        _c("updated_at", "timestamptz", "max", nullable=False),
    ),
    key=("charge_id",),
    indexes=(("created_at",), ("store_id", "created_at")),
)

PAYMENT_MINUTES = Table(
    "payment_minutes",
    (
        _c("store_id", "text", nullable=False),
        _c("minute", "timestamptz", nullable=False),
        _c("city", "text"),
        _c("uf", "text"),
        _c("charges", "bigint", "replace", nullable=False),
        _c("confirmed", "bigint", "replace", nullable=False),
        _c("amount_cents", "bigint", "replace", nullable=False),
        _c("confirmed_cents", "bigint", "replace", nullable=False),
        _c("confirmation_seconds_sum", "double", "replace", nullable=False),
    ),
    key=("store_id", "minute"),
)

ORDERS = Table(
    "orders",
    (
        _c("order_id", "text", nullable=False),
        _c("ordered_at", "timestamptz", "first"),
        _c("updated_at", "timestamptz", "max", nullable=False),
        _c("customer_id", "text"),
        _c("city", "text"),
        _c("uf", "text"),
        _c("region", "text"),
        _c("product", "text"),
        _c("category", "text"),
        _c("quantity", "int"),
        _c("unit_price_cents", "bigint"),
        _c("total_cents", "bigint"),
        _c("channel", "text"),
        _c("status", "text", "rank:updated_at"),
    ),
    key=("order_id",),
    indexes=(("ordered_at",),),
)

SALES = Table(
    "sales",
    (
        _c("sale_id", "text", nullable=False),
        _c("sold_at", "timestamptz", nullable=False),
        _c("store_id", "text"),
        _c("seller", "text"),
        _c("product", "text"),
        _c("category", "text"),
        _c("quantity", "int"),
        _c("unit_price_cents", "bigint"),
        _c("total_cents", "bigint"),
        _c("payment_method", "text"),
        _c("city", "text"),
        _c("uf", "text"),
        _c("source_file", "text"),
    ),
    key=("sale_id",),
    indexes=(("sold_at",),),
)

PRODUCT_SNAPSHOTS = Table(
    "product_snapshots",
    (
        _c("site", "text", nullable=False),
        _c("category_id", "text", nullable=False),
        _c("product_id", "text", nullable=False),
        _c("taken_at", "timestamptz", nullable=False),
        _c("kind", "text"),
        _c("position", "int"),
        _c("title", "text"),
        _c("price_cents", "bigint"),
        _c("rating", "double"),
        _c("available_quantity", "int"),
        _c("seller", "text"),
    ),
    key=("category_id", "product_id", "taken_at"),
)

ALERTS = Table(
    "alerts",
    (
        _c("alert_id", "text", nullable=False),
        _c("kind", "text", nullable=False),
        _c("severity", "text", nullable=False),
        _c("subject", "text", nullable=False),
        _c("message", "text", nullable=False),
        _c("raised_at", "timestamptz", nullable=False),
        _c("count", "int", "replace", nullable=False),
        _c("details", "json"),
    ),
    key=("alert_id",),
    indexes=(("raised_at",),),
)

DEADLETTER = Table(
    "deadletter",
    (
        _c("id", "text", nullable=False),
        _c("topic", "text", nullable=False),
        _c("partition", "int", nullable=False),
        _c("offset", "bigint", nullable=False),
        _c("reason", "text", nullable=False),
        _c("detail", "text", nullable=False),
        _c("payload", "bytes", nullable=False),
        _c("received_at", "timestamptz", nullable=False),
        _c("replayed_at", "timestamptz"),
    ),
    key=("id",),
)

CHECKPOINTS = Table(
    "checkpoints",
    (
        _c("name", "text", nullable=False),
        _c("value", "bytes", "replace", nullable=False),
        _c("updated_at", "timestamptz", "replace", nullable=False),
    ),
    key=("name",),
)

TABLES: tuple[Table, ...] = (
    RAW_EVENTS,
    PAYMENTS,
    PAYMENT_MINUTES,
    ORDERS,
    SALES,
    PRODUCT_SNAPSHOTS,
    ALERTS,
    DEADLETTER,
    CHECKPOINTS,
)

# --- version 2: PIX charges as the API keeps them, and the store registry -----------------
#
# ``pix_charges`` is the operational record the API answers from (the ``payments`` table is
# the pipeline's analytic fact, built from the lifecycle events). One writer
# (pulso.pix.charges) inserts a row per charge and updates its mutable columns; the key is
# derived from the idempotency key, so the primary key alone makes creation idempotent.

PIX_CHARGES = Table(
    "pix_charges",
    (
        _c("charge_id", "text", nullable=False),
        _c("txid", "text", "first", nullable=False),
        _c("idempotency_key", "text", "first", nullable=False),
        _c("request_hash", "text", "first", nullable=False),
        _c("store_id", "text", "first", nullable=False),
        _c("city", "text", "first", nullable=False),
        _c("uf", "text", "first", nullable=False),
        _c("amount_cents", "bigint", "first", nullable=False),
        _c("description", "text", "first", nullable=False),
        _c("payer_email", "text", "first"),
        _c("payer_document", "text", "first"),  # CPF/CNPJ digits: never logged nor returned
        _c("status", "text", "replace", nullable=False),
        _c("psp", "text", "first", nullable=False),
        _c("psp_payment_id", "text", "replace"),
        _c("psp_status", "text", "replace"),
        _c("brcode", "text", "replace"),
        _c("end_to_end_id", "text", "replace"),
        _c("failure_reason", "text", "replace"),
        _c("paid_cents", "bigint", "replace"),
        _c("created_at", "timestamptz", "first", nullable=False),
        _c("expires_at", "timestamptz", "first", nullable=False),
        _c("confirmed_at", "timestamptz", "replace"),
        _c("failed_at", "timestamptz", "replace"),
        _c("expired_at", "timestamptz", "replace"),
        _c("checked_at", "timestamptz", "replace"),  # last time the reconciler asked the PSP
        _c("updated_at", "timestamptz", "replace", nullable=False),
    ),
    key=("charge_id",),
    indexes=(("status", "created_at"), ("psp", "psp_payment_id")),
)

STORES = Table(
    "stores",
    (
        _c("store_id", "text", nullable=False),
        _c("name", "text", "replace", nullable=False),
        _c("city", "text", "replace", nullable=False),
        _c("uf", "text", "replace", nullable=False),
        _c("updated_at", "timestamptz", "replace", nullable=False),
    ),
    key=("store_id",),
)

TABLES = (*TABLES, PIX_CHARGES, STORES)

# --- version 3: the sales ETL's record of every file it was asked to load -----------------
#
# One row per run of ``pulso etl run`` / ``etl consume``, whatever its outcome: ``loaded``
# (its rows and this record committed together), ``already_loaded`` (the same bytes were
# loaded before: nothing written but this record) or ``failed`` (nothing written but this
# record, with the error). ``checksum`` is the sha256 of the file's bytes; a ``loaded`` run
# with the same checksum is what makes a file load once.

ETL_RUNS = Table(
    "etl_runs",
    (
        _c("run_id", "text", nullable=False),
        _c("source", "text", "first", nullable=False),
        _c("checksum", "text", "first"),
        _c("size_bytes", "bigint", "first"),
        _c("status", "text", "replace", nullable=False),
        _c("rows_read", "bigint", "replace", nullable=False),
        _c("rows_loaded", "bigint", "replace", nullable=False),
        _c("rows_rejected", "bigint", "replace", nullable=False),
        _c("rows_duplicate", "bigint", "replace", nullable=False),
        _c("rejects_url", "text", "replace"),
        _c("error", "text", "replace"),
        _c("started_at", "timestamptz", "first", nullable=False),
        _c("finished_at", "timestamptz", "replace", nullable=False),
        _c("duration_ms", "bigint", "replace", nullable=False),
    ),
    key=("run_id",),
    indexes=(("checksum",), ("started_at",)),
)

TABLES = (*TABLES, ETL_RUNS)

# --- version 4: event-time windows of the payment stream (pulso.pipeline.windows) ----------
#
# ``stream_windows``: one row per window and group (``dimension`` store / city / payment_type,
# ``key`` its value; a city is "<name>/<UF>"), written when the watermark passes the window's
# end and rewritten while events within the allowed lateness still arrive; ``final`` once the
# watermark passed end + allowed lateness (the row never changes again). Money in centavos;
# ``mean_cents`` exact to 1/100 of a centavo. ``stream_late_events``: every payment kept out
# of the windows, with why (``late_event``: later than the allowed lateness; ``future_event``:
# stamped too far ahead of the clock) and the bound it missed.

STREAM_WINDOWS = Table(
    "stream_windows",
    (
        _c("kind", "text", nullable=False),
        _c("dimension", "text", nullable=False),
        _c("key", "text", nullable=False),
        _c("window_start", "timestamptz", nullable=False),
        _c("window_end", "timestamptz", "replace", nullable=False),
        _c("events", "bigint", "replace", nullable=False),
        _c("amount_cents", "bigint", "replace", nullable=False),
        _c("mean_cents", "numeric", "replace", nullable=False),
        _c("max_cents", "bigint", "replace", nullable=False),
        _c("final", "bool", "replace", nullable=False),
    ),
    key=("kind", "dimension", "key", "window_start"),
    indexes=(("window_end",),),
)

STREAM_LATE_EVENTS = Table(
    "stream_late_events",
    (
        _c("event_id", "uuid", nullable=False),
        _c("reason", "text", "first", nullable=False),
        _c("charge_id", "text", "first", nullable=False),
        _c("store_id", "text", "first", nullable=False),
        _c("city", "text", "first", nullable=False),
        _c("uf", "text", "first", nullable=False),
        _c("payment_type", "text", "first", nullable=False),
        _c("amount_cents", "bigint", "first", nullable=False),
        _c("event_time", "timestamptz", "first", nullable=False),
        _c("source_partition", "text", "first", nullable=False),
        _c("bound", "timestamptz", "first", nullable=False),
    ),
    key=("event_id",),
    indexes=(("event_time",),),
)

TABLES = (*TABLES, STREAM_WINDOWS, STREAM_LATE_EVENTS)

# --- version 5: fraud risk per payment (pulso.fraud, pulso/pipeline/processors/fraud.py) -----
#
# Only payments whose risk reaches ``PULSO_FRAUD_RECORD_SCORE`` get a row; a charge flagged
# again later (an earlier charge of a pattern seen afterwards) keeps its highest risk.

FRAUD_SCORES = Table(
    "fraud_scores",
    (
        _c("charge_id", "text", nullable=False),
        _c("store_id", "text", "first"),
        _c("payer_hash", "text", "first"),
        _c("created_at", "timestamptz", "first"),
        _c("amount_cents", "bigint", "first"),
        _c("risk_score", "double", "max", nullable=False),
        _c("learned_score", "double", "first"),
        _c("kind", "text", "rank:risk_score"),
        _c("reasons", "text", "rank:risk_score"),
        _c("alerted", "bool", "max", nullable=False),
    ),
    key=("charge_id",),
    indexes=(("created_at",),),
)

TABLES = (*TABLES, FRAUD_SCORES)

# --- version 6: alert dispatch (throttling and delivery state; pulso.alerts) ---------------
#
# The ``alerts`` table holds what detectors raised, one row per finding, never changed here.
# The dispatcher folds the rows of one kind and subject within the throttle window into one
# notice (``count`` grows), links every row it has read to its notice (a row without a link
# is new), and keeps one delivery row per notice and channel: pending with the next attempt's
# time, sent with the count it carried, or failed (refused) with the error.

ALERT_NOTICES = Table(
    "alert_notices",
    (
        _c("notice_id", "text", nullable=False),
        _c("kind", "text", "first", nullable=False),
        _c("subject", "text", "first", nullable=False),
        _c("severity", "text", "replace", nullable=False),
        _c("message", "text", "first", nullable=False),
        _c("details", "json", "first"),
        _c("first_at", "timestamptz", "first", nullable=False),
        _c("last_at", "timestamptz", "replace", nullable=False),
        _c("window_end", "timestamptz", "first", nullable=False),
        _c("count", "bigint", "replace", nullable=False),
        _c("published_count", "bigint", "replace", nullable=False),
        _c("updated_at", "timestamptz", "replace", nullable=False),
    ),
    key=("notice_id",),
    indexes=(("last_at",), ("kind", "subject", "window_end")),
)

ALERT_LINKS = Table(
    "alert_links",
    (
        _c("alert_id", "text", nullable=False),
        _c("notice_id", "text", "first", nullable=False),
        _c("raised_at", "timestamptz", "first", nullable=False),  # the alert row's, copied
        _c("linked_at", "timestamptz", "first", nullable=False),
    ),
    key=("alert_id",),
    indexes=(("notice_id",), ("raised_at",)),
)

ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        _c("notice_id", "text", nullable=False),
        _c("channel", "text", nullable=False),
        _c("status", "text", "replace", nullable=False),
        _c("attempts", "int", "replace", nullable=False),
        _c("sent_count", "bigint", "replace", nullable=False),
        _c("next_attempt_at", "timestamptz", "replace", nullable=False),
        _c("sent_at", "timestamptz", "replace"),
        _c("last_error", "text", "replace"),
        _c("updated_at", "timestamptz", "replace", nullable=False),
    ),
    key=("notice_id", "channel"),
    indexes=(("status", "next_attempt_at"),),
)

TABLES = (*TABLES, ALERT_NOTICES, ALERT_LINKS, ALERT_DELIVERIES)

# --- version 8: the cluster's stream-state runner (pulso/pipeline/leader.py) ---------------
#
# With N workers the stateful processors (windows, fraud) run in ONE elected runner of their
# own consumer group. ``stream_leader`` holds one row per such group: the fencing ``epoch``
# (raised by every new holder of the group's advisory lock; a batch commits only while its
# epoch is still the row's), who holds it and since when. ``stream_seen_events`` is that
# runner's own idempotency: the event ids it has folded into the state (the facts workers
# write ``raw_events``), kept for ``PULSO_STREAM_DEDUPE_HOURS`` after they were read.

STREAM_LEADER = Table(
    "stream_leader",
    (
        _c("group_name", "text", nullable=False),
        _c("epoch", "bigint", "replace", nullable=False),
        _c("holder", "text", "replace", nullable=False),
        _c("since", "timestamptz", "replace", nullable=False),
        _c("last_batch_at", "timestamptz", "replace"),
    ),
    key=("group_name",),
)

STREAM_SEEN_EVENTS = Table(
    "stream_seen_events",
    (
        _c("event_id", "uuid", nullable=False),
        _c("received_at", "timestamptz", "first", nullable=False),
    ),
    key=("event_id",),
    indexes=(("received_at",),),
)

TABLES = (*TABLES, STREAM_LEADER, STREAM_SEEN_EVENTS)
