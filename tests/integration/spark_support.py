"""Shared pieces of the Spark tests: the skip reason, one SparkSession, generated payments."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pulso.domain.events import Event, Topic, encode_event


def spark_skip_reason() -> str | None:
    """Why the Spark tests cannot run here (None: they can)."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'pulso[spark]')"
    from pulso.spark import SparkUnavailableError, check_available

    try:
        check_available()
    except SparkUnavailableError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession for every Spark test (it takes ~5 s and ~1 GB to start)."""
    reason = spark_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from pulso.spark.session import spark_session

    session = spark_session("local[2]", "pulso-tests", shuffle_partitions=2)
    yield session
    session.stop()


def stream_events(payments: int, *, rate: float = 10.0, seed: int = 7) -> list[Event]:
    """The stream generator's events on a simulated clock (``payments`` / ``rate`` seconds)."""
    from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream

    config = StreamConfig(rate=rate, duration_s=None, payments=payments, n_stores=20, seed=seed)
    clock = SimulatedClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    return list(generate_stream(config, clock))


def produce(brokers: str, events: list[Event], topic: str = Topic.PAYMENTS) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for event in events:
        producer.produce(topic, encode_event(event), event.key.encode())
        producer.poll(0)
    assert producer.flush(30) == 0
