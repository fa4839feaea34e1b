"""``pulso fraud``: measure the fraud detector on labelled synthetic traffic."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, user_errors

if TYPE_CHECKING:
    from pulso.fraud.evaluate import Evaluation
    from pulso.fraud.thresholds import FraudThresholds

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Fraud detection: evaluate the detector on labelled traffic."""


@app.command("evaluate")
def evaluate(
    payments: Annotated[int, typer.Option(help="Payments to generate over one simulated day.")] = (
        200_000
    ),
    anomaly_rate: Annotated[
        str, typer.Option(help="Share of labelled anomalous payments (1% or 0.01).")
    ] = "1%",
    seed: Annotated[int, typer.Option(help="Random seed of the traffic.")] = 42,
    stores: Annotated[int, typer.Option(help="Number of stores.")] = 200,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a threshold, NAME=VALUE (repeatable), e.g. card_testing_count=10; "
            "the others come from the PULSO_FRAUD_* settings.",
        ),
    ] = None,
) -> None:
    """Run labelled traffic through the detector; print precision, recall and F1 per anomaly
    kind and overall, false alarms per 10,000 normal payments, and alert latency."""
    from pulso.fraud.evaluate import evaluate as run_evaluation
    from pulso.fraud.evaluate import evaluation_config, labelled_events
    from pulso.sources import GeneratorConfigError
    from pulso.sources.stream_generator import parse_share

    if not 1_000 <= payments <= 20_000_000:
        raise fail(f"--payments: must be 1,000..20,000,000, got {payments:,}", 2)
    thresholds = _thresholds(threshold or [])
    try:
        config = evaluation_config(payments, parse_share(anomaly_rate), seed, stores)
    except GeneratorConfigError as e:
        raise fail(f"--{e.option}: {e.problem}", 2) from None
    with user_errors(), console.status("generating labelled traffic…"):
        started = time.perf_counter()
        events = labelled_events(config)
        generated_s = time.perf_counter() - started
    with user_errors(), console.status(f"scoring {len(events):,} events…"):
        result = run_evaluation(events, thresholds)
    _print(result, seed, config.anomaly_rate, generated_s)


def _thresholds(items: list[str]) -> FraudThresholds:
    from pulso.cli.output import load_settings_or_exit
    from pulso.fraud import FraudConfigError
    from pulso.fraud.thresholds import parse_overrides, thresholds_from_settings

    settings = load_settings_or_exit()
    try:
        return thresholds_from_settings(settings).replace(parse_overrides(items))
    except FraudConfigError as e:
        raise fail(f"--set {e}", 2) from None


def _print(result: Evaluation, seed: int, anomaly_rate: float, generated_s: float) -> None:
    from rich.table import Table

    from pulso.fraud.evaluate import BATCH_EVENTS, percentile

    table = Table(
        title=f"pulso fraud evaluate — {result.payments:,} payments, seed {seed}, "
        f"anomaly rate {anomaly_rate:.2%}"
    )
    for column in ("kind", "labelled", "flagged", "named", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, score in result.by_kind.items():
        table.add_row(
            kind,
            f"{score.labelled:,}",
            f"{score.detected:,}",
            f"{score.predicted:,}",
            f"{score.precision:.3f}",
            f"{score.recall:.3f}",
            f"{score.f1:.3f}",
        )
    o = result.overall
    table.add_row(
        "[bold]overall[/]",
        f"{o.labelled:,}",
        f"{o.detected:,}",
        f"{o.predicted:,}",
        f"[bold]{o.precision:.3f}[/]",
        f"[bold]{o.recall:.3f}[/]",
        f"[bold]{o.f1:.3f}[/]",
    )
    console.print(table)
    delays, batches = result.delays_s, result.batch_latencies_s
    console.print(
        f"false alarms: {result.false_alarms:,} of {result.normal:,} normal payments "
        f"= {result.false_alarms_per_10k:.2f} per 10,000\n"
        f"alerts raised: {result.alerts:,}\n"
        f"detection delay (event time, payment to its alert): p50 {percentile(delays, 0.5):.1f} s, "
        f"p99 {percentile(delays, 0.99):.1f} s, max {max(delays, default=0.0):.1f} s "
        "(0 when the payment itself raised the alert; earlier charges of a pattern wait for it)\n"
        f"processing latency (a batch of {BATCH_EVENTS:,} events in, its alerts out): "
        f"p50 {1000 * percentile(batches, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(batches, 0.99):.1f} ms\n"
        f"detector: {result.payments_per_s:,.0f} payments/s "
        f"({result.events / max(result.detector_seconds, 1e-9):,.0f} events/s); "
        f"traffic generated in {generated_s:.1f} s",
        soft_wrap=True,
    )
