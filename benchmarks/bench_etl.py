"""The sales ETL: validated rows per second into DuckDB and PostgreSQL, and peak memory, each
beside its baselines measured in the same run on the same file.

Generates one daily sales file with the sales generator (``--rows``; ``--bad-rate`` mixes in
bad lines of every kind, and the bare COPYs, which stop at the first bad line, then load the
file's clean twin), then times:

- ``pulso etl`` into a fresh DuckDB store and into a fresh PostgreSQL schema, each in its own
  process (so its peak RSS is its own): streaming read, clean, vectorised checks, rejects file,
  bulk load and run record in one transaction, commit included;
- the seed's approach on the first ``--seed-rows`` rows: pandas ``read_csv``, one pydantic
  model per row (the same record rules, ``pulso.etl.record.SaleRow``), ``DataFrame.to_sql``
  through SQLAlchemy into the same PostgreSQL table;
- the ceiling: a bare ``COPY`` of the unvalidated file into a PostgreSQL table with the same
  primary key and index, and DuckDB's own ``COPY`` of it into a table with the same key, and
  into one without (what the primary key costs).

The machine is shared: the load average is printed beside the figures, and so is the CPU time
each run used in this machine's pulso processes (user + system, all threads; for PostgreSQL the
client's share only). CPU time moves far less with the load than wall time does, and for
DuckDB ``rows / (CPU s / cores)`` bounds what a run could reach with the cores to itself.
``--repeat N`` runs the DuckDB ETL and both DuckDB COPYs N times, interleaved, and reports
the medians.

    python benchmarks/bench_etl.py [--rows 1000000] [--bad-rate 0.01] [--seed-rows 100000]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--no-postgres] [--no-seed]
        [--repeat 3]
    python benchmarks/bench_etl.py --rows 5000000   # the memory figure
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from pulso.config import load_settings
from pulso.etl import run_file
from pulso.sources.sales_generator import SalesConfig, write_sales_csv
from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.tables import SALES

DAY = date(2026, 11, 20)
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DUCKDB_TARGET = 700_000
POSTGRES_TARGET = 250_000
COPY_SHARE_TARGET = 0.65
DUCKDB_COPY = "DuckDB COPY → duckdb"
DUCKDB_COPY_NO_KEY = "DuckDB COPY, no key"
MEMORY_TARGET_MB = 1024
# The file's columns with the sales table's key and index: what a bare COPY loads into.
COPY_TABLE = """CREATE TABLE {name} (
    sale_id TEXT NOT NULL, sold_at TIMESTAMPTZ NOT NULL, store_id TEXT, seller TEXT,
    product TEXT, category TEXT, quantity INTEGER, unit_price {money}, total {money},
    payment_method TEXT, city TEXT, uf TEXT, PRIMARY KEY (sale_id))"""


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    rows: int
    seconds: float
    peak_rss_mb: float | None = None
    note: str = ""
    cpu_s: float | None = None  # user + system time of the process doing the work

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_bound_rate(self) -> float | None:
        """The rate if the work kept every core busy and had them to itself."""
        if not self.cpu_s:
            return None
        return self.rows / (self.cpu_s / (os.cpu_count() or 1))


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="pulso-bench-etl-") as folder:
        work = Path(folder)
        path = _generate(work, args.rows, args.bad_rate)
        # A bare COPY stops at the first bad line: with --bad-rate it loads the clean twin.
        clean = path if args.bad_rate == 0 else _generate(work / "clean", args.rows, 0.0)
        timings = _duckdb_rounds(path, clean, work, args.repeat)
        if not args.no_postgres:
            with _schema(args.postgres_url) as url:
                postgres = _in_child("postgresql", str(path), url)
            with _schema(args.postgres_url) as url:
                bare = _postgres_copy(clean, url)
            timings += [postgres, bare]
            if not args.no_seed:
                with _schema(args.postgres_url) as url:
                    seed = _seed_approach(path, url, args.seed_rows)
                timings.append(seed)
        _report(timings, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad-rate", type=float, default=0.0)
    parser.add_argument("--seed-rows", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="DuckDB runs, interleaved")
    return parser.parse_args()


def _generate(folder: Path, rows: int, bad_rate: float) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"sales-{DAY.isoformat()}.csv"
    started = time.perf_counter()
    with path.open("wb") as out:
        stats = write_sales_csv(SalesConfig(day=DAY, rows=rows, bad_rate=bad_rate), out)
    print(
        f"file: {rows:,} rows ({stats.bad_rows:,} bad), {path.stat().st_size / 1e6:,.0f} MB,"
        f" generated in {time.perf_counter() - started:.1f} s"
    )
    return path


def _duckdb_rounds(path: Path, clean: Path, work: Path, repeat: int) -> list[Timing]:
    """The DuckDB ETL and both bare COPYs, ``repeat`` times in turn; the median of each."""
    rounds: dict[str, list[Timing]] = {}
    for i in range(max(1, repeat)):
        for timing in (
            _in_child("duckdb", str(path), str(work / f"etl-{i}.duckdb")),
            _duckdb_copy(clean, work / f"copy-{i}.duckdb", primary_key=True),
            _duckdb_copy(clean, work / f"copy-nokey-{i}.duckdb", primary_key=False),
        ):
            rounds.setdefault(timing.label, []).append(timing)
        for name in work.glob("*.duckdb*"):  # a GB a round at 5 M rows
            name.unlink()
    if repeat > 1:
        for label, runs in rounds.items():
            rates = ", ".join(f"{t.rate:,.0f}" for t in runs)
            print(f"  {label}: {rates} rows/s")
    return [_median(runs) for runs in rounds.values()]


def _median(runs: list[Timing]) -> Timing:
    by_time = sorted(runs, key=lambda t: t.seconds)
    middle = by_time[(len(by_time) - 1) // 2]
    cpu = [t.cpu_s for t in runs if t.cpu_s is not None]
    peak = [t.peak_rss_mb for t in runs if t.peak_rss_mb is not None]
    return Timing(
        middle.label,
        middle.rows,
        statistics.median(t.seconds for t in runs),
        max(peak) if peak else None,
        middle.note,
        statistics.median(cpu) if cpu else None,
    )


# --- the ETL, in a process of its own ------------------------------------------------------


def _in_child(kind: str, path: str, target: str) -> Timing:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(_etl_child, (kind, path, target))
    return Timing(
        f"pulso etl → {kind}",
        result["rows"],
        result["seconds"],
        result["peak_rss_mb"],
        f"{result['loaded']:,} loaded, {result['rejected']:,} rejected",
        result["cpu_s"],
    )


def _etl_child(kind: str, path: str, target: str) -> dict[str, Any]:
    settings = load_settings(data_dir=Path(path).parent / "data")
    store = DuckDBStore(Path(target)) if kind == "duckdb" else PostgresStore(target)
    try:
        store.migrate()
        cpu_before = _cpu_s()
        started = time.perf_counter()
        record = run_file(store, path, settings)
        seconds = time.perf_counter() - started
        cpu = _cpu_s() - cpu_before
    finally:
        store.close()
    return {
        "rows": record.rows_read,
        "loaded": record.rows_loaded,
        "rejected": record.rows_rejected,
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_s": cpu,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM belongs to the process's own memory map, while
    getrusage's ru_maxrss survives exec, so a spawned child would report its parent's peak
    (here: the generator's) if that was higher."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the baselines ---------------------------------------------------------------------


@contextmanager
def _schema(url: str) -> Iterator[str]:
    """A fresh schema (dropped afterwards); yields a URL whose search_path is it."""
    name = f"bench_etl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
        try:
            sep = "&" if "?" in url else "?"
            yield f"{url}{sep}options=-csearch_path%3D{name}"
        finally:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def _postgres_copy(path: Path, url: str) -> Timing:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(COPY_TABLE.format(name="sales_copy", money="NUMERIC(14,2)"))
        conn.execute("CREATE INDEX ON sales_copy (sold_at)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            sql = "COPY sales_copy FROM STDIN (FORMAT csv, HEADER true)"
            with cursor.copy(sql) as copy, path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM sales_copy").fetchone()
    count = int(rows[0]) if rows else 0
    return Timing("bare COPY → postgresql", count, seconds, note="no checks")


def _duckdb_copy(path: Path, target: Path, *, primary_key: bool) -> Timing:
    """DuckDB's own COPY, in this process (its CPU time is this process's)."""
    ddl = COPY_TABLE.format(name="sales_copy", money="DECIMAL(14,2)")
    if not primary_key:
        ddl = ddl.replace(", PRIMARY KEY (sale_id)", "")
    conn = duckdb.connect(str(target))
    try:
        conn.execute(ddl)
        cpu_before = _cpu_s()
        started = time.perf_counter()
        conn.execute(f"COPY sales_copy FROM '{path}' (HEADER true)")
        seconds = time.perf_counter() - started
        cpu = _cpu_s() - cpu_before
        count = int(conn.execute("SELECT count(*) FROM sales_copy").fetchall()[0][0])
    finally:
        conn.close()
    label = DUCKDB_COPY if primary_key else DUCKDB_COPY_NO_KEY
    return Timing(label, count, seconds, note="no checks", cpu_s=cpu)


def _seed_approach(path: Path, url: str, rows: int) -> Timing:
    """pandas read_csv, a pydantic model per row, DataFrame.to_sql through SQLAlchemy."""
    import pandas as pd  # noqa: TID251 - the seed's approach, in a benchmark only
    import sqlalchemy

    from pulso.etl.record import SaleRow
    from pulso.etl.rules import known_categories, sale_rules

    with PostgresStore(url) as store:
        store.migrate()
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    rules = sale_rules(path.name, now=datetime.now(UTC), categories=known_categories())
    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=rows, on_bad_lines="skip")
    valid: list[dict[str, Any]] = []
    for record in frame.to_dict(orient="records"):
        try:
            sale = SaleRow.model_validate(record, context=rules)
        except ValueError:
            continue
        values = sale.model_dump(exclude={"unit_price", "total"})
        values.update(unit_price_cents=sale.unit_price_cents, total_cents=sale.total_cents)
        valid.append(values)
    out = pd.DataFrame(valid).assign(source_file=str(path))
    out.to_sql(SALES.name, engine, if_exists="append", index=False, chunksize=10_000)
    seconds = time.perf_counter() - started
    engine.dispose()
    return Timing(
        "seed: pandas + pydantic + to_sql", len(frame), seconds, note=f"{len(out):,} loaded"
    )


# --- the report ------------------------------------------------------------------------


def _report(timings: list[Timing], args: argparse.Namespace) -> None:
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for t in timings:
        rss = f"  peak RSS {t.peak_rss_mb:,.0f} MB" if t.peak_rss_mb is not None else ""
        cpu = f"  CPU {t.cpu_s:5.2f} s" if t.cpu_s is not None else ""
        print(
            f"{t.label:34s} {t.rows:>10,} rows {t.seconds:7.2f} s {t.rate:>11,.0f} rows/s"
            f"{cpu}{rss}  {t.note}"
        )
    by_label = {t.label: t for t in timings}
    duck = by_label["pulso etl → duckdb"]
    duck_copy, no_key = by_label[DUCKDB_COPY], by_label[DUCKDB_COPY_NO_KEY]
    _verdict("DuckDB", duck.rate, DUCKDB_TARGET)
    print(
        f"  {duck.rate / duck_copy.rate:.0%} of DuckDB's bare COPY with the key,"
        f" {duck.rate / no_key.rate:.0%} of it without"
    )
    if duck.cpu_s and duck_copy.cpu_s and no_key.cpu_s:
        cores = os.cpu_count() or 1
        print(
            f"  CPU per million rows: ETL {duck.cpu_s / duck.rows * 1e6:.2f} s, bare COPY"
            f" {duck_copy.cpu_s / duck_copy.rows * 1e6:.2f} s with the key,"
            f" {no_key.cpu_s / no_key.rows * 1e6:.2f} s without"
        )
        print(
            f"  with {cores} idle cores at most: ETL {duck.cpu_bound_rate:,.0f} rows/s,"
            f" bare COPY {duck_copy.cpu_bound_rate:,.0f} with the key,"
            f" {no_key.cpu_bound_rate:,.0f} without"
        )
    if "pulso etl → postgresql" in by_label:
        postgres = by_label["pulso etl → postgresql"]
        bare = by_label["bare COPY → postgresql"]
        _verdict("PostgreSQL", postgres.rate, POSTGRES_TARGET)
        share = postgres.rate / bare.rate
        mark = "≥" if share >= COPY_SHARE_TARGET else "<"
        print(f"  {share:.0%} of bare COPY ({mark} {COPY_SHARE_TARGET:.0%})")
        seed = by_label.get("seed: pandas + pydantic + to_sql")
        if seed is not None:
            print(f"  {postgres.rate / seed.rate:,.1f}x the seed's approach")
            print(f"  DuckDB ETL {duck.rate / seed.rate:,.1f}x the seed's approach")
    for t in timings:
        if t.peak_rss_mb is not None:
            mark = "≤" if t.peak_rss_mb <= MEMORY_TARGET_MB else ">"
            print(
                f"peak RSS {t.label}: {t.peak_rss_mb:,.0f} MB ({mark} {MEMORY_TARGET_MB} MB)"
                f" on {args.rows:,} rows"
            )


def _verdict(store: str, rate: float, target: int) -> None:
    mark = "≥" if rate >= target else "<"
    print(f"{store}: {rate:,.0f} validated rows/s ({mark} target {target:,})")


if __name__ == "__main__":
    main()
