"""PostgreSQL time partitioning of the fact tables, and TimescaleDB where the server has it.

Which tables, and why (docs/postgres.md has the long form):

- ``raw_events`` by ``occurred_at``: the largest table (every event, with its bytes). Its key
  becomes ``(event_id, occurred_at)`` on PostgreSQL: a partitioned table's unique keys must
  hold the partition column, and ``occurred_at`` is part of the event envelope, fixed per
  event, so a replayed event still conflicts with its stored copy (exactly once holds).
- ``payment_minutes`` by ``minute`` and ``stream_windows`` by ``window_start``: their keys
  hold the time already, nothing changes for the upserts.
- ``payments`` is **not** partitioned: its time ``created_at`` is NULL until the charge's
  ``created`` event arrives, and a ``confirmed`` event may arrive first (the fold merges them
  with ``merge="first"``). A key ``(charge_id, created_at)`` would store the early row and the
  later one as two charges, and PostgreSQL cannot enforce ``charge_id`` alone unique across
  partitions, so ``ON CONFLICT (charge_id)`` would have no index to use. One row per charge
  (a fraction of ``raw_events``) is served well by its B-tree indexes.
- ``alerts``: tens of rows a day; partitions would cost planning time for nothing.

Partitions are daily, by **UTC** day (as the raw archive), named ``<table>_pYYYYMMDD``, with
a ``<table>_default`` partition, so an insert never fails: a row whose day has no partition
(far past, far future) lands there. :func:`ensure_partitions` creates the days ahead (at
migrate/start, and from the write path when a batch reaches a day not covered yet), moving a
day's rows out of the default partition when it has some. Each new partition is created as a
plain table and ``ATTACH``-ed: that takes a ``SHARE UPDATE EXCLUSIVE`` lock on the parent
(reads and writes go on), where ``CREATE TABLE ... PARTITION OF`` would take an exclusive one.

Where the TimescaleDB extension is installed (or available and installable) migration v7
makes the same three tables hypertables with daily chunks instead; ``pulso maintenance
retention`` then drops whole chunks (:func:`drop_chunks_sql`), and :func:`retention_policy_sql`
is the standing TimescaleDB policy for whoever wants the server to do it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Protocol

from pulso.store import tables
from pulso.store.protocol import Dialect, Store, StoreTx
from pulso.store.schema import column_type, create_index_sql
from pulso.store.sql import column_list, quote
from pulso.store.tables import Table

AHEAD_DAYS: Final = 7  # partitions created ahead of today
HORIZON_DAYS: Final = 400  # oldest day given its own partition automatically
MAX_AHEAD_DAYS: Final = 31  # a batch further ahead than this does not create partitions
LOCK_KEY: Final = 0x70756C736F70  # one partition maintainer at a time across processes
CHUNK: Final = "1 day"


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """A table partitioned by range of one time column, with its PostgreSQL key."""

    table: Table
    column: str
    key: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def default(self) -> str:
        return f"{self.table.name}_default"

    def partition(self, day: date) -> str:
        return f"{self.table.name}_p{day:%Y%m%d}"

    @property
    def pg_table(self) -> Table:
        """The spec with the PostgreSQL key (what ``ON CONFLICT`` must name)."""
        if self.key == self.table.key:
            return self.table
        return Table(self.table.name, self.table.columns, self.key, self.table.indexes)


SPECS: Final[tuple[PartitionSpec, ...]] = (
    PartitionSpec(tables.RAW_EVENTS, "occurred_at", ("event_id", "occurred_at")),
    PartitionSpec(tables.PAYMENT_MINUTES, "minute", tables.PAYMENT_MINUTES.key),
    PartitionSpec(tables.STREAM_WINDOWS, "window_start", tables.STREAM_WINDOWS.key),
)
BY_NAME: Final[dict[str, PartitionSpec]] = {s.name: s for s in SPECS}
NOT_PARTITIONED: Final[dict[str, str]] = {
    "payments": "created_at is NULL until the created event arrives (see the module docs)",
    "alerts": "tens of rows a day: partitions would cost planning time for nothing",
}

# Indexes for the dashboard queries (pulso/analytics): payments filtered by status, a
# created_at range and a city (the store filter has (store_id, created_at) since v1).
DASHBOARD_INDEXES: Final[tuple[str, ...]] = (
    'CREATE INDEX IF NOT EXISTS "ix_payments_city_created_at" ON "payments" ("city", "created_at")',
)


def stored_keys(fetch: _Fetch) -> dict[str, tuple[str, ...]]:
    """The primary key columns each partitioned-spec table has in the current schema."""
    rows = fetch(
        "SELECT c.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_constraint x"
        " JOIN pg_class c ON c.oid = x.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL unnest(x.conkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE n.nspname = current_schema() AND x.contype = 'p' AND c.relname = ANY(%s)"
        " GROUP BY c.relname",
        (list(BY_NAME),),
    )
    return {str(r[0]): tuple(str(c) for c in r[1]) for r in rows}


# --- migration v7 -----------------------------------------------------------------------


def day_bound(day: date) -> str:
    """A partition bound literal: midnight UTC of ``day``."""
    return f"{day.isoformat()} 00:00:00+00"


def partitioned_table_sql(spec: PartitionSpec) -> str:
    columns = [
        f"{quote(c.name)} {column_type(c.type, 'postgresql')}{'' if c.nullable else ' NOT NULL'}"
        for c in spec.table.columns
    ]
    columns.append(f"PRIMARY KEY ({column_list(spec.key)})")
    body = ",\n    ".join(columns)
    by = quote(spec.column)
    return f"CREATE TABLE {quote(spec.name)} (\n    {body}\n) PARTITION BY RANGE ({by})"


def hypertable_sql(spec: PartitionSpec, pk: str | None) -> list[str]:
    """What makes an existing plain table a TimescaleDB hypertable (``pk``: the name of its
    current primary key constraint, replaced when the key must gain the time column)."""
    statements: list[str] = []
    if spec.key != spec.table.key:
        if pk is not None:
            statements.append(f"ALTER TABLE {quote(spec.name)} DROP CONSTRAINT {quote(pk)}")
        statements.append(
            f"ALTER TABLE {quote(spec.name)} ADD PRIMARY KEY ({column_list(spec.key)})"
        )
    statements.append(
        f"SELECT create_hypertable('{spec.name}', '{spec.column}', "
        f"chunk_time_interval => INTERVAL '{CHUNK}', migrate_data => true, if_not_exists => true)"
    )
    return statements


def retention_policy_sql(table: str, keep: timedelta) -> list[str]:
    """A TimescaleDB retention policy for a hypertable, replacing any it had."""
    seconds = int(keep.total_seconds())
    return [
        f"SELECT remove_retention_policy('{table}', if_exists => true)",
        f"SELECT add_retention_policy('{table}', drop_after => INTERVAL '{seconds} seconds')",
    ]


def drop_chunks_sql(table: str) -> str:
    """Drop the chunks entirely older than the cutoff (one parameter)."""
    return f"SELECT count(*) FROM drop_chunks('{table}', older_than => %s::timestamptz)"


_TRY_TIMESCALE: Final = """DO $pulso$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
     AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'pulso: TimescaleDB is available but cannot be created (%); '
        'using native partitions', SQLERRM;
    END;
  END IF;
END $pulso$"""


def _convert_sql(spec: PartitionSpec) -> str:
    """One DO block: skip a table already partitioned; make it a hypertable on TimescaleDB;
    else rename the plain table, create the partitioned one with a partition per UTC day
    the rows have (within the horizon) and a default, move the rows, drop the old table."""
    name, old, col = spec.name, f"{spec.name}_plain", quote(spec.column)
    names = column_list(c.name for c in spec.table.columns)
    hyper = _hypertable_plpgsql(spec)
    return f"""DO $pulso$
DECLARE
  _pk text;
  _d date;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relname = '{name}'
               AND c.relkind = 'p') THEN
    RETURN;
  END IF;
  SELECT x.conname INTO _pk FROM pg_constraint x
    WHERE x.conrelid = to_regclass(quote_ident('{name}')) AND x.contype = 'p';
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    {hyper}
    RETURN;
  END IF;
  ALTER TABLE {quote(name)} RENAME TO {quote(old)};
  IF _pk IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', '{old}', _pk, _pk || '_plain');
  END IF;
  {"".join(f"DROP INDEX IF EXISTS {quote(ix)}; " for ix in _index_names(spec))}
  {partitioned_table_sql(spec)};
  CREATE TABLE {quote(spec.default)} PARTITION OF {quote(name)} DEFAULT;
  FOR _d IN
    SELECT DISTINCT (date_trunc('day', {col} AT TIME ZONE 'UTC'))::date FROM {quote(old)}
    WHERE {col} >= now() - INTERVAL '{HORIZON_DAYS} days'
      AND {col} < now() + INTERVAL '{MAX_AHEAD_DAYS} days'
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   '{name}_p' || to_char(_d, 'YYYYMMDD'), '{name}',
                   _d::text || ' 00:00:00+00', (_d + 1)::text || ' 00:00:00+00');
  END LOOP;
  INSERT INTO {quote(name)} ({names}) SELECT {names} FROM {quote(old)};
  DROP TABLE {quote(old)};
END $pulso$"""


def _hypertable_plpgsql(spec: PartitionSpec) -> str:
    """:func:`hypertable_sql` as PL/pgSQL, the key's name taken from ``_pk`` at run time."""
    lines = []
    for statement in hypertable_sql(spec, "\x00"):
        if "\x00" in statement:
            lines.append(
                f"EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', '{spec.name}', _pk);"
            )
        else:
            lines.append(f"EXECUTE '{_q(statement)}';")
    return "\n    ".join(lines)


def _q(s: str) -> str:
    return s.replace("'", "''")


def _index_names(spec: PartitionSpec) -> list[str]:
    return [f"ix_{spec.name}_{'_'.join(cols)}" for cols in spec.table.indexes]


def migration_v7(dialect: Dialect) -> list[str]:
    """PostgreSQL only: partition (or make hypertables of) the fact tables, existing rows
    kept; the dashboard indexes. DuckDB gets nothing (its zone maps do the pruning)."""
    if dialect == "duckdb":
        return []
    statements = [_TRY_TIMESCALE]
    for spec in SPECS:
        statements.append(_convert_sql(spec))
        statements.extend(create_index_sql(spec.table, "postgresql"))
    statements.extend(DASHBOARD_INDEXES)
    # Run through execute(sql, ()): psycopg reads % as a placeholder, so the literal ones
    # (format() patterns, RAISE) are doubled.
    return [s.replace("%", "%%") for s in statements]


# --- the partitions of a live store ------------------------------------------------------


class _Fetch(Protocol):
    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime | None  # None: the default partition
    upper: datetime | None
    rows: int | None = None

    @property
    def is_default(self) -> bool:
        return self.lower is None


_BOUND: Final = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def parse_bound(text: str) -> tuple[datetime, datetime] | None:
    """``FOR VALUES FROM ('2026-11-24 00:00:00+00') TO (...)`` as two datetimes; None for
    ``DEFAULT`` (or anything else)."""
    match = _BOUND.search(text)
    if match is None:
        return None
    return _timestamp(match[1]), _timestamp(match[2])


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_partitioned(fetch: _Fetch, table: str) -> bool:
    rows = fetch(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = %s",
        (table,),
    )
    return bool(rows) and str(rows[0][0]) == "p"


def list_partitions(fetch: _Fetch, table: str) -> list[Partition]:
    """The partitions of ``table`` by lower bound, the default one last."""
    rows = fetch(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
        " JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE n.nspname = current_schema() AND p.relname = %s",
        (table,),
    )
    found = []
    for name, bound in rows:
        parsed = parse_bound(str(bound))
        found.append(Partition(str(name), *(parsed or (None, None))))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.lower is None, p.lower or far))


def timescaledb_state(fetch: _Fetch) -> tuple[str | None, str | None]:
    """(available default version, installed version) of the TimescaleDB extension."""
    rows = fetch(
        "SELECT default_version, installed_version FROM pg_available_extensions"
        " WHERE name = 'timescaledb'"
    )
    if not rows:
        return None, None
    return _text(rows[0][0]), _text(rows[0][1])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def hypertables(fetch: _Fetch) -> set[str]:
    """The hypertables of the current schema (empty without TimescaleDB)."""
    if timescaledb_state(fetch)[1] is None:
        return set()
    rows = fetch(
        "SELECT hypertable_name FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = current_schema()"
    )
    return {str(r[0]) for r in rows}


def utc_day(value: datetime) -> date:
    return value.astimezone(UTC).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def ensure_partitions(
    store: Store,
    until: datetime | date | None = None,
    *,
    since: datetime | date | None = None,
    days: Iterable[date] = (),
    now: datetime | None = None,
) -> list[str]:
    """Create the daily partitions of every partitioned table from ``since`` (default: today)
    through ``until`` (default: today + AHEAD_DAYS), for each of ``days``, and for each day of
    the last HORIZON_DAYS that has rows in a default partition (their rows move to it).
    Returns the partitions created. Nothing on DuckDB or on hypertables; cheap when all
    exist (one catalog query per table)."""
    if store.dialect != "postgresql":
        return []
    today = utc_day(now or datetime.now(UTC))
    last = _as_day(until) if until is not None else today + timedelta(days=AHEAD_DAYS)
    first = _as_day(since) if since is not None else today
    extra = set(days)
    created: list[str] = []
    with store.transaction() as tx:
        tx.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for spec in SPECS:
            if is_partitioned(tx.fetch, spec.name):
                created += _ensure_table(tx, spec, first, last, today, extra)
    return created


def _as_day(value: datetime | date) -> date:
    return utc_day(value) if isinstance(value, datetime) else value


def _ensure_table(
    tx: StoreTx, spec: PartitionSpec, first: date, last: date, today: date, extra: set[date]
) -> list[str]:
    existing = list_partitions(tx.fetch, spec.name)
    covered = [(p.lower, p.upper) for p in existing if p.lower is not None and p.upper]
    wanted = set(_days(first, last)) | extra
    has_default = any(p.is_default for p in existing)
    if has_default:
        wanted |= _default_days(tx, spec, today)
    created = []
    for day in sorted(wanted):
        lo, hi = midnight(day), midnight(day + timedelta(days=1))
        if any(a < hi and lo < b for a, b in covered if a is not None and b is not None):
            continue  # that range (or part of it) has a partition already
        _create_partition(tx, spec, day, has_default)
        covered.append((lo, hi))
        created.append(spec.partition(day))
    return created


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _default_days(tx: StoreTx, spec: PartitionSpec, today: date) -> set[date]:
    col = quote(spec.column)
    rows = tx.fetch(
        f"SELECT DISTINCT (date_trunc('day', {col} AT TIME ZONE 'UTC'))::date"
        f" FROM {quote(spec.default)} WHERE {col} >= %s AND {col} < %s",
        (
            midnight(today - timedelta(days=HORIZON_DAYS)),
            midnight(today + timedelta(days=MAX_AHEAD_DAYS)),
        ),
    )
    return {r[0] for r in rows}


def _create_partition(tx: StoreTx, spec: PartitionSpec, day: date, has_default: bool) -> None:
    """A plain table, the day's rows moved out of the default partition, then ATTACH."""
    name, col = quote(spec.partition(day)), quote(spec.column)
    lo, hi = day_bound(day), day_bound(day + timedelta(days=1))
    tx.execute(
        f"CREATE TABLE {name} (LIKE {quote(spec.name)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    if has_default:
        columns = column_list(c.name for c in spec.table.columns)
        tx.execute(
            f"WITH moved AS (DELETE FROM {quote(spec.default)} WHERE {col} >= %s AND {col} < %s"
            f" RETURNING {columns}) INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
            (lo, hi),
        )
    tx.execute(
        f"ALTER TABLE {quote(spec.name)} ATTACH PARTITION {name}"
        f" FOR VALUES FROM ('{lo}') TO ('{hi}')"
    )


def covered_range(store: Store) -> tuple[datetime, datetime] | None:
    """The contiguous span of days every partitioned table has partitions for, ending at the
    latest one (None when a table has none or the store is not partitioned)."""
    if store.dialect != "postgresql":
        return None
    spans = []
    for spec in SPECS:
        if not is_partitioned(store.query, spec.name):
            continue
        parts = [p for p in list_partitions(store.query, spec.name) if not p.is_default]
        if not parts:
            return None
        hi = parts[-1].upper
        lo = parts[-1].lower
        for p in reversed(parts[:-1]):
            if p.upper != lo:
                break
            lo = p.lower
        if lo is None or hi is None:
            return None
        spans.append((lo, hi))
    if not spans:
        return None
    return max(s[0] for s in spans), min(s[1] for s in spans)


def partition_days(store: Store) -> set[date]:
    """The UTC days (within HORIZON_DAYS back and MAX_AHEAD_DAYS ahead) that every
    partitioned table has a partition for."""
    today = utc_day(datetime.now(UTC))
    low, high = today - timedelta(days=HORIZON_DAYS), today + timedelta(days=MAX_AHEAD_DAYS)
    common: set[date] | None = None
    for spec in SPECS:
        if not is_partitioned(store.query, spec.name):
            continue
        days: set[date] = set()
        for part in list_partitions(store.query, spec.name):
            if part.lower is None or part.upper is None:
                continue
            first = max(utc_day(part.lower), low)
            last = min(utc_day(part.upper - timedelta(microseconds=1)), high)
            days.update(_days(first, last))
        common = days if common is None else common & days
    return common or set()


def describe(store: Store) -> dict[str, str]:
    """Facts about time partitioning for ``pulso doctor``: the mode, TimescaleDB, and per
    table its partitions (count, first and last day, rows waiting in the default one)."""
    if store.dialect != "postgresql":
        return {"partitioning": "none: DuckDB prunes by its zone maps (PostgreSQL only)"}
    available, installed = timescaledb_state(store.query)
    facts: dict[str, str] = {}
    hyper = hypertables(store.query)
    if installed:
        facts["timescaledb"] = f"installed ({installed})"
    elif available:
        facts["timescaledb"] = (
            f"available ({available}) but not installed: add timescaledb to "
            "shared_preload_libraries, then CREATE EXTENSION timescaledb"
        )
    else:
        facts["timescaledb"] = "not available on this server (native partitions in use)"
    modes = []
    for spec in SPECS:
        if spec.name in hyper:
            modes.append("timescaledb")
            facts[spec.name] = f"hypertable on {spec.column}, {CHUNK} chunks"
        elif is_partitioned(store.query, spec.name):
            modes.append("native")
            facts[spec.name] = _describe_native(store, spec)
        else:
            modes.append("none")
            facts[spec.name] = "not partitioned (migration v7 not applied?)"
    mode = modes[0] if len(set(modes)) == 1 else "mixed"
    facts["partitioning"] = {
        "native": "native PostgreSQL range partitions, daily (UTC)",
        "timescaledb": "TimescaleDB hypertables, daily chunks",
        "none": "none",
        "mixed": "mixed: " + ", ".join(f"{s.name}={m}" for s, m in zip(SPECS, modes, strict=True)),
    }[mode]
    for table, why in NOT_PARTITIONED.items():
        facts[table] = f"not partitioned: {why}"
    return dict(sorted(facts.items(), key=lambda kv: kv[0] != "partitioning"))


def _describe_native(store: Store, spec: PartitionSpec) -> str:
    parts = list_partitions(store.query, spec.name)
    days = [p for p in parts if not p.is_default]
    text = f"daily on {spec.column}, {len(days)} partitions"
    if days and days[0].lower and days[-1].lower:
        text += f" ({days[0].lower:%Y-%m-%d} .. {days[-1].lower:%Y-%m-%d})"
    if any(p.is_default for p in parts):
        rows = int(store.query(f"SELECT count(*) FROM {quote(spec.default)}")[0][0])
        text += f", {rows:,} rows in the default partition"
    else:
        text += ", no default partition"
    return text
