"""A SparkSession set up for pulso: small shuffles, no UI, UTC, the venv's Python."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pulso.spark import check_available, python_for_workers


def spark_session(
    master: str = "local[2]",
    app_name: str = "pulso",
    *,
    shuffle_partitions: int = 4,
    conf: Mapping[str, str] | None = None,
) -> Any:
    """Start (or reuse) a SparkSession; raises SparkUnavailableError without pyspark/Java."""
    check_available()
    python = python_for_workers()
    os.environ.setdefault("PYSPARK_PYTHON", python)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", python)
    import warnings

    from pyspark.sql import SparkSession

    # pyspark warns about pandas 3 when it loads; pulso's jobs do not use its pandas API.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def has_kafka_connector(spark: Any) -> bool:
    """Whether Spark's own Kafka connector (spark-sql-kafka) is on the classpath."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.java.lang.Class.forName("org.apache.spark.sql.kafka010.KafkaSourceProvider")
    except Exception:
        return False
    return True


def stop_session(spark: Any) -> None:
    """Stop the session and its JVM gateway (the CLI's last step: the Python callbacks of
    ``foreachBatch`` are released before the interpreter exits)."""
    import gc

    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
    gc.collect()
