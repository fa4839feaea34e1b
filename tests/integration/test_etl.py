"""The sales ETL against real files and both real stores (DuckDB file, PostgreSQL): good rows
load once, bad rows go to the rejects file with line and reason, every run is recorded, and a
failure leaves nothing behind. The first section holds the record model and the vectorised
checks to the same verdicts, without a store."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pulso.bus import open_bus
from pulso.config import Settings
from pulso.domain.events import Topic, encode_event, new_event
from pulso.domain.files import FileDetected
from pulso.etl import EtlOptions, RunRecord, RunStatus, SourceError, list_runs, run_file
from pulso.etl.check import check_block
from pulso.etl.consume import FileConsumer
from pulso.etl.extract import read_blocks
from pulso.etl.layout import HEADER, SOURCE_COLUMNS, Reason
from pulso.etl.normalise import clean_name, clean_text
from pulso.etl.record import SaleRow, check_row
from pulso.etl.rules import file_day, known_categories, sale_rules
from pulso.etl.source import HashingReader
from pulso.etl.transform import clean_block
from pulso.etl.validate import CHECKS, find_reasons
from pulso.sources.sales_generator import SalesConfig, sales_csv_bytes
from pulso.store import Store
from pulso.store.duckdb import DuckDBStore
from pulso.store.postgres import PostgresStore
from pulso.store.protocol import DuplicateKeyError
from pulso.store.schema import MIGRATIONS, apply_migrations
from pulso.store.tables import SALES

BACKENDS = ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
DAY = "2026-11-20"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
RULES = sale_rules(f"sales-{DAY}.csv", now=NOW, categories=known_categories())
GOOD = {
    "sale_id": "V-1",
    "sold_at": f"{DAY}T14:03:22-03:00",
    "store_id": "LJ-0001",
    "seller": "Maria da Silva",
    "product": "Arroz Tipo 1 5 kg",
    "category": "Alimentos",
    "quantity": "3",
    "unit_price": "27.90",
    "total": "83.70",
    "payment_method": "pix",
    "city": "São Paulo",
    "uf": "SP",
}
# (changes to a good row, the reason it must be refused for)
BAD_ROWS: list[tuple[dict[str, str], str]] = [
    ({"total": "83.71"}, Reason.INVALID_TOTAL),
    ({"total": "837.00"}, Reason.INVALID_TOTAL),
    ({"sold_at": f"{DAY}T14:03:22"}, Reason.INVALID_SOLD_AT),  # no offset
    ({"sold_at": f"{DAY[8:]}/11/2026 14:03:22"}, Reason.INVALID_SOLD_AT),
    ({"sold_at": "2026-11-32T14:03:22-03:00"}, Reason.INVALID_SOLD_AT),
    ({"sold_at": "2026-11-20T25:03:22-03:00"}, Reason.INVALID_SOLD_AT),
    ({"sold_at": "2026-11-20T14:03:22-00:60"}, Reason.INVALID_SOLD_AT),
    ({"sold_at": "2026-11-20T14:03:60-03:00"}, Reason.INVALID_SOLD_AT),
    ({"sold_at": "2026-11-29T14:03:22-03:00"}, Reason.SOLD_AT_OUT_OF_RANGE),
    ({"sold_at": "1999-12-31T23:59:59Z"}, Reason.SOLD_AT_OUT_OF_RANGE),
    ({"sold_at": ""}, Reason.MISSING_VALUE),
    ({"category": "Diversos"}, Reason.UNKNOWN_CATEGORY),
    ({"category": " "}, Reason.MISSING_VALUE),
    ({"quantity": "0", "total": "0.00"}, Reason.INVALID_QUANTITY),
    ({"quantity": "-3", "total": "-83.70"}, Reason.INVALID_QUANTITY),
    ({"quantity": "1.5"}, Reason.INVALID_QUANTITY),
    ({"quantity": "100001"}, Reason.INVALID_QUANTITY),
    ({"unit_price": "27,90"}, Reason.INVALID_AMOUNT),
    ({"unit_price": "27.905"}, Reason.INVALID_AMOUNT),
    ({"unit_price": "0.00", "total": "0.00"}, Reason.INVALID_AMOUNT),
    ({"unit_price": "1e3"}, Reason.INVALID_AMOUNT),
    ({"total": "R$ 83,70"}, Reason.INVALID_AMOUNT),
    ({"total": ""}, Reason.MISSING_VALUE),
    ({"uf": "XX"}, Reason.INVALID_UF),
    ({"uf": "BR"}, Reason.INVALID_UF),
    ({"uf": ""}, Reason.MISSING_VALUE),
    ({"sale_id": ""}, Reason.MISSING_VALUE),
    ({"sale_id": "x" * 65}, Reason.TOO_LONG),
    ({"store_id": "  "}, Reason.MISSING_VALUE),
    ({"seller": "a" * 121}, Reason.TOO_LONG),
    ({"product": ""}, Reason.MISSING_VALUE),
    ({"payment_method": ""}, Reason.MISSING_VALUE),
    ({"city": ""}, Reason.MISSING_VALUE),
    ({"sale_id": "", "uf": "XX"}, Reason.MISSING_VALUE),  # the first broken rule wins
]


def row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def line_of(values: dict[str, str]) -> str:
    return ",".join(_field(values[name]) for name in SOURCE_COLUMNS)


def _field(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def write_file(
    path: Path, rows: list[dict[str, str]], *, extra_lines: dict[int, str] | None = None
) -> Path:
    lines = [line_of(r) for r in rows]
    for position, text in sorted((extra_lines or {}).items()):
        lines.insert(position, text)
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- the record model and the vectorised checks give the same verdicts ------------------


def _bulk_verdicts(rows: list[dict[str, str]], *, dictionary: bool) -> list[str | None]:
    columns = {}
    for name in SOURCE_COLUMNS:
        values = pa.array([r[name] for r in rows], pa.string())
        columns[name] = values.dictionary_encode() if dictionary else values
    reasons = find_reasons(clean_block(pa.record_batch(columns), RULES.categories), RULES)
    return [None if i is None else CHECKS[i].reason for i in reasons.to_pylist()]


def _model_verdicts(rows: list[dict[str, str]]) -> list[str | None]:
    verdicts = [check_row(r, RULES) for r in rows]
    return [None if isinstance(v, SaleRow) else v[0] for v in verdicts]


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_model_and_bulk_checks_refuse_each_bad_row_for_the_same_reason(dictionary: bool) -> None:
    rows = [row(**changes) for changes, _ in BAD_ROWS] + [row()]
    expected = [reason for _, reason in BAD_ROWS] + [None]
    assert _model_verdicts(rows) == expected
    assert _bulk_verdicts(rows, dictionary=dictionary) == expected


def test_model_and_bulk_checks_agree_on_random_rows() -> None:
    rng = random.Random(20261120)
    junk = [
        "",
        " ",
        "0",
        "-1",
        "1.5",
        "1.505",
        "x",
        "ZZ",
        "sp",
        "1e2",
        "  SP ",
        "\u00a0Moda",
        "R$ 1,00",
        "2026-11-20T10:00:00Z",
        "2026-11-20 10:00:00-03:00",
        "2026-02-30T10:00:00-03:00",
        "alimentos",
        "ALIMENTOS ",
        "99999999999999.99",
        "999999999999.99",
        "100000",
        "12",
        "2026-11-25T10:00:00-03:00",
        "2026-11-20T10:00:00+23:59",
        "2026-11-20T10:00:00.123456-00:30",
        "x" * 130,
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "\uff11.00",  # FULLWIDTH DIGIT ONE
    ]
    rows = []
    for _ in range(3000):
        changes = {name: rng.choice(junk) for name in rng.sample(SOURCE_COLUMNS, rng.randint(0, 3))}
        rows.append(row(**changes))
    model = _model_verdicts(rows)
    assert model == _bulk_verdicts(rows, dictionary=False)
    assert model == _bulk_verdicts(rows, dictionary=True)
    assert model.count(None) > 100
    assert set(model) == {None, *(c.reason for c in CHECKS)}  # every verdict is met


def test_each_rejects_reason_is_the_whole_models_wording() -> None:
    """A refused row's reason comes from the model's validators for the field the bulk checks
    named (the whole row only for total = quantity × unit price): word for word what
    validating the whole row says."""
    rng = random.Random(5)
    junk = ["", " ", "-1", "1.505", "ZZ", "Diversos", "27,90", "x" * 130, "2026-11-29T10:00:00Z"]
    rows = [row(**changes) for changes, _ in BAD_ROWS]
    for _ in range(500):
        changes = {name: rng.choice(junk) for name in rng.sample(SOURCE_COLUMNS, rng.randint(1, 2))}
        rows.append(row(**changes))
    text = HEADER + "\n" + "\n".join(line_of(r) for r in rows) + "\n"
    (block,) = read_blocks(io.BytesIO(text.encode()), "test.csv")

    checked = check_block(block, RULES)

    expected = {}
    for line, values in enumerate(rows, start=2):
        verdict = check_row(values, RULES)
        if not isinstance(verdict, SaleRow):
            expected[line] = f"{verdict[0]}: {verdict[1]}"
    assert {r.line: r.reason for r in checked.rejects} == expected
    assert len(expected) > 400


def test_bulk_values_are_the_models_values() -> None:
    rows = [
        row(
            seller="  MARIA   DAS DORES E SILVA ",
            city="rio de janeiro",
            uf=" rj",
            category="alimentos",
        ),
        row(
            sale_id=" V-2 ",
            seller="McDonald da Silva",
            product="  Feijão\u00a0 Carioca ",
            quantity="12",
            unit_price="0.5",
            total="6.0",
            sold_at="2026-11-20 23:59:59.5+00:00",
        ),
    ]
    batch = pa.record_batch({n: pa.array([r[n] for r in rows]) for n in SOURCE_COLUMNS})
    blocks = [b for b in read_blocks(_stream(rows), "mem", block_size=1 << 16)]
    checked = check_block(blocks[0], RULES)
    assert checked.rejects == [] and batch.num_rows == checked.good.num_rows == 2
    for got, source in zip(checked.good.to_pylist(), rows, strict=True):
        model = SaleRow.model_validate(source, context=RULES)
        assert got["sale_id"] == model.sale_id and got["seller"] == model.seller
        assert got["city"] == model.city and got["uf"] == model.uf
        assert got["product"] == model.product and got["category"] == model.category
        assert got["sold_at"] == model.sold_at and got["quantity"] == model.quantity
        assert got["unit_price_cents"] == model.unit_price_cents
        assert got["total_cents"] == model.total_cents
    first, second = checked.good.to_pylist()
    assert first["seller"] == "Maria das Dores e Silva" and first["city"] == "Rio de Janeiro"
    assert first["uf"] == "RJ" and first["category"] == "Alimentos"
    assert second["seller"] == "McDonald da Silva" and second["product"] == "Feijão Carioca"
    assert (second["unit_price_cents"], second["total_cents"]) == (50, 600)


def _stream(rows: list[dict[str, str]]) -> HashingReader:
    text = HEADER + "\n" + "\n".join(line_of(r) for r in rows) + "\n"
    return HashingReader(io.BytesIO(text.encode()))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("MARIA DA SILVA", "Maria da Silva"),
        ("joão dos santos e souza", "João dos Santos e Souza"),
        ("McDonald", "McDonald"),
        ("São João del-Rei", "São João del-Rei"),
        ("  SÃO\tPAULO  ", "São Paulo"),
    ],
)
def test_names_in_one_case_are_title_cased_with_small_particles(value: str, expected: str) -> None:
    assert clean_name(value) == expected


def test_free_text_keeps_its_case_and_loses_extra_whitespace() -> None:
    assert clean_text("  Óleo  de\u00a0Soja ") == "Óleo de Soja"


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("sales-2026-11-20.csv", date(2026, 11, 20)),
        ("vendas_20261120.csv.gz", date(2026, 11, 20)),
        ("sales.csv", None),
        ("sales-2026-02-30.csv", None),
        ("lote-120261120.csv", None),
    ],
)
def test_the_files_day_comes_from_its_name(name: str, day: date | None) -> None:
    assert file_day(name) == day


# --- the ETL on both stores ---------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "duckdb":
        opened = DuckDBStore(tmp_path / "store" / "pulso.duckdb")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def sales_rows(store: Store) -> dict[str, tuple[Any, ...]]:
    rows = store.query(
        "SELECT sale_id, sold_at, store_id, seller, product, category, quantity,"
        " unit_price_cents, total_cents, payment_method, city, uf, source_file FROM sales"
    )
    return {r[0]: r[1:] for r in rows}


def run(store: Store, path: Path | str, settings: Settings, **options: Any) -> RunRecord:
    return run_file(store, path, settings, options=EtlOptions(clock=lambda: NOW, **options))


def test_good_rows_load_and_each_bad_row_is_refused_with_its_line_and_reason(
    store: Store, settings: Settings, drop: Path
) -> None:
    good = [row(sale_id=f"G-{i}") for i in range(5)]
    bad = [row(**{"sale_id": f"B-{i}", **changes}) for i, (changes, _) in enumerate(BAD_ROWS)]
    rows = good[:2] + bad + good[2:]
    path = write_file(drop / f"sales-{DAY}.csv", rows, extra_lines={3: "broken,line", 7: ""})

    record = run(store, path, settings)

    assert record.status == RunStatus.LOADED
    assert (record.rows_read, record.rows_loaded) == (len(rows) + 1, 5)
    assert record.rows_rejected == len(BAD_ROWS) + 1
    assert set(sales_rows(store)) == {f"G-{i}" for i in range(5)}
    rejects_path = drop / f"sales-{DAY}.rejects.csv"
    assert record.rejects_url == rejects_path.as_uri()
    rejects = read_rejects(rejects_path)
    by_line = {int(r["line"]): r for r in rejects}
    # Line 1 is the header, 2-3 good rows, 5 "broken,line", 9 the empty line (skipped).
    assert by_line[5]["reason"].startswith(
        f"{Reason.WRONG_FIELD_COUNT}: expected 12 fields, found 2"
    )
    assert by_line[5]["raw"] == "broken,line"
    bad_lines = [line for line in range(4, len(rows) + 4) if line not in (5, 9)][: len(bad)]
    for line, (changes, reason), values in zip(bad_lines, BAD_ROWS, bad, strict=True):
        refused = by_line[line]
        assert refused["reason"].split(":")[0] == reason, (line, changes, refused["reason"])
        assert refused["sale_id"] == values["sale_id"]
        assert [refused[n] for n in SOURCE_COLUMNS] == [values[n] for n in SOURCE_COLUMNS]
    assert "83.71" in by_line[bad_lines[0]]["reason"]  # the model words the detail


def test_money_is_exact_in_centavos(store: Store, settings: Settings, drop: Path) -> None:
    cases = [
        ("1", "0.10", "0.10"),
        ("3", "0.10", "0.30"),
        ("7", "0.07", "0.49"),
        ("100000", "9999999.99", "999999999000.00"),
        ("1", "999999999999.99", "999999999999.99"),
        ("3", "33.33", "99.99"),
        ("2", "0.5", "1.00"),
        ("12", "19", "228"),
    ]
    rows = [
        row(sale_id=f"M-{i}", quantity=q, unit_price=u, total=t)
        for i, (q, u, t) in enumerate(cases)
    ]
    record = run(store, write_file(drop / f"sales-{DAY}.csv", rows), settings)
    assert record.rows_loaded == len(cases), record
    stored = sales_rows(store)
    for i, (quantity, unit, total) in enumerate(cases):
        values = stored[f"M-{i}"]
        assert values[5] == int(quantity)
        assert values[6] == int(Decimal(unit) * 100) and values[7] == int(Decimal(total) * 100)
    total_cents = store.query("SELECT sum(total_cents) FROM sales")[0][0]
    assert int(total_cents) == sum(int(Decimal(t) * 100) for _, _, t in cases)


def test_the_same_bytes_load_once_whatever_the_files_name(
    store: Store, settings: Settings, drop: Path
) -> None:
    path = write_file(drop / f"sales-{DAY}.csv", [row(sale_id=f"R-{i}") for i in range(20)])
    first = run(store, path, settings)
    again = run(store, path, settings)  # same name and size: hashed before loading
    copy = drop / f"copy-of-sales-{DAY}.csv"
    copy.write_bytes(path.read_bytes())
    renamed = run(store, copy, settings)  # another name: found out when the hash is complete

    assert first.status == RunStatus.LOADED and first.rows_loaded == 20
    for repeat in (again, renamed):
        assert repeat.status == RunStatus.ALREADY_LOADED
        assert repeat.checksum == first.checksum and repeat.rows_loaded == 0
        assert first.run_id in (repeat.error or "")
    assert len(sales_rows(store)) == 20
    assert {r[11] for r in sales_rows(store).values()} == {path.as_uri()}


def test_two_files_with_different_bytes_both_load(
    store: Store, settings: Settings, drop: Path
) -> None:
    a = run(
        store,
        write_file(drop / "sales-2026-11-20.csv", [row(sale_id=f"A-{i}") for i in range(3)]),
        settings,
    )
    b = run(
        store,
        write_file(
            drop / "sales-2026-11-21.csv",
            [row(sale_id=f"B-{i}", sold_at="2026-11-21T09:00:00-03:00") for i in range(4)],
        ),
        settings,
    )
    assert (a.rows_loaded, b.rows_loaded) == (3, 4) and a.checksum != b.checksum
    sources = {r[11] for r in sales_rows(store).values()}
    assert sources == {
        (drop / "sales-2026-11-20.csv").as_uri(),
        (drop / "sales-2026-11-21.csv").as_uri(),
    }


def test_sale_ids_stored_already_are_counted_not_loaded_twice(
    store: Store, settings: Settings, drop: Path
) -> None:
    run(
        store,
        write_file(drop / f"first-{DAY}.csv", [row(sale_id=f"S-{i}") for i in range(5)]),
        settings,
    )
    overlapping = [row(sale_id=f"S-{i}", seller="Outra Pessoa") for i in range(3, 8)]
    overlapping.append(row(sale_id="S-7", seller="Repetida"))  # repeated in the file itself
    record = run(store, write_file(drop / f"second-{DAY}.csv", overlapping), settings)

    assert record.status == RunStatus.LOADED
    assert (record.rows_read, record.rows_loaded, record.rows_duplicate) == (6, 3, 3)
    stored = sales_rows(store)
    assert set(stored) == {f"S-{i}" for i in range(8)}
    assert stored["S-3"][2] == "Maria da Silva"  # the first load's row is left alone


def test_a_failure_mid_load_stores_nothing(store: Store, settings: Settings, drop: Path) -> None:
    data, stats = sales_csv_bytes(SalesConfig(day=date(2026, 11, 20), rows=3000, bad_rate=0.05))
    path = drop / f"sales-{DAY}.csv"
    path.write_bytes(data)
    blocks: list[int] = []

    def crash(progress: Any) -> None:
        blocks.append(progress.rows_read)
        if len(blocks) == 3:
            raise RuntimeError("the machine went down")

    with pytest.raises(RuntimeError, match="went down"):
        run_file(store, path, settings, options=EtlOptions(block_size=16 << 10), on_progress=crash)

    assert store.query("SELECT count(*) FROM sales") == [(0,)]
    assert not (drop / f"sales-{DAY}.rejects.csv").exists()
    [failed] = list_runs(store)
    assert failed.status == RunStatus.FAILED and failed.rows_loaded == 0
    assert "went down" in (failed.error or "") and failed.rows_read == blocks[-1]
    # and the file loads whole afterwards
    record = run(store, path, settings)
    assert record.rows_loaded == stats.good_rows


def test_a_file_larger_than_a_block_streams_with_exact_lines_and_sums(
    store: Store, settings: Settings, drop: Path
) -> None:
    data, stats = sales_csv_bytes(SalesConfig(day=date(2026, 11, 20), rows=20_000, bad_rate=0.03))
    path = drop / "sales-2026-11-20.csv"
    path.write_bytes(data)
    progress: list[int] = []

    record = run_file(
        store,
        path,
        settings,
        options=EtlOptions(block_size=64 << 10, clock=lambda: NOW),
        on_progress=lambda p: progress.append(p.rows_read),
    )

    assert len(progress) > 20  # about 2.8 MB in 64 KiB blocks
    assert record.rows_read == 20_000 and record.rows_loaded == stats.good_rows
    assert record.rows_rejected == stats.bad_rows
    rejects = read_rejects(drop / "sales-2026-11-20.rejects.csv")
    text_lines = data.decode().split("\n")
    assert {int(r["line"]): r["reason"].split(":")[0] for r in rejects} == {
        line: _expected_reason(kind, text_lines[line - 1]) for line, kind in stats.bad_lines.items()
    }
    total = store.query("SELECT count(*), sum(total_cents) FROM sales")[0]
    assert (total[0], int(total[1])) == (stats.good_rows, stats.good_total_cents)


_EXPECTED_REASON = {
    "wrong_total": Reason.INVALID_TOTAL,
    "negative_quantity": Reason.INVALID_QUANTITY,
    "bad_uf": Reason.INVALID_UF,
    "bad_date": Reason.INVALID_SOLD_AT,
    "unknown_category": Reason.UNKNOWN_CATEGORY,
    "garbage": Reason.WRONG_FIELD_COUNT,
}


def _expected_reason(kind: str, line: str) -> str:
    """The generator's bad dates include an empty one: refused as a missing value."""
    if kind == "bad_date" and line.split(",")[1] == "":
        return Reason.MISSING_VALUE
    return _EXPECTED_REASON[kind]


def test_a_gzip_file_loads_and_is_hashed_as_stored(
    store: Store, settings: Settings, drop: Path
) -> None:
    plain = write_file(drop / "plain.csv", [row(sale_id=f"Z-{i}") for i in range(10)])
    packed = drop / f"sales-{DAY}.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    record = run(store, packed, settings)
    assert record.rows_loaded == 10
    assert record.checksum == hashlib.sha256(packed.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"id,when,amount\n1,2,3\n", "the header is 'id,when,amount'"),
        (
            (
                HEADER
                + "\nV-1,2026-11-20T10:00:00-03:00,LJ,Jos\xe9,P,Alimentos,1,1.00,1.00,pix,Rio,RJ\n"
            ).encode("latin-1"),
            "not UTF-8",
        ),
        (b"", "empty"),
    ],
    ids=["missing", "wrong-header", "latin-1", "empty"],
)
def test_a_file_that_cannot_be_read_fails_and_is_recorded(
    store: Store, settings: Settings, drop: Path, content: bytes | None, problem: str
) -> None:
    path = drop / f"sales-{DAY}.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=problem):
        run(store, path, settings)
    [failed] = list_runs(store)
    assert failed.status == RunStatus.FAILED and problem in (failed.error or "")
    assert store.query("SELECT count(*) FROM sales") == [(0,)]


def test_runs_are_listed_newest_first_with_their_counts(
    store: Store, settings: Settings, drop: Path
) -> None:
    path = write_file(drop / f"sales-{DAY}.csv", [row(sale_id="L-1"), row(sale_id="L-2", uf="XX")])
    loaded = run(store, path, settings)
    repeat = run(store, path, settings)
    with pytest.raises(SourceError):
        run(store, drop / "missing.csv", settings)
    runs = list_runs(store, limit=10)
    assert [r.status for r in runs] == [
        RunStatus.FAILED,
        RunStatus.ALREADY_LOADED,
        RunStatus.LOADED,
    ]
    stored = runs[2]
    assert stored.run_id == loaded.run_id
    assert (stored.rows_read, stored.rows_loaded, stored.rows_rejected) == (2, 1, 1)
    assert stored.size_bytes == path.stat().st_size and stored.checksum == repeat.checksum
    assert stored.finished_at >= stored.started_at and stored.duration_ms >= 0
    assert list_runs(store, limit=1) == runs[:1]


def test_a_rejects_file_is_never_loaded(store: Store, settings: Settings, drop: Path) -> None:
    path = write_file(drop / f"sales-{DAY}.rejects.csv", [row()])
    with pytest.raises(SourceError, match="rejects file"):
        run(store, path, settings)


# --- the store's bulk paths and the v3 migration, on both stores --------------------------


def _sales_arrow(ids: list[str], *, naive: bool = False) -> pa.Table:
    n = len(ids)
    at = pa.array(
        [datetime(2026, 11, 20, 12, tzinfo=UTC)] * n,
        pa.timestamp("us", tz=None if naive else "UTC"),
    )
    return pa.table(
        {
            "sale_id": ids,
            "sold_at": at,
            "store_id": pa.array(["LJ"] * n).dictionary_encode(),
            "quantity": pa.array([2] * n, pa.int64()),
            "total_cents": pa.array([199] * n, pa.int64()),
        }
    )


def test_append_arrow_refuses_a_stored_key_and_insert_new_arrow_skips_it(store: Store) -> None:
    with store.transaction() as tx:
        tx.append_arrow(SALES, _sales_arrow(["a", "b"]))
    with pytest.raises(DuplicateKeyError), store.transaction() as tx:
        tx.append_arrow(SALES, _sales_arrow(["c", "a"]))
    with pytest.raises(DuplicateKeyError), store.transaction() as tx:
        tx.append_arrow(SALES, _sales_arrow(["d", "d"]))
    with store.transaction() as tx:
        assert tx.insert_new_arrow(SALES, _sales_arrow(["b", "c", "c", "e"])) == 2
    rows = store.query(
        "SELECT sale_id, store_id, quantity, total_cents, sold_at FROM sales ORDER BY 1"
    )
    assert [r[:4] for r in rows] == [(s, "LJ", 2, 199) for s in "abce"]
    assert rows[0][4] == datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_arrow_batches_with_naive_times_or_unknown_columns_are_refused(store: Store) -> None:
    from pulso.errors import StoreError

    with pytest.raises(StoreError, match="time zone"), store.transaction() as tx:
        tx.append_arrow(SALES, _sales_arrow(["a"], naive=True))
    with pytest.raises(StoreError, match="no column"), store.transaction() as tx:
        tx.insert_new_arrow(SALES, _sales_arrow(["a"]).append_column("nope", pa.array([1])))
    assert store.query("SELECT count(*) FROM sales") == [(0,)]


@pytest.mark.parametrize("kind", BACKENDS)
def test_version_3_adds_etl_runs_to_a_version_2_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "duckdb":
        fresh: Store = DuckDBStore(tmp_path / "v2.duckdb")
    else:
        fresh = PostgresStore(request.getfixturevalue("postgres_url"))
    try:
        assert apply_migrations(fresh, MIGRATIONS[:2]) == [1, 2]
        applied = fresh.migrate()  # 3, then whatever later versions other features add
        assert applied[0] == 3
        assert applied == sorted(applied)
        assert fresh.query("SELECT count(*) FROM etl_runs") == [(0,)]
        assert fresh.query("SELECT max(version) FROM schema_migrations") == [(applied[-1],)]
    finally:
        fresh.close()


# --- the consumer of file.detected events, and S3 -----------------------------------------


def _detected(url: str, dataset: str = "sales") -> bytes:
    payload = FileDetected(url=url, size=0, etag="e", modified_at=NOW, dataset=dataset)
    return encode_event(new_event(payload, source="test", key=url, occurred_at=NOW))


def test_the_consumer_loads_each_announced_file_once_and_commits(
    settings_factory: Callable[..., Settings], tmp_path: Path, drop: Path
) -> None:
    settings = settings_factory()
    bus = open_bus(settings)
    store = DuckDBStore(tmp_path / "consumer.duckdb")
    store.migrate()
    try:
        good = write_file(drop / "sales-2026-11-20.csv", [row(sale_id=f"C-{i}") for i in range(4)])
        bus.publish(
            Topic.FILES,
            [
                (b"k", _detected(good.as_uri())),
                (b"k", _detected(good.as_uri())),  # announced twice
                (b"k", _detected((drop / "gone.csv").as_uri())),
                (b"k", _detected(good.as_uri(), dataset="orders")),
                (b"k", b"{not json"),
            ],
        )
        consumer = FileConsumer(bus, store, settings, options=EtlOptions(clock=lambda: NOW))
        stats = consumer.run(stop_when_idle=True)
        assert stats.events == 5 and stats.skipped == 1 and stats.dead_letters == 1
        assert stats.runs == {"loaded": 1, "already_loaded": 1, "failed": 1}
        assert store.query("SELECT count(*) FROM sales") == [(4,)]
        assert store.query("SELECT reason FROM deadletter") == [("bad_json",)]
        again = FileConsumer(bus, store, settings).run(stop_when_idle=True)
        assert again.events == 0  # every offset was committed
    finally:
        store.close()
        bus.close()


def test_a_file_in_s3_loads_and_its_rejects_land_beside_it(
    moto_endpoint: str,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from pulso.buckets import open_bucket
    from pulso.buckets import s3 as s3_backend

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_factory(
        s3_endpoint_url=moto_endpoint,
        s3_access_key_id="AKIATESTTESTTEST",
        s3_secret_access_key="moto-secret-key-1234567890",
    )
    name = f"pulso-{uuid.uuid4().hex[:12]}"
    client = s3_backend.s3_client(settings)
    client.create_bucket(Bucket=name)
    client.close()
    local = write_file(tmp_path / "x.csv", [row(sale_id="S3-1"), row(sale_id="S3-2", uf="XX")])
    bucket = open_bucket(f"s3://{name}/daily", settings)
    store = DuckDBStore(tmp_path / "s3.duckdb")
    store.migrate()
    try:
        bucket.put_bytes(f"sales-{DAY}.csv", local.read_bytes())
        url = f"s3://{name}/daily/sales-{DAY}.csv"
        record = run(store, url, settings)
        assert (record.rows_loaded, record.rows_rejected) == (1, 1)
        assert record.rejects_url == f"s3://{name}/daily/sales-{DAY}.rejects.csv"
        with bucket.open_read(f"sales-{DAY}.rejects.csv") as body:
            text = body.read().decode()
        assert "invalid_uf" in text and "S3-2" in text
        assert run(store, url, settings).status == RunStatus.ALREADY_LOADED
    finally:
        store.close()
        bucket.close()
