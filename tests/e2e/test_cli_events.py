"""``pulso events export|pdf|receipt`` as a user runs them, on a store the real pipeline
filled, with the bad inputs a user types."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pypdf
import pytest
from typer.testing import CliRunner, Result

from pulso.bus import open_bus
from pulso.cli import events
from pulso.domain.events import Event, Topic, encode_event
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.pipeline.factory import build_runner
from pulso.sources.payments_generator import PaymentsConfig, generate_payments
from pulso.store import open_store

CONFIG = PaymentsConfig(start=date(2026, 11, 20), days=2, n_stores=2, n_cities=2, seed=21)
PER_DAY = 60


@pytest.fixture
def filled(tmp_path: Path, settings_factory: Any) -> Iterator[list[Event]]:
    """The embedded store of ``tmp_path/data``, filled by the pipeline; yields the events."""
    by_day: dict[date, list[Event]] = {}
    for event in generate_payments(CONFIG):
        by_day.setdefault(event.occurred_at.astimezone(DISPLAY_ZONE).date(), []).append(event)
    sample = [e for day in sorted(by_day) for e in by_day[day][:PER_DAY]]
    settings = settings_factory(batch_size=100, batch_timeout_ms=20)
    bus, store = open_bus(settings), open_store(settings)
    try:
        bus.publish(Topic.PAYMENTS, [(e.key.encode(), encode_event(e)) for e in sample])
        runner = build_runner(settings, bus, store)
        deadline = time.monotonic() + 60
        try:
            runner.run(stop=lambda s: s.messages >= len(sample) or time.monotonic() > deadline)
        finally:
            runner.close()
    finally:
        store.close()  # the CLI opens the DuckDB file itself
        bus.close()
    yield sample


def run(tmp_path: Path, *args: str) -> Result:
    env = {"PULSO_DATA_DIR": str(tmp_path / "data")}
    return CliRunner().invoke(events.app, list(args), env=env)


def pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_export_writes_a_file_per_event_by_day(tmp_path: Path, filled: list[Event]) -> None:
    out = tmp_path / "eventos"
    result = run(tmp_path, "export", "--out", str(out))

    assert result.exit_code == 0, result.output
    files = sorted(out.rglob("*.json"))
    assert len(files) == len(filled)
    assert f"exported {len(filled):,} events to {out}" in result.output
    assert "masked" in result.output
    assert {f.parent.name for f in files} == {"2026-11-20", "2026-11-21"}
    ids = {json.loads(f.read_bytes())["event_id"] for f in files}
    assert ids == {str(e.event_id) for e in filled}


def test_export_of_one_day_and_store(tmp_path: Path, filled: list[Event]) -> None:
    out = tmp_path / "one"
    result = run(
        tmp_path,
        "export",
        "--out",
        str(out),
        "--from",
        "21/11/2026",
        "--to",
        "2026-11-21",
        "--store",
        "LJ-0001",
        "--with-documents",
    )
    assert result.exit_code == 0, result.output
    store_of = {e.data.charge_id: e.data.store_id for e in filled if e.type.endswith("created")}
    expected = {
        str(e.event_id)
        for e in filled
        if e.occurred_at.astimezone(DISPLAY_ZONE).date() == date(2026, 11, 21)
        and store_of.get(e.data.charge_id) == "LJ-0001"
    }
    files = list(out.rglob("*.json"))
    assert expected and {json.loads(f.read_bytes())["event_id"] for f in files} == expected
    documents = [json.loads(f.read_bytes())["data"].get("payer_document") for f in files]
    assert any(d and d.isdigit() and len(d) in (11, 14) for d in documents)  # kept in clear


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-22", "--to", "2026-11-20"], "is after --to"),
        (["--from", "2026-13-01"], "is not a date"),
        (["--to", "ontem"], "is not a date"),
    ],
)
def test_export_refuses_bad_days(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, "export", "--out", str(tmp_path / "x"), *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_export_into_an_unwritable_place_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    result = run(tmp_path, "export", "--out", str(blocker / "events"))
    assert result.exit_code == 1
    assert "cannot write the events to" in result.output and "--out" in result.output


def test_pdf_of_a_period(tmp_path: Path, filled: list[Event]) -> None:
    out = tmp_path / "eventos.pdf"
    result = run(tmp_path, "pdf", "--from", "2026-11-20", "--to", "2026-11-21", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert f"{len(filled):,} events" in result.output
    text = pdf_text(out)
    assert "Registro de eventos PIX" in text and "Período: 20/11/2026 a 21/11/2026" in text
    assert "Sexta-feira, 20/11/2026" in text and "Sábado, 21/11/2026" in text
    assert all(e.data.charge_id in text for e in filled)
    created = [e.data for e in filled if isinstance(e.data, ChargeCreated)]
    assert not any(c.payer_document and c.payer_document in text for c in created)
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-21", "--to", "2026-11-20"], "is after --to"),
        (["--from", "20-11-2026", "--to", "2026-11-21"], "is not a date"),
        (["--from", "2026-11-20"], "--to"),
    ],
)
def test_pdf_refuses_bad_periods(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, "pdf", *args, "--out", str(tmp_path / "e.pdf"))
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "e.pdf").exists()


def test_pdf_refuses_an_out_it_cannot_write(tmp_path: Path) -> None:
    period = ["--from", "2026-11-20", "--to", "2026-11-20"]
    result = run(tmp_path, "pdf", *period, "--out", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.output
    result = run(tmp_path, "pdf", *period, "--out", str(tmp_path / "missing" / "e.pdf"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_receipt_of_a_paid_charge(tmp_path: Path, filled: list[Event]) -> None:
    created = {e.data.charge_id: e.data for e in filled if isinstance(e.data, ChargeCreated)}
    paid = next(
        e.data
        for e in filled
        if isinstance(e.data, ChargeConfirmed) and e.data.charge_id in created
    )
    out = tmp_path / "recibo.pdf"
    result = run(tmp_path, "receipt", paid.charge_id, "--out", str(out))

    assert result.exit_code == 0, result.output
    text = pdf_text(out)
    assert "Comprovante de pagamento PIX" in text and paid.charge_id in text
    assert paid.end_to_end_id in text
    local = paid.confirmed_at.astimezone(DISPLAY_ZONE)
    assert f"Pago em {local:%d/%m/%Y %H:%M}" in text
    amount = f"{paid.amount_paid:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    assert f"R$ {amount}" in text
    document = created[paid.charge_id].payer_document or ""
    assert document and document not in text


def test_receipt_of_an_unknown_charge_fails_clearly(tmp_path: Path, filled: list[Event]) -> None:
    out = tmp_path / "recibo.pdf"
    result = run(tmp_path, "receipt", "ch_nao_existe", "--out", str(out))
    assert result.exit_code == 1
    assert "no PIX charge with id 'ch_nao_existe'" in result.output
    assert not out.exists()


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in ("export", "pdf", "receipt"):
        result = run(tmp_path, command, "--help")
        assert result.exit_code == 0 and "--out" in result.output
    assert list(tmp_path.iterdir()) == []  # help opens no store and writes nothing
