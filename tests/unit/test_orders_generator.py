"""The orders generator: the same seed gives the same bytes, every line is a valid order,
status changes are later lines of earlier orders, and the figures look like a Brazilian shop."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import pytest

from pulso.domain.validators import REGION_BY_UF
from pulso.sources import GeneratorConfigError
from pulso.sources.orders_csv import parse_order
from pulso.sources.orders_generator import (
    CSV_COLUMNS,
    OrdersConfig,
    orders_csv_bytes,
    orders_table,
    store_rows,
)

CONFIG = OrdersConfig(start=date(2026, 8, 1), days=30, rows=6_000, seed=7)


@pytest.fixture(scope="module")
def lines() -> list[dict[str, str]]:
    data, _ = orders_csv_bytes(CONFIG)
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first, stats = orders_csv_bytes(CONFIG)
    again, _ = orders_csv_bytes(CONFIG)
    other, _ = orders_csv_bytes(OrdersConfig(start=CONFIG.start, days=30, rows=6_000, seed=8))
    assert first == again
    assert first != other
    assert first.startswith((",".join(CSV_COLUMNS) + "\n").encode())
    assert first.count(b"\n") == 6_001 and stats.rows == 6_000
    assert stats.bytes_written == len(first)


def test_every_line_is_a_valid_order_in_time_order(lines: list[dict[str, str]]) -> None:
    orders = [parse_order(line) for line in lines]  # raises on any broken rule
    assert len(orders) == 6_000
    times = [o.updated_at for o in orders]
    assert times == sorted(times)
    for o in orders:
        assert o.total == o.unit_price * o.quantity
        assert REGION_BY_UF[o.uf] == o.region
        assert o.ordered_at >= datetime.fromisoformat("2026-08-01T00:00:00-03:00")
        assert o.ordered_at < datetime.fromisoformat("2026-08-31T00:00:00-03:00")


def test_status_changes_are_later_lines_of_the_same_order(lines: list[dict[str, str]]) -> None:
    by_order: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        by_order.setdefault(line["order_id"], []).append(line)
    changed = {k: v for k, v in by_order.items() if len(v) > 1}
    stats = orders_csv_bytes(CONFIG)[1]
    assert len(by_order) == stats.orders and len(changed) == stats.updates
    assert 0.2 < stats.updates / stats.rows < 0.3  # about one line in four
    transitions = Counter((v[0]["status"], v[1]["status"]) for v in changed.values())
    assert set(transitions) == {
        ("Pendente", "Pago"),
        ("Pendente", "Cancelado"),
        ("Pago", "Reembolsado"),
    }
    assert transitions["Pendente", "Pago"] > transitions["Pendente", "Cancelado"]
    for first, later in changed.values():
        assert later["updated_at"] > first["updated_at"] == first["ordered_at"]
        fixed = set(CSV_COLUMNS) - {"updated_at", "status"}
        assert {k: first[k] for k in fixed} == {k: later[k] for k in fixed}


def test_distributions_are_plausible(lines: list[dict[str, str]]) -> None:
    final = {line["order_id"]: line for line in lines}  # the last line of each order wins
    statuses = Counter(o["status"] for o in final.values())
    assert statuses.most_common(1)[0][0] == "Pago"
    assert 0.7 < statuses["Pago"] / len(final) < 0.9
    assert all(statuses[s] > 0 for s in ("Pendente", "Cancelado", "Reembolsado"))
    channels = Counter(o["channel"] for o in final.values())
    assert channels["Site"] > channels["App"] > channels["Marketplace"] > 0.1 * len(final)
    cities = Counter(o["city"] for o in final.values())
    assert cities.most_common(1)[0][0] == "São Paulo"  # the largest city buys most
    assert len({o["uf"] for o in final.values()}) >= 20
    assert {o["region"] for o in final.values()} == set(REGION_BY_UF.values())
    quantities = Counter(int(o["quantity"]) for o in final.values())
    assert quantities.most_common(1)[0][0] == 1 and max(quantities) <= 10
    prices = [Decimal(o["unit_price"]) for o in final.values()]
    assert min(prices) > 0 and max(prices) < 10_000
    customers = Counter(o["customer_id"] for o in final.values())
    assert customers.most_common(1)[0][1] > 3  # loyal customers come back
    assert all(" " in o["customer_name"] for o in final.values())


def test_store_rows_keep_the_last_version_of_each_order() -> None:
    table = orders_table(CONFIG)
    stored = store_rows(table)
    assert stored.num_rows == CONFIG.orders
    assert "customer_name" not in stored.column_names
    last = {}
    for order_id, status in zip(
        table.column("order_id").to_pylist(), table.column("status").to_pylist(), strict=True
    ):
        last[order_id] = status
    assert (
        dict(
            zip(
                stored.column("order_id").to_pylist(),
                stored.column("status").to_pylist(),
                strict=True,
            )
        )
        == last
    )


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"rows": 0}, "rows"),
        ({"rows": 60_000_000}, "rows"),
        ({"days": 0}, "days"),
        ({"seed": -1}, "seed"),
        ({"start": date(1999, 1, 1)}, "start"),
    ],
)
def test_impossible_configs_name_the_option(kwargs: dict[str, object], option: str) -> None:
    values: dict[str, object] = {"start": date(2026, 1, 1), **kwargs}
    with pytest.raises(GeneratorConfigError) as raised:
        OrdersConfig(**values)  # type: ignore[arg-type]
    assert raised.value.option == option


def test_one_row_is_one_order() -> None:
    data, stats = orders_csv_bytes(OrdersConfig(start=date(2026, 1, 1), rows=1))
    assert (stats.rows, stats.orders, stats.updates) == (1, 1, 0)
    assert data.count(b"\n") == 2
