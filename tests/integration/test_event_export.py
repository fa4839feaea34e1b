"""PIX events kept by the real pipeline, read back and exported, on DuckDB and PostgreSQL.

``raw_events`` is filled by running the pipeline over generated charges on the local bus, so
what is exported is exactly what the pipeline stores.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pulso.bus import open_bus
from pulso.domain.events import Event, Topic, encode_event, new_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.domain.validators import mask_cnpj, mask_cpf
from pulso.pipeline.factory import build_runner
from pulso.pix.errors import ChargeNotFoundError
from pulso.pix.event_store import (
    EventExportError,
    count_pix_events,
    event_file_path,
    export_events,
    iter_pix_events,
    iter_pix_records,
    prepare_export_dir,
)
from pulso.pix.stores import StoreInfo, StoreRegistry
from pulso.reports.receipt import receipt_for_charge
from pulso.sources.payments_generator import PaymentsConfig, generate_payments
from pulso.store import open_store
from pulso.store.protocol import Store

CONFIG = PaymentsConfig(start=date(2026, 11, 20), days=2, n_stores=2, n_cities=2, seed=11)
PER_DAY = 120
TIE_AT = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)  # 15:30 in Brasília, on the first day
TIE_CPF = "52998224725"


@functools.cache
def sample() -> tuple[Event, ...]:
    """The first charges' events of each generated day, plus five charges created in the
    same microsecond (so pages must break ties by event id)."""
    by_day: dict[date, list[Event]] = {}
    for event in generate_payments(CONFIG):
        by_day.setdefault(event.occurred_at.astimezone(DISPLAY_ZONE).date(), []).append(event)
    events = [e for day in sorted(by_day) for e in by_day[day][:PER_DAY]]
    return (*events, *tied_events())


def tied_events() -> list[Event]:
    events = []
    for i in range(5):
        charge_id = f"tie_{i}"
        created = ChargeCreated(
            charge_id=charge_id,
            txid=f"TIE{i}",
            store_id="LJ-0001",
            city="Recife",
            uf="PE",
            amount=Decimal("12.34") + i,
            created_at=TIE_AT,
            expires_at=TIE_AT + timedelta(minutes=10),
            payer_document=TIE_CPF,
        )
        events.append(new_event(created, source="test", key=charge_id, occurred_at=TIE_AT))
    return events


@pytest.fixture(
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, settings_factory: Any) -> Iterator[Store]:
    """A store whose raw_events the real pipeline filled from ``sample()``."""
    overrides: dict[str, Any] = {"batch_size": 100, "batch_timeout_ms": 20}
    if request.param == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    settings = settings_factory(**overrides)
    bus, opened = open_bus(settings), open_store(settings)
    try:
        bus.publish(Topic.PAYMENTS, [(e.key.encode(), encode_event(e)) for e in sample()])
        runner = build_runner(settings, bus, opened)
        deadline = time.monotonic() + 60
        try:
            runner.run(stop=lambda s: s.messages >= len(sample()) or time.monotonic() > deadline)
        finally:
            runner.close()
        yield opened
    finally:
        opened.close()
        bus.close()


def stored_payloads(store: Store) -> dict[uuid.UUID, bytes]:
    rows = store.query("SELECT event_id, payload FROM raw_events")
    return {uuid.UUID(str(event_id)): bytes(payload) for event_id, payload in rows}


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=DISPLAY_ZONE)


# --------------------------------------------------------------------------- reading


def test_pages_return_every_event_once_in_time_order(store: Store) -> None:
    whole = [e.event_id for e in iter_pix_events(store, start=None, end=None)]
    paged = list(iter_pix_records(store, batch=2))  # tiny pages: the tie spans several

    assert [r.event_id for r in paged] == whole
    assert sorted(whole) == sorted(e.event_id for e in sample())
    keys = [(r.occurred_at, r.event_id) for r in paged]
    assert keys == sorted(keys)
    assert sum(r.occurred_at == TIE_AT for r in paged) == 5
    assert count_pix_events(store) == len(sample())


def test_period_and_store_filters_match_the_events(store: Store) -> None:
    second_day = CONFIG.start + timedelta(days=1)
    start, end = local_midnight(second_day), local_midnight(second_day + timedelta(days=1))
    store_of = {e.data.charge_id: e.data.store_id for e in sample() if e.type.endswith("created")}
    expected = {
        e.event_id
        for e in sample()
        if start <= e.occurred_at < end and store_of.get(e.data.charge_id) == "LJ-0002"
    }

    found = {e.event_id for e in iter_pix_events(store, start=start, end=end, store_id="LJ-0002")}

    assert expected and found == expected
    assert count_pix_events(store, start=start, end=end, store_id="LJ-0002") == len(expected)
    assert not list(iter_pix_events(store, start=start, end=end, store_id="LJ-9999"))


def test_a_reversed_or_naive_period_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="after"):
        list(iter_pix_records(store, start=TIE_AT, end=TIE_AT - timedelta(seconds=1)))
    with pytest.raises(ValueError, match="timezone"):
        list(iter_pix_records(store, start=datetime(2026, 11, 20)))
    with pytest.raises(ValueError, match="batch"):
        list(iter_pix_records(store, batch=0))


# --------------------------------------------------------------------------- export


def test_export_writes_one_file_per_event_equal_to_the_stored_envelope(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "events"
    written = export_events(iter_pix_records(store), out, mask_documents=False)

    files = sorted(out.rglob("*.json"))
    stored = stored_payloads(store)
    assert written == len(files) == len(stored) == len(sample())
    by_id = {}
    for path in files:
        stamp, event_type, event_id = path.stem.split("_", 2)
        envelope = json.loads(path.read_bytes())
        by_id[uuid.UUID(event_id)] = envelope
        local = datetime.fromisoformat(envelope["occurred_at"]).astimezone(DISPLAY_ZONE)
        assert stamp == local.strftime("%Y%m%dT%H%M%S") and event_type == envelope["type"]
        assert path.parent.name == local.strftime("%Y-%m-%d")
        assert path.read_text().startswith('{\n  "event_id"')  # indented, fields in stored order
    assert by_id == {event_id: json.loads(payload) for event_id, payload in stored.items()}
    assert {p.parent.name for p in files} == {"2026-11-20", "2026-11-21"}


def test_export_masks_payer_documents_unless_asked(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "masked"
    export_events(iter_pix_records(store), out)

    stored = stored_payloads(store)
    documents = {e.data.payer_document for e in sample() if e.type.endswith("created")} - {None}
    for path in out.rglob("*.json"):
        text = path.read_text()
        assert not any(doc in text for doc in documents), path.name
        envelope = json.loads(text)
        original = json.loads(stored[uuid.UUID(envelope["event_id"])])
        document = original["data"].get("payer_document")
        if document:
            masked = envelope["data"].pop("payer_document")
            assert masked in {mask_cpf(document), mask_cnpj(document)}
            del original["data"]["payer_document"]
        assert envelope == original  # nothing else changed, amounts included


def test_exporting_again_replaces_files_and_never_duplicates(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "again"
    export_events(iter_pix_records(store), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    export_events(iter_pix_records(store), out)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and len(after) == len(sample())


def test_progress_counts_every_file(store: Store, tmp_path: Path) -> None:
    reported: list[int] = []
    written = export_events(iter_pix_records(store), tmp_path / "p", progress=reported.append)
    assert sum(reported) == written == len(sample())


def test_an_unwritable_folder_is_refused_before_reading(store: Store, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(EventExportError, match="a-file") as caught:
        prepare_export_dir(blocker / "events")
    assert "--out" in str(caught.value)
    records = list(iter_pix_records(store))
    taken = event_file_path(tmp_path / "out", records[0]).parent
    taken.parent.mkdir(parents=True)
    taken.write_text("a file where the day's folder goes")
    with pytest.raises(EventExportError, match=re.escape(taken.name)):
        export_events(records, tmp_path / "out")


# --------------------------------------------------------------------------- receipts


def test_receipt_reads_the_charge_as_the_pipeline_stored_it(store: Store) -> None:
    created = {e.data.charge_id: e.data for e in sample() if isinstance(e.data, ChargeCreated)}
    confirmed = next(
        e.data
        for e in sample()
        if isinstance(e.data, ChargeConfirmed) and e.data.charge_id in created
    )
    charge = created[confirmed.charge_id]
    StoreRegistry(store).register([StoreInfo(charge.store_id, "Mercado Boa Vista", "X", "PE")])

    receipt = receipt_for_charge(store, confirmed.charge_id)

    assert receipt.status == "confirmed" and receipt.is_paid
    assert receipt.amount == confirmed.amount_paid
    assert receipt.store_name == "Mercado Boa Vista" and receipt.city == charge.city
    assert receipt.end_to_end_id == confirmed.end_to_end_id != ""
    assert receipt.confirmed_at == confirmed.confirmed_at
    assert receipt.confirmation_seconds == pytest.approx(
        (confirmed.confirmed_at - charge.created_at).total_seconds()
    )
    document = charge.payer_document or ""
    assert receipt.payer_masked and document and document not in receipt.payer_masked


def test_receipt_of_a_pending_charge_and_of_an_unknown_one(store: Store) -> None:
    receipt = receipt_for_charge(store, "tie_3")
    assert receipt.status == "pending" and not receipt.is_paid
    assert receipt.amount == Decimal("15.34") and receipt.store_name == "LJ-0001"
    assert receipt.payer_masked == mask_cpf(TIE_CPF) and receipt.end_to_end_id is None
    with pytest.raises(ChargeNotFoundError, match="no-such-charge"):
        receipt_for_charge(store, "no-such-charge")
