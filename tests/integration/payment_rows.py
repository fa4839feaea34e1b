"""Hand-built ``payments`` rows for the analytics tests, and a store on either backend
filled with them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pulso.store import Store
from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.tables import PAYMENTS, ColumnBatch

BACKENDS = ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
SAO_PAULO_OFFSET = timedelta(hours=3)  # São Paulo has kept UTC-3 all year since 2019
STATUS_RANK = {"pending": 0, "expired": 1, "failed": 2, "confirmed": 3}

# id, store, city, uf, local time (São Paulo), cents, confirmation seconds, status
LocalRow = tuple[str, str, str, str, datetime, int, float | None, str]


def payment(
    charge_id: str,
    *,
    created_at: datetime,
    store_id: str | None,
    city: str | None,
    amount_cents: int,
    paid_cents: int | None,
    seconds: float | None,
    status: str = "confirmed",
    uf: str | None = None,
) -> dict[str, Any]:
    """One row of ``payments``; ``confirmed_at`` follows from the confirmation seconds."""
    row: dict[str, Any] = dict.fromkeys(PAYMENTS.column_names)
    row.update(
        charge_id=charge_id,
        store_id=store_id,
        city=city,
        uf=uf,
        amount_cents=amount_cents,
        paid_cents=paid_cents,
        status=status,
        status_rank=STATUS_RANK[status],
        created_at=created_at,
        confirmed_at=(
            created_at + timedelta(seconds=seconds or 0) if status == "confirmed" else None
        ),
        confirmation_seconds=seconds,
        updated_at=created_at,
    )
    return row


def local_rows(rows: Iterable[LocalRow]) -> list[dict[str, Any]]:
    """Rows given in São Paulo local time; only confirmed ones are paid."""
    return [
        payment(
            charge_id,
            created_at=(local + SAO_PAULO_OFFSET).replace(tzinfo=UTC),
            store_id=store_id,
            city=city,
            uf=uf,
            amount_cents=cents,
            paid_cents=cents if status == "confirmed" else None,
            seconds=seconds,
            status=status,
        )
        for charge_id, store_id, city, uf, local, cents, seconds, status in rows
    ]


def column_batch(rows: Iterable[Mapping[str, Any]]) -> ColumnBatch:
    batch: ColumnBatch = {name: [] for name in PAYMENTS.column_names}
    for row in rows:
        for name, value in row.items():
            batch[name].append(value)
    return batch


@contextmanager
def filled_store(
    request: pytest.FixtureRequest, folder: Path, rows: Iterable[Mapping[str, Any]]
) -> Iterator[Store]:
    """A migrated store of the backend ``request.param`` names, holding ``rows``."""
    opened: Store
    if request.param == "duckdb":
        opened = DuckDBStore(folder / "pulso.duckdb")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    try:
        opened.migrate()
        with opened.transaction() as tx:
            tx.upsert(PAYMENTS, column_batch(rows))
        yield opened
    finally:
        opened.close()
