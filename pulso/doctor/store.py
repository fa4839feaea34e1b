"""The store: it connects, its schema version and pending migrations, who holds a DuckDB
file, and (PostgreSQL) partitioning/TimescaleDB as ``pulso.store.partitions.describe``
tells it when that module is there."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from pulso.config import Settings
from pulso.doctor.result import Finding, failed, first_line, ok, warning
from pulso.errors import PulsoError

COMPONENT: Final = "store"
_LOCK_PID: Final = re.compile(r"PID (\d+)")
_MIGRATE_FIX: Final = (
    "migrations apply when pulso opens the store: run `pulso up` (or `pulso run`, "
    "`pulso worker`) once with this PULSO_STORE_URL"
)
_PG_FIX: Final = (
    "check PULSO_STORE_URL (user, password, host, port, database) and that PostgreSQL runs "
    "and accepts connections from here (docker compose up -d postgres)"
)
Query = Callable[[str], list[tuple[Any, ...]]]


def check_store(settings: Settings, timeout_s: float) -> list[Finding]:
    target = settings.store
    if target.kind == "duckdb":
        assert target.path is not None
        return [_check_duckdb(target.path, settings)]
    return _check_postgres(target.dsn, timeout_s)


# ------------------------------------------------------------------------------- DuckDB


def _check_duckdb(path: Path, settings: Settings) -> Finding:
    import duckdb

    component = "store (DuckDB)"
    path = path.absolute()
    if not path.exists():
        return ok(component, f"{path} not created yet; pulso creates it on first use")
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as e:
        if "lock" not in str(e).lower():
            return failed(component, f"cannot open {path}: {first_line(e)}", _duckdb_fix())
        return _locked(component, path, str(e), settings)
    except duckdb.Error as e:
        return failed(component, f"cannot open {path}: {first_line(e)}", _duckdb_fix())
    try:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            ["schema_migrations"],
        ).fetchone()
        has_table = bool(tables and tables[0])

        def query(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        return _schema_finding(component, f"{path}", query if has_table else None)
    except duckdb.Error as e:
        return failed(component, f"cannot read {path}: {first_line(e)}", _duckdb_fix())
    finally:
        conn.close()


def _locked(component: str, path: Path, error: str, settings: Settings) -> Finding:
    match = _LOCK_PID.search(error)
    pid = int(match.group(1)) if match else None
    command = running_command(pid) if pid is not None else ""
    holder = f"PID {pid}" if pid is not None else "another process"
    if command:
        holder += f", probably `{command}`"
    api = settings.public_url.rstrip("/")
    return warning(
        component,
        f"{path} is held by {holder}: DuckDB lets one process own the file, so this "
        "command cannot read it while that one runs",
        f"read through the running server's API instead: `pulso query --api {api}`, "
        f"`pulso dashboard --api {api}`, or GET {api}/docs; or stop that process and retry",
    )


def running_command(pid: int) -> str:
    """The pulso command a process runs (``pulso up``...), from /proc; ``""`` if unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    args = [a for a in raw.decode(errors="replace").split("\0") if a]
    for index, arg in enumerate(args):
        name = Path(arg).name
        if name == "pulso" or (arg == "pulso" and index > 0 and args[index - 1] == "-m"):
            words = ["pulso"]
            for word in args[index + 1 :]:
                if word.startswith("-") or len(words) >= 3:
                    break
                words.append(word)
            return " ".join(words)
    shown = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args[:4]))
    shown = " ".join(shown.split())  # a `python -c` script on one line
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _duckdb_fix() -> str:
    return (
        "check PULSO_STORE_URL / PULSO_DATA_DIR; a damaged file can be restored with "
        "`pulso maintenance restore`"
    )


# ---------------------------------------------------------------------------- PostgreSQL


def _check_postgres(dsn: str, timeout_s: float) -> list[Finding]:
    from pulso.store.postgres import PostgresStore

    component = "store (PostgreSQL)"
    try:
        # libpq counts whole seconds and takes at least 2.
        store = PostgresStore(dsn, connect_timeout_s=max(2, math.ceil(timeout_s)))
    except PulsoError as e:
        return [failed(component, str(e), _PG_FIX)]
    try:
        version = str(store.query("SHOW server_version")[0][0]).split()[0]
        has_table = store.query("SELECT to_regclass(%s) IS NOT NULL", ("schema_migrations",))
        where = f"{store.url} (server {version})"

        def query(sql: str) -> list[tuple[Any, ...]]:
            return store.query(sql)

        findings = [_schema_finding(component, where, query if has_table[0][0] else None)]
        findings.append(_partitioning(store))
        return findings
    except PulsoError as e:
        return [failed(component, str(e), _PG_FIX)]
    finally:
        store.close()


def _partitioning(store: Any) -> Finding:
    component = "store partitioning"
    try:
        from pulso.store import partitions
    except ImportError:
        return _timescaledb_only(store)
    describe = getattr(partitions, "describe", None)
    if describe is None:
        return _timescaledb_only(store)
    try:
        facts: dict[str, str] = describe(store)
    except Exception as e:  # another feature's code: report, never crash the doctor
        return warning(component, f"could not describe partitioning: {first_line(e)}")
    detail = "\n".join(f"{k}: {v}" for k, v in facts.items()) or "no facts reported"
    return ok(component, detail)


def _timescaledb_only(store: Any) -> Finding:
    rows = store.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    if rows:
        return ok("store partitioning", f"TimescaleDB {rows[0][0]} installed")
    return ok("store partitioning", "plain PostgreSQL (TimescaleDB not installed)")


# ---------------------------------------------------------------------------- both


def _schema_finding(component: str, where: str, query: Query | None) -> Finding:
    from pulso.store.schema import MIGRATIONS, MIGRATIONS_TABLE

    known = [m.version for m in MIGRATIONS]
    latest = max(known, default=0)
    recorded = (
        set()
        if query is None
        else {int(r[0]) for r in query(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    )
    newer = sorted(recorded - set(known))
    if newer:
        return failed(
            component,
            f"{where}: schema version {newer[-1]} is newer than this pulso knows ({latest})",
            "upgrade pulso to the version that wrote this database, or point PULSO_STORE_URL "
            "elsewhere",
        )
    pending = [v for v in known if v not in recorded]
    if not recorded:
        return warning(
            component,
            f"{where}: connects; no schema yet (migrations 1-{latest} pending)",
            _MIGRATE_FIX,
        )
    if pending:
        return warning(
            component,
            f"{where}: schema version {max(recorded)}; pending migrations: "
            + ", ".join(str(v) for v in pending),
            _MIGRATE_FIX,
        )
    return ok(component, f"{where}: schema version {latest}, migrations applied")
