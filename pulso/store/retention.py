"""Retention: remove the store's time-keyed rows older than a cutoff.

Each trimmed table has a :class:`RetentionRule` naming its time column. A rule's table that
does not exist is skipped; a table without a rule is kept and reported, never guessed at.
Kept on purpose: ``pix_charges`` (the ledger of record for charges), ``stores`` (the
registry), ``etl_runs`` (what makes a sales file load once), ``checkpoints`` and
``schema_migrations`` (the pipeline's and the schema's own state), and the alert dispatcher's
throttle and delivery state (``alert_notices``, ``alert_links``, ``alert_deliveries``: its
owner decides what old means there).

How rows go is a strategy per table: a plain ``DELETE ... WHERE col < cutoff``. A table that
PostgreSQL reports as partitioned goes through :func:`_trim_partitioned`: every partition
whose upper bound is at or before the cutoff (and holds no row the rule keeps) is dropped
whole, then a DELETE through the parent removes the rest (PostgreSQL prunes it to the
partition that straddles the cutoff and the default one). A TimescaleDB hypertable likewise:
``drop_chunks`` for the whole chunks, then the DELETE (pulso/store/partitions.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pulso.errors import PulsoError, StoreError
from pulso.store import partitions
from pulso.store.catalog import stored_tables
from pulso.store.protocol import Store, StoreTx
from pulso.store.sql import quote


class DurationError(PulsoError):
    """A retention period that cannot be read."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    table: str
    column: str
    fallback: str | None = None  # used where ``column`` is NULL

    def age_expression(self) -> str:
        column = quote(self.column)
        if self.fallback is None:
            return column
        return f"COALESCE({column}, {quote(self.fallback)})"


RULES: Final[tuple[RetentionRule, ...]] = (
    RetentionRule("raw_events", "occurred_at"),
    RetentionRule("payments", "created_at", "updated_at"),
    RetentionRule("payment_minutes", "minute"),
    RetentionRule("orders", "ordered_at", "updated_at"),
    RetentionRule("sales", "sold_at"),
    RetentionRule("product_snapshots", "taken_at"),
    RetentionRule("alerts", "raised_at"),
    RetentionRule("deadletter", "received_at"),
    RetentionRule("stream_windows", "window_end"),
    RetentionRule("stream_late_events", "event_time"),
    RetentionRule("fraud_scores", "created_at"),
)

_UNITS: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_DURATION: Final = re.compile(r"\s*(\d{1,6})\s*([hdw])\s*", re.IGNORECASE)


def parse_keep(text: str) -> timedelta:
    """``90d``, ``12h``, ``2w`` as a timedelta; DurationError otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise DurationError(
            f"cannot read the period {text!r}: write a whole number and a unit, h (hours), "
            "d (days) or w (weeks), e.g. 90d, 12h, 2w"
        )
    amount = int(match[1])
    if amount == 0:
        raise DurationError(f"the period {text!r} is zero: it would remove everything")
    return amount * _UNITS[match[2].lower()]


@dataclass(frozen=True, slots=True)
class TableTrim:
    table: str
    column: str
    rows: int
    method: str = "delete"


@dataclass(frozen=True, slots=True)
class StoreTrim:
    cutoff: datetime
    trimmed: tuple[TableTrim, ...]
    kept: tuple[str, ...]  # tables with no retention rule

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.trimmed)


def trim_store(store: Store, cutoff: datetime, *, dry_run: bool = False) -> StoreTrim:
    """Remove (or, with ``dry_run``, count) every row older than ``cutoff``, in one
    transaction: all the tables are trimmed or none."""
    if cutoff.tzinfo is None:
        raise StoreError("the retention cutoff must be timezone-aware")
    rules = {r.table: r for r in RULES}
    done: list[TableTrim] = []
    with store.transaction() as tx:
        present = stored_tables(store.dialect, tx.fetch)
        names = {t.name for t in present}
        hyper = partitions.hypertables(tx.fetch) if store.dialect == "postgresql" else set()
        for rule in RULES:
            if rule.table not in names:
                continue
            if rule.table in hyper:
                done.append(_trim_hypertable(tx, rule, cutoff, dry_run))
            elif store.dialect == "postgresql" and _is_partitioned(tx, rule.table):
                done.append(_trim_partitioned(tx, rule, cutoff, dry_run))
            else:
                done.append(_trim_by_delete(tx, rule, cutoff, dry_run))
    kept = tuple(t.name for t in present if t.name not in rules)
    return StoreTrim(cutoff, tuple(done), kept)


def _trim_by_delete(tx: StoreTx, rule: RetentionRule, cutoff: datetime, dry_run: bool) -> TableTrim:
    where = f"WHERE {rule.age_expression()} < %s"
    table = quote(rule.table)
    rows = int(tx.fetch(f"SELECT count(*) FROM {table} {where}", (cutoff,))[0][0])
    if rows and not dry_run:
        tx.execute(f"DELETE FROM {table} {where}", (cutoff,))
    return TableTrim(rule.table, rule.column, rows)


def _is_partitioned(tx: StoreTx, table: str) -> bool:
    rows = tx.fetch(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = %s",
        (table,),
    )
    return bool(rows) and str(rows[0][0]) == "p"


def _trim_partitioned(
    tx: StoreTx, rule: RetentionRule, cutoff: datetime, dry_run: bool
) -> TableTrim:
    """Drop the partitions entirely older than ``cutoff``, delete the rest through the parent.

    A partition goes whole when its upper bound is at or before the cutoff and, where the
    rule's time is not the partition column (``stream_windows``: partitioned by
    ``window_start``, trimmed by ``window_end``), none of its rows is kept by the rule.
    The count reported is every row older than the cutoff, as the plain DELETE would."""
    where = f"WHERE {rule.age_expression()} < %s"
    table = quote(rule.table)
    rows = int(tx.fetch(f"SELECT count(*) FROM {table} {where}", (cutoff,))[0][0])
    by_column = _partition_column(tx, rule.table)
    whole = []
    for part in partitions.list_partitions(tx.fetch, rule.table):
        if part.upper is None or part.upper > cutoff:
            continue
        if by_column != rule.column or rule.fallback is not None:
            kept = tx.fetch(
                f"SELECT 1 FROM {quote(part.name)} WHERE NOT ({where[6:]}) LIMIT 1", (cutoff,)
            )
            if kept:
                continue
        whole.append(part.name)
    if not dry_run:
        for name in whole:
            tx.execute(f"DROP TABLE {quote(name)}")
        if rows:
            tx.execute(f"DELETE FROM {table} {where}", (cutoff,))
    if not whole:
        return TableTrim(rule.table, rule.column, rows, "delete (partitioned)")
    dropped = f"{len(whole)} partition{'s' if len(whole) > 1 else ''}"
    return TableTrim(rule.table, rule.column, rows, f"drop {dropped} + delete")


def _partition_column(tx: StoreTx, table: str) -> str | None:
    """The column of a single-column RANGE partitioning (None for anything else)."""
    rows = tx.fetch(
        "SELECT pg_get_partkeydef(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = %s",
        (table,),
    )
    match = re.fullmatch(r'RANGE \("?([a-z_][a-z0-9_]*)"?\)', str(rows[0][0])) if rows else None
    return match[1] if match else None


def _trim_hypertable(
    tx: StoreTx, rule: RetentionRule, cutoff: datetime, dry_run: bool
) -> TableTrim:
    """TimescaleDB: ``drop_chunks`` of the chunks entirely older (a day of margin where the
    rule's time is not the hypertable's), then a DELETE for the rest."""
    spec = partitions.BY_NAME.get(rule.table)
    trimmed = _trim_by_delete(tx, rule, cutoff, dry_run=True)
    if dry_run:
        return TableTrim(trimmed.table, trimmed.column, trimmed.rows, "drop chunks + delete")
    exact = spec is not None and spec.column == rule.column and rule.fallback is None
    older_than = cutoff if exact else cutoff - timedelta(days=1)
    tx.fetch(partitions.drop_chunks_sql(rule.table), (older_than,))
    _trim_by_delete(tx, rule, cutoff, dry_run=False)
    return TableTrim(trimmed.table, trimmed.column, trimmed.rows, "drop chunks + delete")
