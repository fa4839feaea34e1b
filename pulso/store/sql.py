"""SQL text shared by both store backends: quoting, merge rules, bulk-write statements.

DuckDB and PostgreSQL agree on everything used here (``INSERT ... ON CONFLICT``, ``excluded``,
``GREATEST`` ignoring NULLs, double-quoted identifiers), so one generator serves both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from pulso.errors import StoreError
from pulso.store.tables import Column, ColumnBatch, Table

MergeKind = Literal["replace", "latest", "first", "max", "rank"]
MERGE_KINDS: tuple[MergeKind, ...] = ("replace", "latest", "first", "max", "rank")

TARGET_ALIAS = "cur"
"""How the stored row is named in ``ON CONFLICT DO UPDATE`` expressions."""

CHECKPOINT_SAVE_SQL = (
    'INSERT INTO "checkpoints" ("name", "value", "updated_at") VALUES (%s, %s, CURRENT_TIMESTAMP)'
    ' ON CONFLICT ("name") DO UPDATE SET "value" = excluded."value",'
    ' "updated_at" = excluded."updated_at"'
)
# DuckDB's ``save_checkpoint`` (pulso/store/duckdb.py): a delete and an insert.
CHECKPOINT_DELETE_ONE_SQL = 'DELETE FROM "checkpoints" WHERE "name" = %s'
CHECKPOINT_INSERT_SQL = (
    'INSERT INTO "checkpoints" ("name", "value", "updated_at") VALUES (%s, %s, CURRENT_TIMESTAMP)'
)
CHECKPOINT_LOAD_SQL = 'SELECT "value" FROM "checkpoints" WHERE "name" = %s'
# ``list_checkpoints``/``delete_checkpoints`` (both dialects): ``(len(prefix), prefix)``.
CHECKPOINT_LIST_SQL = (
    'SELECT "name", "value" FROM "checkpoints" WHERE substr("name", 1, %s) = %s ORDER BY "name"'
)
CHECKPOINT_DELETE_SQL = 'DELETE FROM "checkpoints" WHERE substr("name", 1, %s) = %s'
CHECKPOINT_COUNT_SQL = 'SELECT count(*) FROM "checkpoints" WHERE substr("name", 1, %s) = %s'


class CheckpointMethods:
    """Checkpoint reads and writes for a transaction with ``execute``/``fetch``."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def save_checkpoint(self, name: str, value: bytes) -> None:
        self.execute(CHECKPOINT_SAVE_SQL, (name, value))

    def load_checkpoint(self, name: str) -> bytes | None:
        rows = self.fetch(CHECKPOINT_LOAD_SQL, (name,))
        return bytes(rows[0][0]) if rows else None

    def list_checkpoints(self, prefix: str) -> list[tuple[str, bytes]]:
        rows = self.fetch(CHECKPOINT_LIST_SQL, (len(prefix), prefix))
        return [(str(name), bytes(value)) for name, value in rows]

    def delete_checkpoints(self, prefix: str) -> int:
        [(count,)] = self.fetch(CHECKPOINT_COUNT_SQL, (len(prefix), prefix))
        if count:
            self.execute(CHECKPOINT_DELETE_SQL, (len(prefix), prefix))
        return int(count)


_PLACEHOLDER = re.compile(r"%[%s]")


def quote(name: str) -> str:
    """Double-quote an identifier.

    Every identifier is quoted, not only the reserved ones: the two dialects reserve different
    words (``offset``, ``partition``, ``position``, ``key``, ``minute``...) and the lists grow
    between versions, while a quoted lower-case name means the same as an unquoted one.
    """
    return '"' + name.replace('"', '""') + '"'


def column_list(names: Iterable[str]) -> str:
    return ", ".join(quote(n) for n in names)


@dataclass(frozen=True, slots=True)
class MergeRule:
    kind: MergeKind
    rank_column: str | None = None


def merge_rule(table: Table, column: Column) -> MergeRule:
    """Parse ``Column.merge``; an unknown rule or rank column is a programming error."""
    kind, _, argument = column.merge.partition(":")
    if kind == "rank":
        if argument not in table.column_names:
            raise StoreError(
                f"{table.name}.{column.name}: merge rule {column.merge!r} names no column of "
                f"{table.name}; write rank:<column> with one of {', '.join(table.column_names)}"
            )
        return MergeRule("rank", argument)
    if kind not in MERGE_KINDS or argument:
        raise StoreError(
            f"{table.name}.{column.name}: unknown merge rule {column.merge!r}; "
            "expected replace, latest, first, max or rank:<column>"
        )
    return MergeRule(kind)


def merge_expression(table: Table, column: Column) -> str:
    """The value an upsert stores in ``column`` when the key already exists."""
    rule = merge_rule(table, column)
    new = f"excluded.{quote(column.name)}"
    old = f"{TARGET_ALIAS}.{quote(column.name)}"
    if rule.kind == "replace":
        return new
    if rule.kind == "latest":
        return f"COALESCE({new}, {old})"
    if rule.kind == "first":
        return f"COALESCE({old}, {new})"
    if rule.kind == "max":
        # GREATEST skips NULLs in both PostgreSQL and DuckDB (checked by the contract tests).
        return f"GREATEST({old}, {new})"
    assert rule.rank_column is not None
    new_rank = f"excluded.{quote(rule.rank_column)}"
    old_rank = f"{TARGET_ALIAS}.{quote(rule.rank_column)}"
    # Every expression sees the stored row as it was before this statement, so the rank
    # column's own merge (usually max) does not change the comparison.
    return f"CASE WHEN {old_rank} IS NULL OR {new_rank} >= {old_rank} THEN {new} ELSE {old} END"


@lru_cache(maxsize=256)
def insert_new_sql(table: Table, columns: tuple[str, ...], source: str) -> str:
    """Copy ``source`` into ``table``, skipping keys already stored."""
    names = column_list(columns)
    return (
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {source}"
        f" ON CONFLICT ({column_list(table.key)}) DO NOTHING"
    )


@lru_cache(maxsize=256)
def upsert_sql(table: Table, columns: tuple[str, ...], source: str) -> str:
    """Copy ``source`` into ``table``, merging into stored rows by each column's rule."""
    names = column_list(columns)
    updates = [
        f"{quote(c.name)} = {merge_expression(table, c)}"
        for c in table.columns
        if c.name in columns and c.name not in table.key
    ]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    return (
        f"INSERT INTO {quote(table.name)} AS {TARGET_ALIAS} ({names}) SELECT {names} FROM {source}"
        f" ON CONFLICT ({column_list(table.key)}) {action}"
    )


def batch_columns(table: Table, rows: ColumnBatch) -> tuple[tuple[str, ...], int]:
    """Check a batch against its table; return its columns in table order and its row count.

    A batch may leave nullable columns out: they are not written (an upsert leaves them as
    stored). NOT NULL columns must be there: PostgreSQL checks them before it looks for a
    conflict, so leaving one out would work on DuckDB only.
    """
    unknown = sorted(set(rows) - set(table.column_names))
    if unknown:
        raise StoreError(f"{table.name} has no column {', '.join(unknown)}; fix the batch")
    required = [c.name for c in table.columns if c.name in table.key or not c.nullable]
    missing = [name for name in required if name not in rows]
    if missing:
        raise StoreError(f"batch for {table.name} lacks required column {', '.join(missing)}")
    lengths = {name: len(values) for name, values in rows.items()}
    if len(set(lengths.values())) > 1:
        raise StoreError(f"batch for {table.name} has columns of unequal length: {lengths}")
    columns = tuple(name for name in table.column_names if name in rows)
    _check_rank_columns(table, columns)
    return columns, next(iter(lengths.values()))


def _check_rank_columns(table: Table, columns: tuple[str, ...]) -> None:
    for name in columns:
        rule = merge_rule(table, table.column(name))
        if rule.rank_column is not None and rule.rank_column not in columns:
            raise StoreError(
                f"batch for {table.name} has {name} without {rule.rank_column}, "
                f"which decides whether {name} replaces the stored value; add it"
            )


def to_qmark(sql: str) -> str:
    """Rewrite ``%s`` placeholders as ``?`` and ``%%`` as ``%`` (DuckDB's paramstyle)."""
    return _PLACEHOLDER.sub(lambda m: "?" if m.group() == "%s" else "%", sql)


def json_text(value: Any) -> str:
    """The JSON text stored for a ``json`` column value (any JSON-serialisable object)."""
    return orjson.dumps(value).decode()


def check_not_nested(in_transaction: bool) -> None:
    if in_transaction:
        raise StoreError(
            "a store transaction was opened inside another; transactions do not nest: "
            "pass the open transaction down instead"
        )
