"""The ``pulso`` command line. Each command group lives in its own module; heavy libraries
are imported inside the commands so that ``pulso --help`` stays fast."""

from __future__ import annotations

import typer

from pulso.cli import (
    alerts,
    archive,
    config_cmd,
    dashboard,
    deadletter,
    demo,
    doctor,
    etl,
    events,
    fraud,
    generate,
    maintenance,
    market,
    orders,
    pdv,
    pix,
    query,
    report,
    run,
    sales,
    serve,
    spark,
    windows,
    worker,
)

app = typer.Typer(
    name="pulso",
    help="Real-time payments and sales intelligence for Brazilian merchants.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.command("demo")(demo.demo)
app.command("config")(config_cmd.config)
app.command("run")(run.run)
app.command("up")(serve.serve)
app.command("worker")(worker.worker)
app.command("pdv")(pdv.pdv)
app.command("dashboard")(dashboard.dashboard)
app.command("doctor")(doctor.doctor)
app.add_typer(generate.app, name="generate", help="Generate synthetic traffic and datasets.")
app.add_typer(deadletter.app, name="deadletter", help="Inspect and replay dead-lettered events.")
app.add_typer(pix.app, name="pix", help="Build, decode and draw PIX BR Codes.")
app.add_typer(report.app, name="report", help="Payment reports (heatmaps, HTML, PDF): build, send.")
app.add_typer(events.app, name="events", help="Export PIX events as JSON files and PDFs; receipts.")
app.add_typer(sales.app, name="sales", help="Daily sales files (CSV) for the sales ETL.")
app.add_typer(etl.app, name="etl", help="Load daily sales files into the store, once each.")
app.add_typer(fraud.app, name="fraud", help="Fraud detection: evaluate on labelled traffic.")
app.add_typer(archive.app, name="archive", help="The raw event archive (Parquet by date and hour).")
app.add_typer(maintenance.app, name="maintenance", help="Retention, backups and restores.")
app.add_typer(orders.app, name="orders", help="E-commerce orders: generate a CSV, publish it.")
app.command("query")(query.query)
app.add_typer(market.app, name="market", help="Mercado Livre best sellers: sync, trends, alerts.")
app.add_typer(alerts.app, name="alerts", help="Throttled alerts: dispatch to channels, list.")
app.add_typer(windows.app, name="windows", help="Event-time windows of the payment stream.")
app.add_typer(spark.app, name="spark", help="Apache Spark jobs (pulso[spark]): stream, batch.")


def main() -> None:
    app()
