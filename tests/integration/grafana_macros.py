"""Grafana's PostgreSQL query macros, expanded the way Grafana's server does, so that a
dashboard panel's ``rawSql`` can run on a real PostgreSQL in the tests.

Grafana runs a panel's SQL in two steps (``pkg/tsdb/sqleng/sql_engine.go`` and
``pkg/tsdb/grafana-postgresql-datasource/macros.go`` in the Grafana repository):

1. global substitutions, plain text replacement in this order: ``$__interval_ms`` (the
   panel's interval in milliseconds), ``$__interval`` (the same as text: ``5m``, ``1h``...),
   ``$__unixEpochFrom()`` and ``$__unixEpochTo()`` (seconds);
2. the PostgreSQL macros, every ``$name(args)`` matched by ``\\$([_a-zA-Z0-9]+)\\(([^)]*)\\)``,
   the arguments split on commas and trimmed:

   ================================  ===========================================================
   ``$__time(c)``                    ``c AS "time"``
   ``$__timeEpoch(c)``               ``extract(epoch from c) as "time"``
   ``$__timeFilter(c)``              ``c BETWEEN '<from>' AND '<to>'`` (UTC, RFC 3339)
   ``$__timeFrom()``/``$__timeTo()`` ``'<from>'`` / ``'<to>'``
   ``$__timeGroup(c, 5m[, fill])``   ``floor(extract(epoch from c)/300)*300``; with the data
                                     source's ``timescaledb`` flag: ``time_bucket('300.000s',c)``
   ``$__timeGroupAlias(c, 5m)``      the same followed by `` AS "time"``
   ``$__unixEpochFilter(c)``         ``c >= <from s> AND c <= <to s>``
   ``$__unixEpochGroup(c, 5m)``      ``floor((c)/300)*300`` (``...Alias``: `` AS "time"``)
   ================================  ===========================================================

   A ``$__timeGroup(...)`` directly followed by a comma becomes ``$__timeGroupAlias`` (Grafana's
   compatibility with dashboards older than 5.3). An unknown macro is an error, as in Grafana.

Fill modes (the third ``$__timeGroup`` argument) change only how Grafana post-processes the
rows, not the SQL, so they are accepted and ignored here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What Grafana knows when it runs a panel's query."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    timescaledb: bool = False


def parse_interval(text: str) -> timedelta:
    """``5m``, ``30s``, ``1h``, ``100ms``... (Grafana's gtime.ParseInterval)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text.strip().strip("'"))
    if match is None:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_interval(interval: timedelta) -> str:
    """The interval as Grafana writes it into ``$__interval``: the largest whole unit."""
    ms = round(interval.total_seconds() * 1000)
    for unit, ms_per in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= ms_per and ms % ms_per == 0:
            return f"{ms // ms_per}{unit}"
    return f"{ms}ms"


def _rfc3339(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if "." in text:  # Go's RFC3339Nano drops trailing zeros of the fraction
        head, _, tail = text.partition(".")
        fraction = tail.rstrip("Z").rstrip("0")
        text = f"{head}.{fraction}Z" if fraction else f"{head}Z"
    return text


def _seconds(value: timedelta) -> str:
    """A float as Go's %v prints it (300, 0.5)."""
    number = value.total_seconds()
    return str(int(number)) if number == int(number) else repr(number)


def expand(sql: str, context: QueryContext) -> str:
    """The SQL Grafana would send to PostgreSQL for ``sql`` in ``context``."""
    frm, to = context.time_from, context.time_to
    sql = sql.replace("$__interval_ms", str(round(context.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", format_interval(context.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(frm.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(to.timestamp())))

    def evaluate(name: str, args: list[str]) -> str:
        def column() -> str:
            if not args or not args[0]:
                raise MacroError(f"missing time column argument for macro {name}")
            return args[0]

        if name == "__time":
            return f'{column()} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {column()}) as "time"'
        if name == "__timeFilter":
            return f"{column()} BETWEEN '{_rfc3339(frm)}' AND '{_rfc3339(to)}'"
        if name == "__timeFrom":
            return f"'{_rfc3339(frm)}'"
        if name == "__timeTo":
            return f"'{_rfc3339(to)}'"
        if name in ("__timeGroup", "__unixEpochGroup"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill")
            step = parse_interval(args[1])
            if name == "__unixEpochGroup":
                return f"floor(({args[0]})/{_seconds(step)})*{_seconds(step)}"
            if context.timescaledb:
                return f"time_bucket('{step.total_seconds():.3f}s',{args[0]})"
            return f"floor(extract(epoch from {args[0]})/{_seconds(step)})*{_seconds(step)}"
        if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
            return evaluate(name.removesuffix("Alias"), args) + ' AS "time"'
        if name == "__unixEpochFilter":
            col = column()
            return f"{col} >= {int(frm.timestamp())} AND {col} <= {int(to.timestamp())}"
        raise MacroError(f"unknown macro {name!r}")

    out: list[str] = []
    last = 0
    for match in MACRO.finditer(sql):
        name = match.group(1)
        if name == "__timeGroup" and sql[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"
        args = [a.strip() for a in match.group(2).split(",")]
        out.append(sql[last : match.start()])
        out.append(evaluate(name, args))
        last = match.end()
    out.append(sql[last:])
    return "".join(out)
