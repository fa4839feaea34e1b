"""Read an orders CSV (the layout of :mod:`pulso.sources.orders_generator`) into bus records.

Every line is validated as an :class:`~pulso.domain.orders.Order` (the same rules the
pipeline applies) plus a few of its own (region matches the UF, not updated before ordered).
A bad line is reported with its line number and reason and is not published. The header
names the columns, in any order; extra columns (``customer_name``) are ignored.

Event ids are derived from (order id, updated_at, status), so publishing the same file twice
gives the same events and the pipeline stores them once.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import msgspec

from pulso.bus.protocol import Bus, Record
from pulso.domain.events import TYPE_BY_PAYLOAD, Event, encode_event
from pulso.domain.ids import uuid7
from pulso.domain.orders import Order
from pulso.domain.rules import RuleError
from pulso.domain.validators import REGION_BY_UF
from pulso.errors import PulsoError

SOURCE: Final = "orders-csv"
REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "order_id",
    "ordered_at",
    "updated_at",
    "customer_id",
    "city",
    "uf",
    "region",
    "product",
    "category",
    "quantity",
    "unit_price",
    "total",
    "channel",
    "status",
)
ORDER_EVENT: Final = TYPE_BY_PAYLOAD[Order]
BATCH_RECORDS: Final = 10_000
MAX_LISTED_BAD: Final = 1_000


_blake2b = hashlib.blake2b
_encode = encode_event


class OrdersCsvError(PulsoError):
    """The file cannot be read as an orders CSV at all (names the file and what to fix)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that was not published, and why."""

    line: int
    reason: str
    detail: str


@dataclass(slots=True)
class ReadStats:
    """What a read found so far."""

    lines: int = 0
    good: int = 0
    bad: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    """The first MAX_LISTED_BAD bad lines."""
    bad_by_reason: dict[str, int] = field(default_factory=dict)

    def add_bad(self, bad: BadLine) -> None:
        self.bad += 1
        self.bad_by_reason[bad.reason] = self.bad_by_reason.get(bad.reason, 0) + 1
        if len(self.bad_lines) < MAX_LISTED_BAD:
            self.bad_lines.append(bad)


def count_lines(path: Path) -> int:
    """Data lines in the file (line breaks minus the header's), for a progress bar."""
    with _open(path, binary=True) as f:
        breaks: int = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return max(0, breaks - 1)


def read_order_records(
    path: Path, stats: ReadStats, batch_records: int = BATCH_RECORDS
) -> Iterator[list[Record]]:
    """Batches of (order id, encoded ``order.upserted`` event) of the file's good lines;
    ``stats`` counts good and bad lines as they are read."""
    with _open(path, binary=False) as text:
        reader = csv.reader(text)
        layout = _header(reader, path)
        batch: list[Record] = []
        for row in _rows(reader, path):
            if not row:  # a blank line
                continue
            stats.lines += 1
            record = _record(row, layout, reader.line_num, stats)
            if record is None:
                continue
            batch.append(record)
            if len(batch) >= batch_records:
                yield batch
                batch = []
        if batch:
            yield batch


def order_event_bytes(order: Order) -> bytes:
    """The ``order.upserted`` event of one order version, with its deterministic id (from the
    order id, the instant of ``updated_at`` and the status)."""
    occurred_at = order.updated_at
    ms = int(occurred_at.timestamp() * 1000)
    digest = _blake2b(f"{order.order_id}|{ms}|{order.status}".encode(), digest_size=10).digest()
    event = Event(
        event_id=uuid7(ms, int.from_bytes(digest, "big")),
        type=ORDER_EVENT,
        occurred_at=occurred_at,
        source=SOURCE,
        key=order.order_id,
        data=order,
    )
    return _encode(event)


def parse_order(fields: dict[str, str]) -> Order:
    """An order from its CSV fields; raises RuleError with a reason code."""
    try:
        order = msgspec.convert(fields, Order, strict=False)
    except msgspec.ValidationError as e:
        cause = e.__cause__
        if isinstance(cause, RuleError):
            raise cause from e
        raise RuleError("bad_field", str(e).replace("$.", "")) from e
    if REGION_BY_UF[order.uf] != order.region:
        raise RuleError(
            "region_mismatch", f"region {order.region!r} is not the region of UF {order.uf}"
        )
    if order.updated_at < order.ordered_at:
        raise RuleError("updated_before_ordered", "updated_at is earlier than ordered_at")
    return order


def _rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a file that stops being CSV text is an error naming the line."""
    while True:
        try:
            row: list[str] = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            raise OrdersCsvError(
                f"{path}: the text after line {reader.line_num} is not UTF-8 ({e.reason}); "
                "save the file as UTF-8"
            ) from None
        except csv.Error as e:
            raise OrdersCsvError(
                f"{path}, line {reader.line_num + 1}: not readable as CSV ({e}); fix that line"
            ) from None
        yield row


def _record(
    row: list[str],
    layout: tuple[Callable[[list[str]], tuple[str, ...]], int],
    line: int,
    stats: ReadStats,
) -> Record | None:
    pick, width = layout
    if len(row) != width:
        stats.add_bad(BadLine(line, "field_count", f"expected {width} fields, got {len(row)}"))
        return None
    fields = dict(zip(REQUIRED_COLUMNS, pick(row), strict=True))
    try:
        order = parse_order(fields)
    except RuleError as e:
        stats.add_bad(BadLine(line, e.reason, str(e)))
        return None
    stats.good += 1
    return order.order_id.encode(), order_event_bytes(order)


def _header(reader: Any, path: Path) -> tuple[Callable[[list[str]], tuple[str, ...]], int]:
    """What picks the required columns out of a line, and how many fields a line has."""
    try:
        header = next(reader)
    except StopIteration:
        raise OrdersCsvError(f"{path} is empty; expected a header line") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise OrdersCsvError(f"{path} is not a UTF-8 CSV file: {e}") from None
    names = [name.strip().lstrip("\ufeff") for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise OrdersCsvError(
            f"{path} lacks the column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} (see docs/orders.md)"
        )
    pick = itemgetter(*(names.index(name) for name in REQUIRED_COLUMNS))
    return pick, len(names)


def _open(path: Path, *, binary: bool) -> Any:
    try:
        if binary:
            return path.open("rb")
        return path.open("r", encoding="utf-8", newline="")
    except FileNotFoundError:
        raise OrdersCsvError(f"{path} does not exist; check the --csv path") from None
    except IsADirectoryError:
        raise OrdersCsvError(f"{path} is a folder; pass the CSV file") from None
    except OSError as e:
        raise OrdersCsvError(f"cannot read {path}: {e.strerror}") from None


def publish_orders(
    bus: Bus,
    path: Path,
    topic: str,
    stats: ReadStats,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Publish the file's good lines on ``topic``; returns how many were published.

    Reading and validating the next batch overlaps with the bus acknowledging the previous one
    (librdkafka waits without the GIL); batches still go out one after the other, in order.
    ``on_batch(n)`` runs after each acknowledged batch of ``n`` records.
    """
    published = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulso-produce") as sender:
        pending: Future[None] | None = None
        pending_size = 0
        for batch in read_order_records(path, stats):
            if pending is not None:
                pending.result()
                published += pending_size
                if on_batch is not None:
                    on_batch(pending_size)
            pending, pending_size = sender.submit(bus.publish, topic, batch), len(batch)
        if pending is not None:
            pending.result()
            published += pending_size
            if on_batch is not None:
                on_batch(pending_size)
    return published
