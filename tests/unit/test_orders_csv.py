"""Reading an orders CSV for the bus: good lines become order.upserted events with stable ids,
bad lines are reported with their line number and reason, and files that are not an orders
CSV are one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulso.domain.events import decode_event
from pulso.domain.orders import Order
from pulso.sources.orders_csv import (
    REQUIRED_COLUMNS,
    OrdersCsvError,
    ReadStats,
    count_lines,
    read_order_records,
)

HEADER = ",".join(REQUIRED_COLUMNS)
GOOD = (
    "PED-1,2026-11-20T10:00:00-03:00,2026-11-20T10:00:00-03:00,CLI-1,Recife,PE,Nordeste,"
    "Camiseta,Vestuário,2,49.90,99.80,Site,Pendente"
)
PAID = GOOD.replace("10:00:00-03:00,CLI", "18:30:00-03:00,CLI").replace("Pendente", "Pago")


def write(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "pedidos.csv"
    path.write_text("\n".join((header, *lines)) + "\n", encoding="utf-8")
    return path


def read(path: Path) -> tuple[list[tuple[bytes | None, bytes]], ReadStats]:
    stats = ReadStats()
    records = [r for batch in read_order_records(path, stats, batch_records=2) for r in batch]
    return records, stats


def test_good_lines_become_events_keyed_by_order(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, PAID, GOOD.replace("PED-1", "PED-2"))
    records, stats = read(path)
    assert (stats.lines, stats.good, stats.bad) == (3, 3, 0)
    assert [key for key, _ in records] == [b"PED-1", b"PED-1", b"PED-2"]
    events = [decode_event(value) for _, value in records]
    assert all(e.type == "order.upserted" and isinstance(e.data, Order) for e in events)
    assert events[1].data.status == "Pago" and events[1].key == "PED-1"
    assert events[1].occurred_at == events[1].data.updated_at
    assert count_lines(path) == 3


def test_event_ids_are_stable_so_a_file_published_twice_is_stored_once(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, PAID)
    first = [decode_event(v).event_id for _, v in read(path)[0]]
    again = [decode_event(v).event_id for _, v in read(path)[0]]
    assert first == again and len(set(first)) == 2


def test_columns_may_come_in_any_order_and_extra_ones_are_ignored(tmp_path: Path) -> None:
    names = ["customer_name", *reversed(REQUIRED_COLUMNS)]
    values = ["Maria Silva", *reversed(GOOD.split(","))]
    records, stats = read(write(tmp_path, ",".join(values), header=",".join(names)))
    assert stats.good == 1
    assert decode_event(records[0][1]).data.product == "Camiseta"


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (GOOD.replace("99.80", "99.81"), "invalid_total", "is not quantity 2"),
        (GOOD.replace(",PE,", ",XX,"), "invalid_uf", "XX"),
        (GOOD.replace("Nordeste", "Sul"), "region_mismatch", "UF PE"),
        (GOOD.replace("2026-11-20T10:00:00-03:00,C", "20/11/2026,C"), "bad_field", "updated_at"),
        (GOOD.replace(",2,", ",dois,"), "bad_field", "quantity"),
        (GOOD.replace(",2,49.90,99.80", ",-2,49.90,-99.80"), "bad_field", "quantity"),
        (GOOD.replace("Site", "Loja"), "bad_field", "channel"),
        (GOOD.replace("Pendente", "Enviado"), "bad_field", "status"),
        (GOOD.replace("49.90,99.80", "49.999,99.998"), "invalid_amount", "two decimal places"),
        (GOOD.replace("-03:00,2026", ",2026", 1), "bad_field", "timezone"),
        (GOOD.replace("T10:00:00-03:00,CLI", "T09:00:00-03:00,CLI"), "updated_before_ordered", ""),
        (GOOD + ",extra", "field_count", "expected 14 fields, got 15"),
        ("PED-9,2026-11-20", "field_count", "got 2"),
    ],
)
def test_bad_lines_are_reported_with_line_and_reason(
    tmp_path: Path, line: str, reason: str, detail: str
) -> None:
    records, stats = read(write(tmp_path, GOOD, line, PAID))
    assert [k for k, _ in records] == [b"PED-1", b"PED-1"]  # the good ones still go
    assert (stats.good, stats.bad) == (2, 1)
    [bad] = stats.bad_lines
    assert (bad.line, bad.reason) == (3, reason)
    assert detail.lower() in bad.detail.lower()
    assert stats.bad_by_reason == {reason: 1}


def test_line_numbers_count_physical_lines_with_quoted_breaks(tmp_path: Path) -> None:
    quoted = GOOD.replace("Camiseta", '"Camiseta\nlonga"')
    _, stats = read(write(tmp_path, quoted, GOOD.replace("99.80", "1.00")))
    assert stats.good == 1
    assert [b.line for b in stats.bad_lines] == [4]  # the bad line after a two-line record


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    _, stats = read(write(tmp_path, GOOD, "", PAID))
    assert (stats.lines, stats.good, stats.bad) == (2, 2, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"order_id,status\nPED-1,Pago\n", "lacks the column(s) ordered_at"),
        (HEADER.encode() + b"\n" + GOOD.encode("latin-1") + b"\n", "UTF-8"),
    ],
)
def test_a_file_that_is_not_an_orders_csv_is_one_clear_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(OrdersCsvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(path)


def test_a_missing_file_or_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OrdersCsvError, match="does not exist"):
        read(tmp_path / "nope.csv")
    with pytest.raises(OrdersCsvError, match="is a folder"):
        read(tmp_path)
