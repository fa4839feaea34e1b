"""The daily sales CSV generator: the documented layout, rows that pass the domain rules,
bad lines of the kinds it claims, and the same bytes for the same seed."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from pulso.domain.sales import SaleRecord
from pulso.domain.validators import is_valid_uf
from pulso.sources import GeneratorConfigError
from pulso.sources import sales_generator as gen
from pulso.sources.sales_generator import (
    BAD_ROW_KINDS,
    HEADER,
    LOCAL_TZ,
    PAYMENT_METHODS,
    PRODUCTS,
    SALES_CATEGORIES,
    SalesConfig,
    sales_csv_bytes,
    sales_object_key,
    write_sales_csv,
)

DAY = date(2026, 11, 20)
EXPECTED_HEADER = (
    "sale_id,sold_at,store_id,seller,product,category,quantity,unit_price,total,"
    "payment_method,city,uf\n"
)


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _record(fields: list[str]) -> SaleRecord:
    values = dict(zip(gen.SALES_COLUMNS, fields, strict=True))
    return msgspec.convert(
        {
            **values,
            "quantity": int(values["quantity"]),
            "unit_price": Decimal(values["unit_price"]),
            "total": Decimal(values["total"]),
            "sold_at": datetime.fromisoformat(values["sold_at"]),
        },
        SaleRecord,
    )


def test_header_is_the_documented_one() -> None:
    data, _ = sales_csv_bytes(SalesConfig(day=DAY, rows=5))
    assert HEADER == EXPECTED_HEADER
    assert data.startswith(EXPECTED_HEADER.encode())
    documented = [
        line.split()[0] for line in (gen.__doc__ or "").splitlines() if line[:4] == " " * 4
    ]
    assert [c for c in documented if c in gen.SALES_COLUMNS] == list(gen.SALES_COLUMNS)


def test_good_rows_pass_the_domain_rules_and_look_plausible() -> None:
    data, stats = sales_csv_bytes(SalesConfig(day=DAY, rows=3_000, n_stores=7, seed=3))
    header, *rows = _rows(data)
    assert header == list(gen.SALES_COLUMNS)
    assert len(rows) == stats.rows == stats.good_rows == 3_000
    day_start = datetime(2026, 11, 20, tzinfo=LOCAL_TZ)
    total_cents = 0
    for fields in rows:
        record = _record(fields)
        low, high = SALES_CATEGORIES[record.category]
        assert low <= record.unit_price <= high, fields
        assert record.payment_method in PAYMENT_METHODS
        assert is_valid_uf(record.uf)
        assert record.sold_at.utcoffset() == timedelta(hours=-3)
        local_hour = (record.sold_at - day_start).total_seconds() / 3600
        assert 8 <= local_hour < 22, fields  # the opening hours
        assert fields[7].count(".") == 1 and len(fields[7].split(".")[1]) == 2
        total_cents += int(record.total * 100)
    assert total_cents == stats.good_total_cents
    assert len({r[0] for r in rows}) == len(rows)  # sale ids are unique
    sold_at = [datetime.fromisoformat(r[1]) for r in rows]
    assert sold_at == sorted(sold_at)  # lines come in time order
    assert len({r[2] for r in rows}) == 7
    assert len({r[3] for r in rows}) > 7  # several sellers per store
    assert len({r[5] for r in rows}) >= 10


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    config = SalesConfig(day=DAY, rows=2_000, seed=11, bad_rate=0.1)
    first, _ = sales_csv_bytes(config)
    again, _ = sales_csv_bytes(config)
    other, _ = sales_csv_bytes(SalesConfig(day=DAY, rows=2_000, seed=12, bad_rate=0.1))
    assert first == again
    assert first != other


def test_write_streams_the_same_bytes_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "CHUNK_ROWS", 700)
    config = SalesConfig(day=DAY, rows=2_500, seed=5, bad_rate=0.05)
    reported: list[int] = []
    out = io.BytesIO()
    stats = write_sales_csv(config, out, on_rows=reported.append)
    assert reported == [700, 700, 700, 400]
    assert stats.bytes_written == len(out.getvalue())
    rows = _rows(out.getvalue())[1:]
    good_ids = [r[0] for n, r in enumerate(rows, start=2) if n not in stats.bad_lines]
    sequence = [int(i.rsplit("-", 1)[1]) for i in good_ids]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert max(stats.bad_lines) > 2 * 700  # bad lines are numbered across chunks


def test_bad_lines_are_bad_in_the_way_their_kind_says() -> None:
    data, stats = sales_csv_bytes(SalesConfig(day=DAY, rows=4_000, seed=9, bad_rate=0.2))
    rows = _rows(data)
    bad = stats.bad_lines
    assert len(bad) == stats.bad_rows == sum(stats.bad_by_kind.values())
    assert 600 < len(bad) < 1_000
    assert set(stats.bad_by_kind) == set(BAD_ROW_KINDS) and all(stats.bad_by_kind.values())
    for line, fields in enumerate(rows[1:], start=2):
        kind = bad.get(line)
        if kind is None:
            _record(fields)
            continue
        _assert_bad(kind, fields)


def _assert_bad(kind: str, fields: list[str]) -> None:
    if kind == "garbage":
        assert len(fields) != 12
        return
    assert len(fields) == 12
    quantity, price, total = int(fields[6]), Decimal(fields[7]), Decimal(fields[8])
    if kind == "wrong_total":
        assert total != quantity * price
    elif kind == "negative_quantity":
        assert quantity < 0
    elif kind == "bad_uf":
        assert not is_valid_uf(fields[11]) and fields[11] == fields[11].strip().upper()
    elif kind == "bad_date":
        with pytest.raises(ValueError):
            datetime.fromisoformat(fields[1])
    elif kind == "unknown_category":
        assert fields[5] not in SALES_CATEGORIES
        return  # the record rules know no categories: the ETL checks SALES_CATEGORIES
    with pytest.raises((msgspec.ValidationError, ValueError)):
        _record(fields)


def test_no_bad_lines_unless_asked() -> None:
    _, stats = sales_csv_bytes(SalesConfig(day=DAY, rows=1_000))
    assert stats.bad_lines == {} and stats.bad_rows == 0


def test_offsets_follow_the_zone_rules_of_the_day() -> None:
    # Brazil kept summer time (UTC-2) until 2019.
    data, _ = sales_csv_bytes(SalesConfig(day=date(2018, 1, 15), rows=50))
    assert all(r[1].endswith("-02:00") for r in _rows(data)[1:])


def test_catalogue_prices_sit_inside_their_category() -> None:
    assert set(PRODUCTS) == set(SALES_CATEGORIES)
    for category, items in PRODUCTS.items():
        low, high = SALES_CATEGORIES[category]
        assert low < high
        for name, price in items:
            assert low <= Decimal(price) <= high, name
            assert "," not in name and '"' not in name


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"rows": 0}, "rows"),
        ({"n_stores": 0}, "stores"),
        ({"n_stores": 5_001}, "stores"),
        ({"bad_rate": 0.9}, "bad-rate"),
        ({"bad_rate": float("nan")}, "bad-rate"),
        ({"seed": -1}, "seed"),
        ({"day": date(1999, 12, 31)}, "date"),
    ],
)
def test_bad_configuration_names_the_option(changes: dict[str, object], option: str) -> None:
    with pytest.raises(GeneratorConfigError) as raised:
        SalesConfig(**{"day": DAY, **changes})  # type: ignore[arg-type]
    assert raised.value.option == option


def test_object_key_of_a_day() -> None:
    assert sales_object_key(DAY) == "sales-2026-11-20.csv"
