"""The payments Structured Streaming job: event-time windows and the raw archive, from Kafka.

Two queries over the ``payments`` topic, each with its own checkpoint folder:

- **windows** (``<checkpoint>/windows``): every ``pix.charge.created`` event is decoded and
  validated with pulso's own decoder (:func:`pulso.domain.events.decode_event`, invalid
  events are left out, as the pipeline's dead-letter table keeps them); its event time is
  ``ChargeCreated.created_at``, as in the pipeline's windows processor. Tumbling 1-minute
  windows per store, city (``city/UF``) and payment type hold count, sum and max of the
  amounts in centavos, with a watermark of ``out_of_orderness + allowed_lateness`` (5 s +
  60 s by default, ``PULSO_WINDOW_*``). Output mode *append*: a window is written once, when
  the watermark passes its end, i.e. when the pipeline would mark it ``final``. The sink is
  ``foreachBatch``: an upsert into the store's ``stream_windows`` table (the same rows the
  pipeline writes, ``kind = tumbling_1m``, ``final = true``) or one Parquet folder per batch
  id (``<path>/batch_id=N``, overwritten when a batch is replayed). Both are idempotent per
  batch id: a batch replayed after a crash writes the same windows again.
- **archive** (``<checkpoint>/archive``): every record, decoded as an envelope, into the raw
  Parquet archive with pulso's layout and part names (:mod:`pulso.archive.layout`, via
  :func:`pulso.archive.archiver.archive_messages`): a replayed batch covers the same offsets,
  so it rewrites the same parts.

Differences from the pipeline's windows (docs/spark.md): Spark's watermark is one for the
stream (latest event time of any partition minus the delay) where the pipeline keeps one per
bus partition; Spark drops an event whose window already passed the watermark where the
pipeline records it in ``stream_late_events``; and the sliding 5-minute windows are not
computed here (``kind = tumbling_1m`` only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa

from pulso.config import Settings

log = logging.getLogger(__name__)

CHARGES_SCHEMA: Final = (
    "partition int, offset long, event_time timestamp, store_id string, city string, "
    "payment_type string, amount_cents long"
)
_ARROW_CHARGES: Final = pa.schema(
    [
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("store_id", pa.string()),
        pa.field("city", pa.string()),
        pa.field("payment_type", pa.string()),
        pa.field("amount_cents", pa.int64()),
    ]
)
WINDOW_KIND: Final = "tumbling_1m"


@dataclass(slots=True)
class StreamJob:
    """What the payments job reads, where it keeps its state and where it writes."""

    brokers: str
    checkpoint: str
    topic: str = "payments"
    windows_sink: str = "store"  # "store" (stream_windows) or "parquet"
    windows_path: str | None = None  # the Parquet folder, for windows_sink="parquet"
    archive_url: str | None = None  # None: no archive query
    watermark_s: float = 65.0
    fail_on_data_loss: bool = True
    max_offsets_per_trigger: int | None = None
    available_now: bool = True  # False: run continuously, a micro-batch every trigger_s
    trigger_s: float = 1.0
    use_connector: bool | None = None  # None: Spark's connector when on the classpath


@dataclass(slots=True)
class BatchStats:
    batch_id: int
    rows: int
    seconds: float


@dataclass(slots=True)
class StreamReport:
    windows_batches: list[BatchStats] = field(default_factory=list)
    archive_batches: list[BatchStats] = field(default_factory=list)
    windows_written: int = 0
    archived: int = 0
    source: str = ""
    offsets: dict[str, Any] = field(default_factory=dict)
    progress: list[dict[str, Any]] = field(default_factory=list)
    """The windows query's recent micro-batches (Spark's progress reports: durations, rows)."""


# --------------------------------------------------------------------------------- reading


def read_kafka(spark: Any, job: StreamJob) -> tuple[Any, str]:
    """The raw records (Spark's Kafka columns) and which reader provides them."""
    from pulso.spark.kafka_source import NAME, register
    from pulso.spark.session import has_kafka_connector

    use_connector = job.use_connector
    if use_connector is None:
        use_connector = has_kafka_connector(spark)
    if use_connector:
        fmt = "kafka"
    else:
        register(spark)
        fmt = NAME
    reader = (
        spark.readStream.format(fmt)
        .option("kafka.bootstrap.servers", job.brokers)
        .option("subscribe", job.topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", str(job.fail_on_data_loss).lower())
    )
    if job.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(job.max_offsets_per_trigger))
    return reader.load(), fmt


def decode_charges(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: raw records to the charges created (invalid events left out)."""
    from pulso.domain.events import decode_event
    from pulso.domain.payments import ChargeCreated
    from pulso.errors import InvalidEventError

    for batch in batches:
        values = batch.column("value").to_pylist()
        partitions = batch.column("partition").to_pylist()
        offsets = batch.column("offset").to_pylist()
        out: dict[str, list[Any]] = {name: [] for name in _ARROW_CHARGES.names}
        for value, partition, offset in zip(values, partitions, offsets, strict=True):
            if value is None or b'"pix.charge.created"' not in value:
                continue  # other payment events carry no store nor amount
            try:
                event = decode_event(value)
            except InvalidEventError:
                continue
            data = event.data
            if type(data) is not ChargeCreated:
                continue
            out["partition"].append(partition)
            out["offset"].append(offset)
            out["event_time"].append(data.created_at)
            out["store_id"].append(data.store_id)
            out["city"].append(f"{data.city}/{data.uf}")
            out["payment_type"].append(data.payment_type)
            out["amount_cents"].append(int(data.amount * 100))
        yield pa.RecordBatch.from_pydict(out, schema=_ARROW_CHARGES)


def window_aggregates(charges: Any, watermark_s: float) -> Any:
    """Tumbling 1-minute windows per store, city and payment type, with the watermark."""
    from pyspark.sql import functions as F

    dims = F.array(
        F.struct(F.lit("store").alias("dimension"), F.col("store_id").alias("key")),
        F.struct(F.lit("city").alias("dimension"), F.col("city").alias("key")),
        F.struct(F.lit("payment_type").alias("dimension"), F.col("payment_type").alias("key")),
    )
    return (
        charges.withWatermark("event_time", f"{int(watermark_s * 1000)} milliseconds")
        .select("event_time", "amount_cents", F.explode(dims).alias("d"))
        .groupBy(F.window("event_time", "1 minute"), F.col("d.dimension"), F.col("d.key"))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum("amount_cents").alias("amount_cents"),
            F.max("amount_cents").alias("max_cents"),
        )
        .select(
            F.col("dimension"),
            F.col("key"),
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "events",
            "amount_cents",
            "max_cents",
        )
    )


# ----------------------------------------------------------------------------------- sinks


def window_rows(table: pa.Table) -> list[Any]:
    """Spark's window rows as the pipeline's ``WindowRow`` (final: emitted past the
    watermark)."""
    from pulso.pipeline.processors.windows import to_us
    from pulso.pipeline.windows import WindowRow

    return [
        WindowRow(
            WINDOW_KIND,
            r["dimension"],
            r["key"],
            to_us(_utc(r["window_start"])),
            to_us(_utc(r["window_end"])),
            int(r["events"]),
            int(r["amount_cents"]),
            int(r["max_cents"]),
            True,
        )
        for r in table.to_pylist()
    ]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class StoreWindowSink:
    """Upsert each batch's windows into ``stream_windows`` (one transaction per batch)."""

    def __init__(self, settings: Settings, report: StreamReport) -> None:
        from pulso.store import open_store

        self.store = open_store(settings)
        self.report = report

    def __call__(self, frame: Any, batch_id: int) -> None:
        from pulso.pipeline.processors.windows import window_columns
        from pulso.store.tables import STREAM_WINDOWS

        started = time.perf_counter()
        rows = window_rows(frame.toArrow())
        if rows:
            with self.store.transaction() as tx:
                tx.upsert(STREAM_WINDOWS, window_columns(rows))
        self.report.windows_written += len(rows)
        self.report.windows_batches.append(
            BatchStats(batch_id, len(rows), time.perf_counter() - started)
        )

    def close(self) -> None:
        self.store.close()


class ParquetWindowSink:
    """Each batch's windows in ``<path>/batch_id=N`` (overwritten when replayed)."""

    def __init__(self, path: str, report: StreamReport) -> None:
        self.path = path.rstrip("/")
        self.report = report

    def __call__(self, frame: Any, batch_id: int) -> None:
        started = time.perf_counter()
        frame = frame.cache()
        try:
            rows = frame.count()
            if rows:  # foreachBatch also runs for the empty batches the watermark triggers
                frame.coalesce(1).write.mode("overwrite").parquet(
                    f"{self.path}/batch_id={batch_id}"
                )
        finally:
            frame.unpersist()
        self.report.windows_written += rows
        self.report.windows_batches.append(
            BatchStats(batch_id, rows, time.perf_counter() - started)
        )

    def close(self) -> None:
        pass


class ArchiveSink:
    """Each batch's records into the raw Parquet archive, with pulso's layout."""

    def __init__(self, url: str, settings: Settings, report: StreamReport) -> None:
        from pulso.buckets import open_bucket

        self.bucket = open_bucket(url, settings, create=True)
        self.report = report

    def __call__(self, frame: Any, batch_id: int) -> None:
        from pulso.archive.archiver import archive_messages
        from pulso.bus.protocol import Message

        started = time.perf_counter()
        table = frame.select("topic", "partition", "offset", "key", "value").toArrow()
        messages = [
            Message(r["topic"], r["partition"], r["offset"], r["key"], r["value"])
            for r in table.to_pylist()
        ]
        archived = 0
        if messages:
            archived = archive_messages(self.bucket, messages, datetime.now(UTC)).archived
        self.report.archived += archived
        self.report.archive_batches.append(
            BatchStats(batch_id, len(messages), time.perf_counter() - started)
        )

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------- run


def run_stream_payments(
    spark: Any,
    job: StreamJob,
    settings: Settings,
    *,
    timeout_s: float | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> StreamReport:
    """Run both queries; with ``available_now`` until the topic's current end is processed,
    otherwise until ``timeout_s`` (None: until interrupted)."""
    raw, fmt = read_kafka(spark, job)
    report = StreamReport(source=fmt)
    charges = raw.select("value", "partition", "offset").mapInArrow(decode_charges, CHARGES_SCHEMA)
    windows = window_aggregates(charges, job.watermark_s)
    sink: StoreWindowSink | ParquetWindowSink
    if job.windows_sink == "parquet":
        if not job.windows_path:
            raise ValueError("the parquet windows sink needs a path")
        sink = ParquetWindowSink(job.windows_path, report)
    elif job.windows_sink == "store":
        sink = StoreWindowSink(settings, report)
    else:
        raise ValueError(f"unknown windows sink {job.windows_sink!r} (store or parquet)")
    queries: list[Any] = []
    sinks: list[Any] = [sink]
    try:
        writer = (
            windows.writeStream.outputMode("append")
            .foreachBatch(sink)
            .option("checkpointLocation", f"{job.checkpoint.rstrip('/')}/windows")
            .queryName("pulso_windows")
        )
        queries.append(_trigger(writer, job).start())
        if job.archive_url:
            archive = ArchiveSink(job.archive_url, settings, report)
            sinks.append(archive)
            archive_writer = (
                raw.writeStream.foreachBatch(archive)
                .option("checkpointLocation", f"{job.checkpoint.rstrip('/')}/archive")
                .queryName("pulso_archive")
            )
            queries.append(_trigger(archive_writer, job).start())
        _wait(queries, job, timeout_s, on_progress)
        report.progress = [_progress_dict(p) for p in queries[0].recentProgress]
        with_data = [p for p in report.progress if p.get("sources")]
        if with_data:
            report.offsets = _json(with_data[-1]["sources"][0].get("endOffset"))
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
        for s in sinks:
            s.close()
    return report


def _trigger(writer: Any, job: StreamJob) -> Any:
    if job.available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{int(job.trigger_s * 1000)} milliseconds")


def _wait(
    queries: list[Any],
    job: StreamJob,
    timeout_s: float | None,
    on_progress: Callable[[str], None] | None,
) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    shown = -1
    for query in queries:
        while True:
            left = 5.0 if deadline is None else min(5.0, deadline - time.monotonic())
            if left <= 0:
                break
            done = query.awaitTermination(max(1, round(left)))
            if done:
                break
            p = query.lastProgress
            if on_progress is not None and p and p["batchId"] != shown and p["numInputRows"]:
                shown = p["batchId"]
                on_progress(
                    f"{query.name}: batch {p['batchId']}, {p['numInputRows']} rows, "
                    f"{p.get('processedRowsPerSecond') or 0:.0f} rows/s"
                )
        if query.exception() is not None:
            raise RuntimeError(f"Spark query {query.name} failed: {query.exception()}")


def _progress_dict(progress: Any) -> dict[str, Any]:
    """A progress report as plain JSON data (Spark 4 returns objects that also act as dicts)."""
    import json

    text = getattr(progress, "json", None)
    if isinstance(text, str):
        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else {}
    return dict(progress)


def _json(value: Any) -> dict[str, Any]:
    import json

    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return value if isinstance(value, dict) else {}
