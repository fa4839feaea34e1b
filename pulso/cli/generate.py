"""``pulso generate``: synthetic traffic for demos, tests and benchmarks.

The generators are imported inside the commands: Faker and the domain types are not needed
for ``pulso --help``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, Protocol

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, progress_bar, user_errors

if TYPE_CHECKING:
    from pulso.bus.protocol import Bus
    from pulso.sources.payments_generator import GenerationStats, KeyedRecord, PaymentsConfig
    from pulso.sources.stream_generator import StreamConfig, StreamGeneration

app = typer.Typer(no_args_is_help=True, add_completion=False)

BATCH_RECORDS = 10_000
SHORT_RUN_SHARE = 0.8
"""Below this fraction of the asked anomaly share, the live summary explains why."""
_DATE_FORMATS = ["%Y-%m-%d"]


@app.callback()
def _group() -> None:
    """Generate synthetic traffic and datasets."""


@app.command("payments")
def payments(
    days: Annotated[
        int | None, typer.Option(help="Length of the period, in days (default 7).")
    ] = None,
    stores: Annotated[
        int | None, typer.Option(help="Number of stores (default 20; live: 200).")
    ] = None,
    cities: Annotated[
        int | None,
        typer.Option(help="Number of cities the stores spread over (default 8; live: 33)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same bytes.")] = 42,
    malformed_rate: Annotated[
        float, typer.Option(help="Malformed records mixed in per good event, 0..1.")
    ] = 0.0,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write one JSON event per line here.")
    ] = None,
    to_bus: Annotated[
        bool, typer.Option("--to-bus", help="Publish to the payments topic of the bus.")
    ] = False,
    start: Annotated[
        datetime | None, typer.Option(formats=_DATE_FORMATS, help="First day (local).")
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=_DATE_FORMATS, help="Last day (local); default: yesterday."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="Live mode: payments per second (5000/s, 300/min) or max (unpaced).",
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Live mode: how long to send (60s, 5m, 1h).")
    ] = None,
    payments_count: Annotated[
        int | None, typer.Option("--payments", help="Live mode: stop after this many payments.")
    ] = None,
    anomaly_rate: Annotated[
        str | None,
        typer.Option(help="Live mode: share of labelled anomalous payments (0.5% or 0.005)."),
    ] = None,
    clock_start: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
            help="Live mode on a simulated clock from this local time: no waiting, "
            "the same events for the same seed (tests, benchmarks).",
        ),
    ] = None,
) -> None:
    """Synthetic PIX charges for stores across Brazil.

    Each charge is created, then confirmed, failed or expired, following daily and weekly
    curves per store type. Write them to a JSONL file (--out) or publish them (--to-bus).

    Live mode (--rate, --duration or --payments): charges at a steady rate with event time
    now, and labelled anomalies (card testing, velocity, spikes...) at --anomaly-rate.
    """
    if (out is None) == (not to_bus):
        raise fail("say where the events go: --out FILE.jsonl or --to-bus (exactly one)", 2)
    live = (rate, duration, payments_count, anomaly_rate, clock_start) != (None,) * 5
    if live:
        _refuse_day_options(days, start, end, malformed_rate)
        live_config = _stream_config(
            rate, duration, payments_count, anomaly_rate, stores, cities, seed
        )
        _live(live_config, out, clock_start)
        return
    config = _payments_config(
        _or(days, 7), _or(stores, 20), _or(cities, 8), seed, malformed_rate, _day(start), _day(end)
    )
    sink = _open_sink(out)
    started_s = time.perf_counter()
    with user_errors():
        try:
            stats = _generate_into(sink, config)
        finally:
            sink.close()
    _print_summary(stats, config, sink.destination, time.perf_counter() - started_s)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _payments_config(
    days: int,
    stores: int,
    cities: int,
    seed: int,
    malformed_rate: float,
    start: date | None,
    end: date | None,
) -> PaymentsConfig:
    """The generator's config, or exit 2 naming the option to change."""
    from pulso.sources import GeneratorConfigError
    from pulso.sources.payments_generator import PaymentsConfig, local_today, period_start_date

    try:
        first_day = period_start_date(days, today=local_today(), start=start, end=end)
        return PaymentsConfig(
            start=first_day,
            days=days,
            n_stores=stores,
            n_cities=cities,
            seed=seed,
            malformed_rate=malformed_rate,
        )
    except GeneratorConfigError as e:
        raise fail(f"--{e.option}: {e.problem}", 2) from None


class _Sink(Protocol):
    destination: str

    def write(self, records: list[KeyedRecord]) -> None: ...

    def close(self) -> None: ...


class _FileSink:
    """JSON lines: each record's value on its own line (malformed values hold no newline)."""

    def __init__(self, path: Path) -> None:
        self.destination = str(path)
        try:
            self._file: BinaryIO = path.open("wb")
        except OSError as e:
            raise fail(f"cannot write {path}: {e.strerror}; choose another --out", 1) from None

    def write(self, records: list[KeyedRecord]) -> None:
        self._file.write(b"\n".join(value for _, value in records) + b"\n")

    def close(self) -> None:
        self._file.close()


class _BusSink:
    """The ``payments`` topic of the bus the settings name."""

    def __init__(self, bus: Bus, topic: str, destination: str) -> None:
        self._bus, self._topic, self.destination = bus, topic, destination

    def write(self, records: list[KeyedRecord]) -> None:
        self._bus.publish(self._topic, records)

    def close(self) -> None:
        self._bus.close()


def _open_sink(out: Path | None) -> _Sink:
    if out is not None:
        return _FileSink(out)
    from pulso.bus import open_bus
    from pulso.config import redact_url
    from pulso.domain.events import Topic

    settings = load_settings_or_exit()
    with user_errors():
        bus = open_bus(settings)
    return _BusSink(
        bus, Topic.PAYMENTS, f"topic {Topic.PAYMENTS} on {redact_url(settings.bus_url)}"
    )


def _generate_into(sink: _Sink, config: PaymentsConfig) -> GenerationStats:
    """Stream the records into ``sink`` in batches, under a progress bar; return the counts."""
    from pulso.sources.payments_generator import expected_charges, generate_payment_records

    records = generate_payment_records(config)
    stats = records.stats
    # Two events per charge plus the malformed ones: close enough for a progress bar.
    expected = round(2 * expected_charges(config) * (1 + config.malformed_rate))
    progress, task = progress_bar("payments", expected)
    started_s = time.perf_counter()
    with progress:
        for batch in _batches(records, BATCH_RECORDS):
            sink.write(batch)
            rate = stats.records / max(time.perf_counter() - started_s, 1e-9)
            progress.update(task, advance=len(batch), rate=f"{rate:,.0f} records/s")
        progress.update(task, total=stats.records, completed=stats.records)
    return stats


def _batches(records: Iterable[KeyedRecord], size: int) -> Iterator[list[KeyedRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def _print_summary(
    stats: GenerationStats, config: PaymentsConfig, destination: str, elapsed_s: float
) -> None:
    from datetime import timedelta

    from rich.table import Table

    last_day = config.start + timedelta(days=config.days - 1)
    malformed = ", ".join(f"{kind} {n:,}" for kind, n in sorted(stats.malformed_by_kind.items()))
    table = Table(title="pulso generate payments", show_header=False)
    table.add_row("period", f"{config.start} … {last_day} ({config.days} days, America/Sao_Paulo)")
    table.add_row("stores", f"{stats.stores:,} in {stats.cities:,} cities")
    table.add_row("charges", f"{stats.charges:,}")
    table.add_row(
        "events",
        f"{stats.good_events:,} (confirmed {stats.confirmed:,}, failed {stats.failed:,}, "
        f"expired {stats.expired:,})",
    )
    table.add_row("malformed", f"{stats.malformed:,}" + (f" ({malformed})" if malformed else ""))
    table.add_row("written to", destination)
    table.add_row(
        "took", f"{elapsed_s:.1f} s ({stats.records / max(elapsed_s, 1e-9):,.0f} records/s)"
    )
    console.print(table)


# ---------------------------------------------------------------------------- live mode


def _refuse_day_options(
    days: int | None, start: datetime | None, end: datetime | None, malformed_rate: float
) -> None:
    given = [
        name
        for name, value in (("--days", days), ("--start", start), ("--end", end))
        if value is not None
    ]
    if malformed_rate:
        given.append("--malformed-rate")
    if given:
        raise fail(
            f"{', '.join(given)} belong to the day-based mode; live mode (--rate, --duration, "
            "--payments) sends from now: drop them or the live options",
            2,
        )


def _stream_config(
    rate: str | None,
    duration: str | None,
    payments_count: int | None,
    anomaly_rate: str | None,
    stores: int | None,
    cities: int | None,
    seed: int,
) -> StreamConfig:
    from pulso.sources import GeneratorConfigError
    from pulso.sources.stream_generator import (
        StreamConfig,
        parse_duration_s,
        parse_rate,
        parse_share,
    )

    try:
        duration_s = parse_duration_s(duration) if duration is not None else None
        if duration_s is None and payments_count is None:
            duration_s = 60.0
        return StreamConfig(
            rate=parse_rate(rate) if rate is not None else 1000.0,
            duration_s=duration_s,
            payments=payments_count,
            anomaly_rate=parse_share(anomaly_rate) if anomaly_rate is not None else 0.005,
            n_stores=_or(stores, 200),
            n_cities=_or(cities, 33),
            seed=seed,
        )
    except GeneratorConfigError as e:
        raise fail(f"--{e.option}: {e.problem}", 2) from None


def _live(config: StreamConfig, out: Path | None, clock_start: datetime | None) -> None:
    from pulso.sources.stream_generator import SimulatedClock, generate_stream

    if clock_start is not None and config.rate is None:
        raise fail("--clock-start needs a numeric --rate (a simulated clock cannot run 'max')", 2)
    clock = None
    if clock_start is not None:
        from pulso.sources.payments_generator import LOCAL_TZ

        clock = SimulatedClock(clock_start.replace(tzinfo=LOCAL_TZ))
    sink = _open_sink(out)
    stream = generate_stream(config, clock)
    started_s = time.perf_counter()
    with user_errors():
        try:
            _stream_into(sink, stream, config)
        finally:
            sink.close()
    _print_stream_summary(stream, config, sink.destination, time.perf_counter() - started_s)


def _stream_into(sink: _Sink, stream: StreamGeneration, config: StreamConfig) -> None:
    from pulso.domain.events import encode_event

    expected: int | None = config.payments
    if config.rate is not None and config.duration_s is not None:
        by_time = round(config.rate * config.duration_s)
        expected = by_time if expected is None else min(expected, by_time)
    progress, task = progress_bar("payments", expected)
    started_s = time.perf_counter()
    stats = stream.stats
    with progress:
        for chunk in stream.chunks:
            if chunk:
                sink.write([(e.key.encode(), encode_event(e)) for e in chunk])
            rate = stats.charges / max(time.perf_counter() - started_s, 1e-9)
            progress.update(task, completed=stats.charges, rate=f"{rate:,.0f} payments/s")
        progress.update(task, total=stats.charges, completed=stats.charges)


def _print_stream_summary(
    stream: StreamGeneration, config: StreamConfig, destination: str, elapsed_s: float
) -> None:
    from rich.table import Table

    from pulso.domain.fraud import ANOMALY_KINDS
    from pulso.domain.timefmt import format_local

    stats = stream.stats
    asked = "max" if config.rate is None else f"{config.rate:,.0f}/s"
    per_kind = ", ".join(
        f"{kind} {stats.anomalous_by_kind.get(kind, 0):,} "
        f"({stats.incidents_by_kind.get(kind, 0):,} incidents started)"
        for kind in ANOMALY_KINDS
    )
    share = stats.anomalous / stats.charges if stats.charges else 0.0
    table = Table(title="pulso generate payments (live)", show_header=False)
    table.add_row("stores", f"{stats.stores:,} in {stats.cities:,} cities")
    table.add_row("event times", f"{format_local(stats.first_at)} … {format_local(stats.last_at)}")
    table.add_row("payments", f"{stats.charges:,}")
    table.add_row(
        "events",
        f"{stats.events:,} (confirmed {stats.confirmed:,}, failed {stats.failed:,}, "
        f"expired {stats.expired:,})",
    )
    table.add_row(
        "anomalous",
        f"{stats.anomalous:,} labelled payments ({share:.2%}; asked {config.anomaly_rate:.2%}): "
        f"{per_kind}",
    )
    if share < SHORT_RUN_SHARE * config.anomaly_rate:
        table.add_row(
            "note",
            "anomalies unfold over minutes of event time (a payer visiting several stores, an "
            "impossible trip up to an hour apart, refusals then a success): those still "
            "unfolding when the run ended were cut short, so a run of minutes carries fewer "
            "labelled payments than asked; an hour-long run comes close to the asked share",
        )
    table.add_row("written to", destination)
    table.add_row(
        "rate",
        f"asked {asked}; achieved {stats.achieved_rate:,.0f} payments/s over "
        f"{stats.sending_s:,.1f} s of the clock ({elapsed_s:.1f} s wall, "
        f"{stats.events / max(elapsed_s, 1e-9):,.0f} events/s written)",
    )
    console.print(table)
