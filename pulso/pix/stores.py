"""The store registry: which ``store_id`` may charge, and where each store is (city, UF).

A charge names its store; the registry turns that id into the city and UF its lifecycle
events carry, and refuses ids it does not know. Stores are rows of the ``stores`` table,
cached in memory (a charge needs its store on every request; a store changes rarely).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from pulso.domain.validators import is_valid_uf
from pulso.errors import ConfigError
from pulso.pix.errors import PixError
from pulso.store.protocol import Store
from pulso.store.tables import STORES

MAX_STORE_ID_CHARS: Final = 64
MAX_CITY_CHARS: Final = 120
# The defaults of `pulso generate payments` (PaymentsConfig): the same stores come out.
_DEMO_SEED: Final = 42
_DEMO_CITIES: Final = 8
_CSV_COLUMNS: Final = ("store_id", "name", "city", "uf")


class UnknownStoreError(PixError):
    """A charge named a store the registry does not have."""

    def __init__(self, store_id: str) -> None:
        super().__init__(
            f"no store {store_id!r} is registered; use one of the registered store ids "
            "(`pulso up --stores FILE.csv` registers stores)"
        )
        self.store_id = store_id


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A point of sale: its id, display name and where it is."""

    store_id: str
    name: str
    city: str
    uf: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.store_id) <= MAX_STORE_ID_CHARS:
            raise ValueError(f"store_id must be 1..{MAX_STORE_ID_CHARS} characters")
        if not self.name.strip():
            raise ValueError(f"store {self.store_id}: the name is empty")
        if not 1 <= len(self.city) <= MAX_CITY_CHARS:
            raise ValueError(f"store {self.store_id}: city must be 1..{MAX_CITY_CHARS} characters")
        if not is_valid_uf(self.uf):
            raise ValueError(f"store {self.store_id}: unknown UF {self.uf!r}")


class StoreRegistry:
    """Stores kept in the ``stores`` table, read through a cache."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, StoreInfo] = {}
        self._lock = threading.Lock()

    def get(self, store_id: str) -> StoreInfo | None:
        known = self._cache.get(store_id)
        if known is not None:
            return known
        # Another process (or an earlier run) may have registered it since the cache filled.
        rows = self._store.query(
            "SELECT store_id, name, city, uf FROM stores WHERE store_id = %s", (store_id,)
        )
        if not rows:
            return None
        info = StoreInfo(*(str(v) for v in rows[0]))
        with self._lock:
            self._cache[store_id] = info
        return info

    def require(self, store_id: str) -> StoreInfo:
        info = self.get(store_id)
        if info is None:
            raise UnknownStoreError(store_id)
        return info

    def register(self, stores: Iterable[StoreInfo]) -> int:
        """Add or update stores; returns how many were given."""
        batch = {s.store_id: s for s in stores}  # the last one of an id wins
        if not batch:
            return 0
        now = datetime.now(UTC)
        infos = list(batch.values())
        with self._store.transaction() as tx:
            tx.upsert(
                STORES,
                {
                    "store_id": [s.store_id for s in infos],
                    "name": [s.name for s in infos],
                    "city": [s.city for s in infos],
                    "uf": [s.uf for s in infos],
                    "updated_at": [now] * len(infos),
                },
            )
        with self._lock:
            self._cache.update(batch)
        return len(infos)

    def all(self) -> list[StoreInfo]:
        rows = self._store.query("SELECT store_id, name, city, uf FROM stores ORDER BY store_id")
        return [StoreInfo(*(str(v) for v in row)) for row in rows]

    def count(self) -> int:
        return int(self._store.query("SELECT count(*) FROM stores")[0][0])


def demo_stores(n_stores: int = 20, *, seed: int = _DEMO_SEED) -> list[StoreInfo]:
    """The stores the payments generator invents for ``n_stores`` and ``seed`` (LJ-0001...),
    so charges made through the API land beside generated traffic."""
    import random

    from pulso.sources.payments_generator import make_stores

    return [
        StoreInfo(s.store_id, s.name, s.city, s.uf)
        for s in make_stores(n_stores, _DEMO_CITIES, random.Random(seed))
    ]


def read_stores_csv(path: Path) -> list[StoreInfo]:
    """Stores from a CSV with the header ``store_id,name,city,uf``."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError("--stores", f"cannot read {path}: {e.strerror}") from e
    stores: list[StoreInfo] = []
    for line, row in enumerate(rows, start=2):
        try:
            stores.append(StoreInfo(*(str(row.get(c) or "").strip() for c in _CSV_COLUMNS)))
        except ValueError as e:
            raise ConfigError(
                "--stores", f"{path} line {line}: {e} (header: {','.join(_CSV_COLUMNS)})"
            ) from e
    return stores
