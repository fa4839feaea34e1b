"""The Spark payments streaming job in local mode, on the Kafka mock cluster, against the
pipeline's own windows on the same generated payments."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from spark_support import produce, spark, spark_skip_reason, stream_events

from pulso.domain.events import Event, Topic
from pulso.domain.payments import ChargeCreated
from pulso.pipeline.processors.windows import to_batch, to_us
from pulso.pipeline.windows import TUMBLING, WindowConfig, WindowState

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.skipif(spark_skip_reason() is not None, reason=str(spark_skip_reason())),
]
__all__ = ["spark"]

WindowKey = tuple[str, str, int]  # dimension, key, start (µs)
WindowValue = tuple[int, int, int]  # events, sum, max (centavos)


def pulso_final_windows(events: list[Event]) -> dict[WindowKey, WindowValue]:
    """The pipeline's windows state machine over the same charges (one watermark, as Spark's):
    the tumbling windows it has made final."""
    charges = [e.data for e in events if type(e.data) is ChargeCreated]
    state = WindowState(WindowConfig(partitions=1))
    latest = max(c.created_at for c in charges)
    outcome = state.apply(to_batch(charges, ["-"] * len(charges)), to_us(latest) + 10**9)
    assert state.late == 0 and state.future == 0
    return {
        (r.dimension, r.key, r.start_us): (r.events, r.amount_cents, r.max_cents)
        for r in outcome.rows
        if r.kind == TUMBLING and r.final
    }


def parquet_windows(spark: Any, path: Path) -> dict[WindowKey, WindowValue]:
    rows = spark.read.parquet(str(path)).collect()
    found: dict[WindowKey, WindowValue] = {}
    for r in rows:
        key = (r["dimension"], r["key"], to_us(r["window_start"].replace(tzinfo=UTC)))
        assert key not in found, f"window {key} written twice"
        found[key] = (r["events"], r["amount_cents"], r["max_cents"])
    return found


def job(brokers: str, tmp: Path, **overrides: Any) -> Any:
    from pulso.spark.stream_payments import StreamJob

    values: dict[str, Any] = {
        "brokers": brokers,
        "checkpoint": str(tmp / "checkpoint"),
        "windows_sink": "parquet",
        "windows_path": str(tmp / "windows"),
        "use_connector": False,
    }
    values.update(overrides)
    return StreamJob(**values)


def high_watermarks(brokers: str, topic: str) -> dict[str, int]:
    from pulso.spark.kafka_source import KafkaOptions, watermarks

    marks = watermarks(KafkaOptions(brokers, topic))
    return {str(p): high for p, (_, high) in marks.items()}


def test_windows_equal_the_pipeline_and_a_restart_reads_only_new_offsets(
    spark: Any, kafka_cluster: str, tmp_path: Path, settings_factory: Any
) -> None:
    from pulso.archive.archiver import read_archive
    from pulso.buckets import open_bucket
    from pulso.buckets.urls import file_url
    from pulso.spark.stream_payments import run_stream_payments

    events = stream_events(1_600)  # 160 s of event time over 20 stores
    half = len(events) // 2
    settings = settings_factory()
    archive = file_url(tmp_path / "archive")
    produce(kafka_cluster, events[:half])
    first = run_stream_payments(
        spark, job(kafka_cluster, tmp_path, archive_url=archive), settings, timeout_s=240
    )
    assert first.source == "pulso_kafka"
    assert first.offsets["partitions"] == high_watermarks(kafka_cluster, Topic.PAYMENTS)
    assert first.archived == half

    # What is not an event (bad JSON, an unknown type) is left out, not a crash.
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_cluster})
    producer.produce(Topic.PAYMENTS, b"{not json")
    producer.produce(Topic.PAYMENTS, b'{"type": "pix.charge.created", "data": {}}')
    producer.flush(10)
    produce(kafka_cluster, events[half:])
    second = run_stream_payments(
        spark, job(kafka_cluster, tmp_path, archive_url=archive), settings, timeout_s=240
    )
    assert second.offsets["partitions"] == high_watermarks(kafka_cluster, Topic.PAYMENTS)
    # The restart read only what came after the checkpointed offsets.
    assert second.archived == len(events) - half
    assert sum(b.rows for b in second.archive_batches) == len(events) - half + 2

    expected = pulso_final_windows(events)
    found = parquet_windows(spark, tmp_path / "windows")
    assert found == expected
    assert len(found) > 20
    charges = [e.data for e in events if type(e.data) is ChargeCreated]
    latest = max(c.created_at for c in charges)
    # Every store's windows ending by the watermark are there, and their sum is the charges'.
    closed = [c for c in charges if c.created_at < _minute(latest - timedelta(seconds=65))]
    per_store = sum(v[0] for k, v in found.items() if k[0] == "store")
    assert per_store == len(closed)

    archived = read_archive(open_bucket(archive, settings))
    ids = Counter(archived.column("event_id").to_pylist())
    assert len(ids) == len(events) and max(ids.values()) == 1


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@pytest.mark.postgres
def test_windows_are_upserted_into_stream_windows_on_postgresql(
    spark: Any, kafka_cluster: str, tmp_path: Path, settings_factory: Any, postgres_url: str
) -> None:
    import psycopg

    from pulso.spark.stream_payments import run_stream_payments

    events = stream_events(900, seed=11)
    produce(kafka_cluster, events)
    settings = settings_factory(store_url=postgres_url)
    report = run_stream_payments(
        spark, job(kafka_cluster, tmp_path, windows_sink="store"), settings, timeout_s=240
    )
    expected = pulso_final_windows(events)
    assert report.windows_written == len(expected)
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT dimension, key, window_start, events, amount_cents, max_cents, mean_cents,"
            " final, kind FROM stream_windows"
        ).fetchall()
    found = {(d, k, to_us(s)): (n, a, m) for d, k, s, n, a, m, _, _, _ in rows}
    assert found == expected
    for _, _, _, n, a, _, mean, final, kind in rows:
        assert kind == TUMBLING and final
        assert abs(mean * n - a) <= n  # the mean, to the centavo


def test_data_loss_fails_the_query_or_warns_as_asked(
    spark: Any, kafka_cluster: str, tmp_path: Path, settings_factory: Any
) -> None:
    """The mock cluster keeps ~5 MB per partition: producing more drops the oldest records
    the query has not read yet."""
    from confluent_kafka import Producer

    from pulso.spark.kafka_source import KafkaOptions, watermarks
    from pulso.spark.stream_payments import run_stream_payments

    topic = "lossy"
    producer = Producer({"bootstrap.servers": kafka_cluster, "linger.ms": 5})
    for i in range(4):
        producer.produce(topic, b"small %d" % i, partition=0)
    producer.flush(10)
    settings = settings_factory()
    run_stream_payments(spark, job(kafka_cluster, tmp_path, topic=topic), settings, timeout_s=120)
    blob = b"x" * 200_000
    for _ in range(60):  # 12 MB into partition 0
        producer.produce(topic, blob, partition=0)
        producer.poll(0)
    producer.flush(30)
    earliest = watermarks(KafkaOptions(kafka_cluster, topic))[0][0]
    assert earliest > 4, "the mock cluster kept everything: no data loss to test"

    with pytest.raises(Exception, match=r"offsets 4\.\.\d+ are not available"):
        run_stream_payments(
            spark, job(kafka_cluster, tmp_path, topic=topic), settings, timeout_s=120
        )
    report = run_stream_payments(
        spark,
        job(kafka_cluster, tmp_path, topic=topic, fail_on_data_loss=False),
        settings,
        timeout_s=120,
    )
    assert report.offsets["partitions"]["0"] == watermarks(KafkaOptions(kafka_cluster, topic))[0][1]
