"""The windowed aggregation in pulso beside Spark Structured Streaming (local mode), same data,
same machine.

The same generated payments (stream generator, simulated clock) are written as JSON lines
files; Spark reads them as a file stream (``trigger(availableNow=True)``, one file per
micro-batch), with a 5 s watermark, and computes the tumbling 1-minute windows per store (count,
sum, mean, max) into the ``noop`` sink. pulso decodes and validates the same events
(``decode_event``) and runs its windows processor over them — which computes the tumbling and
the sliding 5-minute windows for stores, cities and payment types, 6x the groups Spark is asked
for. Needs ``pip install pyspark`` and Java 17.

    python benchmarks/bench_stream_spark.py [--payments 300000] [--files 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def write_files(directory: Path, payments: int, files: int) -> list[bytes]:
    """The events as JSON lines for Spark (flat columns); returns the encoded events."""
    import orjson

    from pulso.domain.events import encode_event
    from pulso.domain.payments import ChargeCreated

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_stream import generator_events

    _, events = generator_events(payments, 200, 1_000.0, seed=42)
    encoded: list[bytes] = []
    lines: list[bytes] = []
    for event in events:
        if event.type != "pix.charge.created":
            continue
        data: ChargeCreated = event.data
        encoded.append(encode_event(event))
        lines.append(
            orjson.dumps(
                {
                    "created_at": data.created_at.isoformat(),
                    "store_id": data.store_id,
                    "city": f"{data.city}/{data.uf}",
                    "payment_type": data.payment_type,
                    "amount_cents": int(data.amount * 100),
                }
            )
        )
    directory.mkdir(parents=True)
    per_file = -(-len(lines) // files)
    for i in range(files):
        chunk = lines[i * per_file : (i + 1) * per_file]
        (directory / f"part-{i:04d}.json").write_bytes(b"\n".join(chunk) + b"\n")
    return encoded


def run_pulso(encoded: list[bytes], batch: int) -> float:
    from pulso.domain.events import decode_event
    from pulso.pipeline.processors.windows import WindowsProcessor
    from pulso.pipeline.windows import WindowConfig

    class DiscardTx:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: 0

    processor = WindowsProcessor(WindowConfig(partitions=1))
    tx: Any = DiscardTx()
    started = time.perf_counter()
    for i in range(0, len(encoded), batch):
        events = [decode_event(v) for v in encoded[i : i + batch]]
        processor.process(events, tx)
    return time.perf_counter() - started


def run_spark(directory: Path, checkpoint: Path) -> tuple[float, float]:
    """(seconds to start the session, seconds for the query)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("pulso-bench")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - started
    schema = StructType(
        [
            StructField("created_at", TimestampType()),
            StructField("store_id", StringType()),
            StructField("city", StringType()),
            StructField("payment_type", StringType()),
            StructField("amount_cents", LongType()),
        ]
    )
    stream = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).json(str(directory))
    windows = (
        stream.withWatermark("created_at", "5 seconds")
        .groupBy(F.window("created_at", "1 minute"), "store_id")
        .agg(
            F.count("*").alias("events"),
            F.sum("amount_cents").alias("amount_cents"),
            F.avg("amount_cents").alias("mean_cents"),
            F.max("amount_cents").alias("max_cents"),
        )
    )
    started = time.perf_counter()
    query = (
        windows.writeStream.outputMode("append")
        .format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds = time.perf_counter() - started
    spark.stop()
    return startup, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=300_000)
    parser.add_argument("--files", type=int, default=15, help="Spark micro-batches (files)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        encoded = write_files(Path(tmp) / "in", args.payments, args.files)
        n = len(encoded)
        print(f"{n:,} payments in {args.files} files; load {os.getloadavg()[0]:.2f} on 2 CPUs")
        pulso_s = run_pulso(encoded, -(-n // args.files))
        startup, spark_s = run_spark(Path(tmp) / "in", Path(tmp) / "checkpoint")
    print(f"pulso (decode+validate+windows, 6 window sets): {n / pulso_s:>10,.0f} payments/s")
    print(
        f"Spark Structured Streaming (1 window set)     : {n / spark_s:>10,.0f} payments/s "
        f"(+{startup:.1f} s to start the session)"
    )
    print(f"ratio pulso/Spark: {spark_s / pulso_s:.1f}x")


if __name__ == "__main__":
    main()
