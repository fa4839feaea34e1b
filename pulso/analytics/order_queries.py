"""The order history's named queries (``pulso query NAME``, ``GET /v1/query/{name}``), in SQL
that runs unchanged on DuckDB and PostgreSQL. Every value reaches the database as a bound
parameter; the SQL text is fixed per query.

Definitions:

- A period is a range of local days (America/Sao_Paulo) on ``ordered_at``, both included;
  either side may be open.
- Sales figures (top products, cities, regions, categories) count orders whose current status
  is ``Pago``: a pending order is not a sale yet, a cancelled or refunded one no longer is.
- ``channels`` and ``status`` look at every order, whatever its status.
- Money is exact (integer centavos summed in SQL, shown as ``Decimal``); ticket médio is
  revenue / orders rounded to the centavo; shares are percentages of the period's whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from pulso.domain.money import CENT, format_brl, from_cents
from pulso.domain.ptbr import format_count, format_date, format_percent
from pulso.domain.timefmt import local_midnight
from pulso.errors import PulsoError

if TYPE_CHECKING:
    from pulso.store.protocol import Store

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 1_000
PAID: Final = "Pago"
LOST: Final = ("Cancelado", "Reembolsado")

ColumnKind = Literal["text", "count", "money", "percent"]
Row = tuple[Any, ...]


class OrderQueryError(PulsoError):
    """A query was asked for with arguments that cannot produce it."""


class UnknownQueryError(OrderQueryError):
    """No query has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no query named {name!r}; choose one of {', '.join(QUERIES)}")
        self.name = name


@dataclass(frozen=True, slots=True)
class QueryColumn:
    name: str
    label: str
    """Column title on screen (pt-BR)."""
    kind: ColumnKind


@dataclass(frozen=True, slots=True)
class QueryResult:
    name: str
    title: str
    columns: tuple[QueryColumn, ...]
    rows: list[Row]
    start: date | None
    end: date | None
    limit: int

    def records(self) -> list[dict[str, Any]]:
        """Rows as JSON-ready objects: money as ``"1234.56"`` strings, the rest as is."""
        return [
            {c.name: _json_value(c.kind, v) for c, v in zip(self.columns, row, strict=True)}
            for row in self.rows
        ]

    def document(self) -> dict[str, Any]:
        """The answer of ``GET /v1/query/{name}`` (and ``pulso query --format json``)."""
        return {
            "name": self.name,
            "title": self.title,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "limit": self.limit,
            "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in self.columns],
            "rows": self.records(),
        }

    def formatted_rows(self) -> list[list[str]]:
        """Rows as Brazilians read them: ``R$ 1.234,56``, ``1.234``, ``12,3%``."""
        return [
            [format_value(c.kind, v) for c, v in zip(self.columns, row, strict=True)]
            for row in self.rows
        ]

    def period_text(self) -> str:
        if self.start is None and self.end is None:
            return "todo o período"
        first = format_date(self.start) if self.start else "o início"
        last = format_date(self.end) if self.end else "hoje"
        return f"{first} a {last}"


def result_from_document(document: Mapping[str, Any]) -> QueryResult:
    """The inverse of :meth:`QueryResult.document` (a CLI reading through the API)."""
    columns = tuple(QueryColumn(c["name"], c["label"], c["kind"]) for c in document["columns"])
    rows = [
        tuple(_from_json(c.kind, record.get(c.name)) for c in columns)
        for record in document["rows"]
    ]
    start, end = document.get("from"), document.get("to")
    return QueryResult(
        name=document["name"],
        title=document["title"],
        columns=columns,
        rows=rows,
        start=date.fromisoformat(start) if start else None,
        end=date.fromisoformat(end) if end else None,
        limit=int(document["limit"]),
    )


def format_value(kind: ColumnKind, value: Any) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return format_brl(Decimal(value))
    if kind == "count":
        return format_count(int(value))
    if kind == "percent":
        return format_percent(float(value))
    return str(value)


def _json_value(kind: ColumnKind, value: Any) -> Any:
    if kind == "money" and value is not None:
        return f"{Decimal(value):.2f}"
    return value


def _from_json(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "money":
        return Decimal(str(value))
    if kind == "count":
        return int(value)
    if kind == "percent":
        return float(value)
    return str(value)


# --------------------------------------------------------------------------- the queries


@dataclass(frozen=True, slots=True)
class _Filter:
    """The WHERE clause of a query and its parameters: fixed text, bound values."""

    sql: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class QuerySpec:
    name: str
    title: str
    description: str
    columns: tuple[QueryColumn, ...]
    paid_only: bool
    run: Callable[[Store, _Filter, int], list[Row]]


def _col(name: str, label: str, kind: ColumnKind = "text") -> QueryColumn:
    return QueryColumn(name, label, kind)


_TOP_PRODUCTS_SQL: Final = """SELECT product, category, count(*), sum(quantity), sum(total_cents)
FROM orders WHERE {where}
GROUP BY product, category ORDER BY 4 DESC, 5 DESC, 1 LIMIT %s"""

_TOP_CITIES_SQL: Final = """SELECT city, uf, region, count(*), sum(total_cents)
FROM orders WHERE {where}
GROUP BY city, uf, region ORDER BY 5 DESC, 4 DESC, 1, 2 LIMIT %s"""

_BY_REGION_SQL: Final = """WITH ranked AS (
    SELECT region, product, category, count(*) AS n, sum(quantity) AS q,
           sum(total_cents) AS s,
           row_number() OVER (PARTITION BY region
                              ORDER BY sum(quantity) DESC, sum(total_cents) DESC, product) AS r
    FROM orders WHERE {where} GROUP BY region, product, category
)
SELECT region, r, product, category, n, q, s FROM ranked WHERE r <= %s ORDER BY region, r"""

_CATEGORIES_SQL: Final = """SELECT category, count(*), sum(quantity), sum(total_cents),
       sum(sum(total_cents)) OVER ()
FROM orders WHERE {where}
GROUP BY category ORDER BY 4 DESC, 1 LIMIT %s"""

_CHANNELS_SQL: Final = """SELECT channel, count(*),
       count(*) FILTER (WHERE status = %s),
       coalesce(sum(total_cents) FILTER (WHERE status = %s), 0),
       count(*) FILTER (WHERE status = ANY(%s))
FROM orders WHERE {where}
GROUP BY channel ORDER BY 4 DESC, 2 DESC, 1 LIMIT %s"""

_STATUS_SQL: Final = """SELECT status, count(*), sum(total_cents),
       sum(count(*)) OVER (), sum(sum(total_cents)) OVER ()
FROM orders WHERE {where}
GROUP BY status ORDER BY 2 DESC, 1 LIMIT %s"""


def _fetch(store: Store, sql: str, where: _Filter, *params: Any) -> list[Row]:
    """``sql`` with ``{where}`` filled by the fixed filter text; ``params`` bound after it."""
    return store.query(sql.format(where=where.sql), [*where.params, *params])


def _money(cents: Any) -> Decimal:
    return from_cents(int(cents or 0))


def _ticket(cents: Any, orders: int) -> Decimal | None:
    return (_money(cents) / orders).quantize(CENT) if orders else None


def _percent(part: Any, whole: Any) -> float:
    return round(float(part) * 100 / float(whole), 2) if whole else 0.0


def _top_products(store: Store, where: _Filter, limit: int) -> list[Row]:
    return [
        (rank, product, category, int(n), int(q), _money(s))
        for rank, (product, category, n, q, s) in enumerate(
            _fetch(store, _TOP_PRODUCTS_SQL, where, limit), start=1
        )
    ]


def _top_cities(store: Store, where: _Filter, limit: int) -> list[Row]:
    return [
        (rank, city, uf, region, int(n), _money(s), _ticket(s, int(n)))
        for rank, (city, uf, region, n, s) in enumerate(
            _fetch(store, _TOP_CITIES_SQL, where, limit), start=1
        )
    ]


def _by_region(store: Store, where: _Filter, limit: int) -> list[Row]:
    return [
        (region, int(rank), product, category, int(n), int(q), _money(s))
        for region, rank, product, category, n, q, s in _fetch(store, _BY_REGION_SQL, where, limit)
    ]


def _categories(store: Store, where: _Filter, limit: int) -> list[Row]:
    rows: list[Row] = []
    cumulative = 0
    for category, n, q, s, whole in _fetch(store, _CATEGORIES_SQL, where, limit):
        cumulative += int(s)
        rows.append(
            (
                category,
                int(n),
                int(q),
                _money(s),
                _percent(s, whole),
                _percent(cumulative, whole),
                _ticket(s, int(n)),
            )
        )
    return rows


def _channels(store: Store, where: _Filter, limit: int) -> list[Row]:
    rows = store.query(
        _CHANNELS_SQL.format(where=where.sql), [PAID, PAID, list(LOST), *where.params, limit]
    )
    return [
        (
            channel,
            int(n),
            int(paid),
            _money(s),
            _ticket(s, int(paid)),
            _percent(paid, n),
            _percent(lost, n),
        )
        for channel, n, paid, s, lost in rows
    ]


def _status(store: Store, where: _Filter, limit: int) -> list[Row]:
    return [
        (status, int(n), _money(s), _percent(n, all_n), _percent(s, all_s))
        for status, n, s, all_n, all_s in _fetch(store, _STATUS_SQL, where, limit)
    ]


_RANK = _col("rank", "Nº", "count")
_ORDERS = _col("orders", "Pedidos", "count")
_QUANTITY = _col("quantity", "Qtd.", "count")
_REVENUE = _col("revenue", "Receita", "money")
_TICKET = _col("average_ticket", "Ticket médio", "money")

QUERIES: Final[dict[str, QuerySpec]] = {
    spec.name: spec
    for spec in (
        QuerySpec(
            "top-products",
            "Produtos mais vendidos",
            "Products by units sold in paid orders (then revenue).",
            (_RANK, _col("product", "Produto"), _col("category", "Categoria"), _ORDERS,
             _QUANTITY, _REVENUE),
            True,
            _top_products,
        ),
        QuerySpec(
            "top-cities",
            "Cidades com maior receita",
            "Cities by revenue of paid orders, with orders and ticket médio.",
            (_RANK, _col("city", "Cidade"), _col("uf", "UF"), _col("region", "Região"),
             _ORDERS, _REVENUE, _TICKET),
            True,
            _top_cities,
        ),
        QuerySpec(
            "top-products-by-region",
            "Produtos mais vendidos por região",
            "The top --limit products of each region by units sold in paid orders.",
            (_col("region", "Região"), _RANK, _col("product", "Produto"),
             _col("category", "Categoria"), _ORDERS, _QUANTITY, _REVENUE),
            True,
            _by_region,
        ),
        QuerySpec(
            "revenue-by-category",
            "Receita por categoria",
            "Revenue of paid orders per category, its share and the cumulative share.",
            (_col("category", "Categoria"), _ORDERS, _QUANTITY, _REVENUE,
             _col("share", "Participação", "percent"),
             _col("cumulative_share", "Acumulado", "percent"), _TICKET),
            True,
            _categories,
        ),
        QuerySpec(
            "channels",
            "Desempenho por canal",
            "Site, App and Marketplace: orders, paid orders, revenue, ticket médio, the "
            "share paid and the share cancelled or refunded.",
            (_col("channel", "Canal"), _ORDERS, _col("paid_orders", "Pagos", "count"),
             _REVENUE, _TICKET, _col("paid_rate", "Taxa de pagamento", "percent"),
             _col("lost_rate", "Cancelados e reembolsados", "percent")),
            False,
            _channels,
        ),
        QuerySpec(
            "status",
            "Pedidos por status",
            "Orders and their value by current status (Pago, Pendente, Cancelado, "
            "Reembolsado), with shares.",
            (_col("status", "Status"), _ORDERS, _col("value", "Valor", "money"),
             _col("orders_share", "% dos pedidos", "percent"),
             _col("value_share", "% do valor", "percent")),
            False,
            _status,
        ),
    )
}  # fmt: skip


def query_spec(name: str) -> QuerySpec:
    spec = QUERIES.get(name)
    if spec is None:
        raise UnknownQueryError(name)
    return spec


def check_arguments(name: str, start: date | None, end: date | None, limit: int) -> QuerySpec:
    """The query's spec, or OrderQueryError saying which argument is wrong."""
    spec = query_spec(name)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise OrderQueryError(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
    if start is not None and end is not None and start > end:
        raise OrderQueryError(f"from {start.isoformat()} is after to {end.isoformat()}; swap them")
    return spec


def run_query(
    store: Store,
    name: str,
    *,
    start: date | None = None,
    end: date | None = None,
    limit: int = DEFAULT_LIMIT,
) -> QueryResult:
    """Run the named query over the local days ``start``..``end`` (both included)."""
    spec = check_arguments(name, start, end, limit)
    where = _filter(start, end, paid_only=spec.paid_only)
    return QueryResult(
        name=spec.name,
        title=spec.title,
        columns=spec.columns,
        rows=spec.run(store, where, limit),
        start=start,
        end=end,
        limit=limit,
    )


def _filter(start: date | None, end: date | None, *, paid_only: bool) -> _Filter:
    conditions: list[str] = []
    params: list[Any] = []
    if start is not None:
        conditions.append("ordered_at >= %s")
        params.append(local_midnight(start))
    if end is not None:
        conditions.append("ordered_at < %s")
        params.append(local_midnight(end + timedelta(days=1)))
    if paid_only:
        conditions.append("status = %s")
        params.append(PAID)
    return _Filter(" AND ".join(conditions) or "TRUE", params)


def describe_queries() -> Sequence[tuple[str, str]]:
    """(name, description) of every query, for help texts."""
    return [(spec.name, spec.description) for spec in QUERIES.values()]
