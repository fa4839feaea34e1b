"""The store: one schema on DuckDB (embedded) or PostgreSQL (cluster), behind ``Store``.

Only :func:`open_store` picks a backend, and it imports that backend's driver alone.
"""

from __future__ import annotations

from pulso.config import Settings
from pulso.errors import ConfigError
from pulso.store.protocol import Dialect, Store, StoreTx

__all__ = ["Dialect", "Store", "StoreTx", "open_store"]


def open_store(settings: Settings) -> Store:
    """Open the store ``PULSO_STORE_URL`` names and bring its schema up to date."""
    store = _open(settings)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def _open(settings: Settings) -> Store:
    target = settings.store
    if target.kind == "duckdb":
        from pulso.store.duckdb import DuckDBStore

        if target.path is None:  # parse_store_url always sets it; kept for the type checker
            raise ConfigError("PULSO_STORE_URL", "a duckdb:/// URL needs a file path")
        return DuckDBStore(target.path, memory_limit=settings.duckdb_memory_limit)
    from pulso.store.postgres import PostgresStore

    return PostgresStore(target.dsn)
