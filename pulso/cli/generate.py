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

app = typer.Typer(no_args_is_help=True, add_completion=False)

BATCH_RECORDS = 10_000
_DATE_FORMATS = ["%Y-%m-%d"]


@app.callback()
def _group() -> None:
    """Generate synthetic traffic and datasets."""


@app.command("payments")
def payments(
    days: Annotated[int, typer.Option(help="Length of the period, in days.")] = 7,
    stores: Annotated[int, typer.Option(help="Number of stores.")] = 20,
    cities: Annotated[int, typer.Option(help="Number of cities the stores spread over.")] = 8,
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
) -> None:
    """Synthetic PIX charges for stores across Brazil.

    Each charge is created, then confirmed, failed or expired, following daily and weekly
    curves per store type. Write them to a JSONL file (--out) or publish them (--to-bus).
    """
    if (out is None) == (not to_bus):
        raise fail("say where the events go: --out FILE.jsonl or --to-bus (exactly one)", 2)
    config = _payments_config(days, stores, cities, seed, malformed_rate, _day(start), _day(end))
    sink = _open_sink(out)
    started_s = time.perf_counter()
    with user_errors():
        try:
            stats = _generate_into(sink, config)
        finally:
            sink.close()
    _print_summary(stats, config, sink.destination, time.perf_counter() - started_s)


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
