"""``pulso query NAME``: the order history's named queries as a table, CSV, JSON or Parquet.

Reads the store directly, or, when a pulso server owns the embedded store (one process owns
the DuckDB file), through that server's API: ``--api URL``, or by itself when the store is
held by another process and the server answers at ``PULSO_PUBLIC_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from pulso.cli.output import console, err_console, fail, load_settings_or_exit, user_errors
from pulso.errors import PulsoError

if TYPE_CHECKING:
    from datetime import date

    import httpx

    from pulso.analytics.order_queries import QueryResult
    from pulso.config import Settings

FORMATS: Final = ("table", "csv", "json")
EXTENSIONS: Final = {".csv": "csv", ".json": "json", ".parquet": "parquet"}
_USAGE: Final = 2


class QueryApiError(PulsoError):
    """The server's API did not give the query's answer."""


_QUERY_NAMES: Final = (
    "top-products, top-cities, top-products-by-region, revenue-by-category, channels, status"
)


def query(
    name: Annotated[str, typer.Argument(help=f"The query: {_QUERY_NAMES}.")],
    limit: Annotated[
        int, typer.Option(help="Rows to show (per region for top-products-by-region), 1..1000.")
    ] = 10,
    from_day: Annotated[
        str | None,
        typer.Option("--from", help="First local day of the orders (YYYY-MM-DD or dd/mm/aaaa)."),
    ] = None,
    to_day: Annotated[str | None, typer.Option("--to", help="Last local day, included.")] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="table (default), csv or json; --out picks it by extension."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Write to FILE.csv, FILE.json or FILE.parquet."),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            help="Read through a running pulso server at this URL (e.g. http://127.0.0.1:8000)."
        ),
    ] = None,
) -> None:
    """Ask the order history: top products, cities, regions, categories, channels, status.

    Sales figures count paid orders (status Pago); channels and status count every order.
    Money in the table is R$ 1.234,56; in CSV, JSON and Parquet it is exact (1234.56).
    """
    from pulso.analytics.order_queries import MAX_LIMIT, QUERIES

    if name not in QUERIES:
        raise fail(f"unknown query {name!r}; choose one of {', '.join(QUERIES)}", _USAGE)
    if not 1 <= limit <= MAX_LIMIT:
        raise fail(f"--limit must be 1 to {MAX_LIMIT}, got {limit}", _USAGE)
    start, end = _period(from_day, to_day)
    chosen = _format(output_format, out)
    settings = load_settings_or_exit()
    with user_errors():
        result = _fetch(settings, name, start, end, limit, api)
    _emit(result, chosen, out)


def _period(from_day: str | None, to_day: str | None) -> tuple[date | None, date | None]:
    from pulso.cli.events import parse_day

    start = parse_day(from_day, "--from") if from_day is not None else None
    end = parse_day(to_day, "--to") if to_day is not None else None
    if start is not None and end is not None and start > end:
        raise fail(f"--from {start:%Y-%m-%d} is after --to {end:%Y-%m-%d}; swap them", _USAGE)
    return start, end


def _format(output_format: str | None, out: Path | None) -> str:
    if output_format is not None and output_format not in FORMATS:
        raise fail(f"--format: unknown {output_format!r}; use {', '.join(FORMATS)}", _USAGE)
    if out is None:
        return output_format or "table"
    by_extension = EXTENSIONS.get(out.suffix.lower())
    if by_extension is None:
        raise fail(
            f"--out {out}: the extension picks the format; use {', '.join(EXTENSIONS)}", _USAGE
        )
    if output_format is not None and output_format != by_extension:
        raise fail(
            f"--format {output_format} does not match --out {out.name} ({by_extension}); "
            "drop --format or change the extension",
            _USAGE,
        )
    if out.is_dir():
        raise fail(f"--out {out} is a folder; name the file to write", _USAGE)
    if not out.parent.is_dir():
        raise fail(
            f"the folder {out.parent} does not exist; create it or choose another --out", _USAGE
        )
    return by_extension


def _fetch(
    settings: Settings, name: str, start: date | None, end: date | None, limit: int, api: str | None
) -> QueryResult:
    if api is not None:
        return _through_api(settings, api, name, start, end, limit)
    from pulso.analytics.order_queries import run_query
    from pulso.errors import StoreUnavailableError
    from pulso.store import open_store

    try:
        store = open_store(settings)
    except StoreUnavailableError as e:
        if settings.store.kind != "duckdb" or "holds the DuckDB file" not in str(e):
            raise
        return _server_owns_store(settings, name, start, end, limit, str(e))
    try:
        return run_query(store, name, start=start, end=end, limit=limit)
    finally:
        store.close()


def _server_owns_store(
    settings: Settings, name: str, start: date | None, end: date | None, limit: int, why: str
) -> QueryResult:
    """Another process (``pulso up``) owns the DuckDB file: ask its API instead."""
    url = settings.public_url
    try:
        result = _through_api(settings, url, name, start, end, limit)
    except QueryApiError as e:
        raise QueryApiError(
            f"{why}. Reading through its API failed too: {e}. Pass the server's address with "
            "--api URL (default PULSO_PUBLIC_URL)"
        ) from None
    err_console.print(f"note: a pulso server owns the store; read through its API at {url}")
    return result


def _through_api(
    settings: Settings, url: str, name: str, start: date | None, end: date | None, limit: int
) -> QueryResult:
    import httpx

    from pulso.analytics.order_queries import result_from_document

    params: dict[str, Any] = {"limit": limit}
    if start is not None:
        params["from"] = start.isoformat()
    if end is not None:
        params["to"] = end.isoformat()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    headers = {"X-API-Key": token} if token else {}
    base = url.rstrip("/")
    try:
        answer = httpx.get(f"{base}/v1/query/{name}", params=params, headers=headers, timeout=30)
    except httpx.HTTPError as e:
        raise QueryApiError(
            f"cannot reach the pulso API at {base} ({type(e).__name__}); is `pulso up` running "
            "there? check --api"
        ) from None
    if answer.status_code != 200:
        raise QueryApiError(
            f"the pulso API at {base} answered {answer.status_code}: {_detail(answer)}"
        )
    try:
        return result_from_document(answer.json())
    except (ValueError, KeyError, TypeError) as e:
        raise QueryApiError(
            f"the pulso API at {base} gave an unexpected answer ({e}); are both the same version?"
        ) from None


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    return str(body)[:200]


# --------------------------------------------------------------------------- output


def _emit(result: QueryResult, chosen: str, out: Path | None) -> None:
    if chosen == "table":
        _print_table(result)
        return
    data = _encode(result, chosen)
    if out is None:
        typer.echo(data.decode(), nl=False)
        return
    _write_file(out, data)
    console.print(f"wrote {out}: {len(result.rows):,} rows ({chosen})", soft_wrap=True)


def _encode(result: QueryResult, chosen: str) -> bytes:
    if chosen == "csv":
        return _csv_bytes(result)
    if chosen == "json":
        import orjson

        return orjson.dumps(result.document(), option=orjson.OPT_INDENT_2) + b"\n"
    return _parquet_bytes(result)


def _csv_bytes(result: QueryResult) -> bytes:
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    names = [c.name for c in result.columns]
    writer.writerow(names)
    for record in result.records():
        writer.writerow(["" if record[n] is None else record[n] for n in names])
    return text.getvalue().encode()


def _parquet_bytes(result: QueryResult) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "text": pa.string(),
        "count": pa.int64(),
        "money": pa.decimal128(18, 2),
        "percent": pa.float64(),
    }
    columns = {
        c.name: pa.array([row[i] for row in result.rows], types[c.kind])
        for i, c in enumerate(result.columns)
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot write {path}: {e.strerror or e}; choose another --out") from None


def _print_table(result: QueryResult) -> None:
    from rich.table import Table

    table = Table(title=f"{result.title} · {result.period_text()}", title_justify="left")
    for column in result.columns:
        numeric = column.kind != "text"
        table.add_column(column.label, justify="right" if numeric else "left", no_wrap=numeric)
    for row in result.formatted_rows():
        table.add_row(*row)
    console.print(table)
    if not result.rows:
        console.print("nenhum pedido no período")
