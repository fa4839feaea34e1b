"""The Kafka data source's options and offset arithmetic (no JVM needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pulso[spark]')")

from pulso.spark.kafka_source import (
    DataLossError,
    KafkaOptions,
    KafkaRange,
    _capped,
    data_loss,
    offset_json,
    positions_of,
)


def test_options_parse_like_sparks_connector() -> None:
    options = KafkaOptions.parse(
        {
            "kafka.bootstrap.servers": "a:9092,b:9092",
            "subscribe": "payments",
            "failOnDataLoss": "false",
            "maxOffsetsPerTrigger": "500",
            "kafka.security.protocol": "PLAINTEXT",
        }
    )
    assert options.brokers == "a:9092,b:9092" and options.topic == "payments"
    assert not options.fail_on_data_loss and options.max_offsets_per_trigger == 500
    config = options.consumer_config()
    assert config["security.protocol"] == "PLAINTEXT"
    assert config["enable.auto.commit"] is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"subscribe": "payments"}, "kafka.bootstrap.servers"),
        ({"kafka.bootstrap.servers": "a:1"}, "subscribe"),
        ({"kafka.bootstrap.servers": "a:1", "subscribe": "a,b"}, "exactly one topic"),
        (
            {"kafka.bootstrap.servers": "a:1", "subscribe": "t", "startingOffsets": "middle"},
            "earliest or latest",
        ),
        (
            {"kafka.bootstrap.servers": "a:1", "subscribe": "t", "failOnDataLoss": "maybe"},
            "true or false",
        ),
        (
            {"kafka.bootstrap.servers": "a:1", "subscribe": "t", "maxOffsetsPerTrigger": "0"},
            "at least 1",
        ),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KafkaOptions.parse(options)


def test_offsets_round_trip_through_json() -> None:
    offset = offset_json("payments", {1: 98, 0: 120})
    assert offset == {"topic": "payments", "partitions": {"0": 120, "1": 98}}
    assert positions_of(offset) == {0: 120, 1: 98}


def test_the_cap_is_shared_over_partitions_and_never_exceeded() -> None:
    start = {0: 10, 1: 0, 2: 5}
    latest = {0: 110, 1: 300, 2: 5, 3: 50}  # partition 3 is new: from 0
    capped = _capped(start, latest, 100)
    assert sum(capped[p] - start.get(p, 0) for p in capped) == 100
    assert all(start.get(p, 0) <= capped[p] <= latest[p] for p in latest)
    assert capped[2] == 5
    assert _capped(start, latest, 10_000) == latest


def test_data_loss_fails_or_continues_from_the_earliest_offset() -> None:
    strict = KafkaOptions("a:1", "payments")
    with pytest.raises(DataLossError, match=r"payments/3: offsets 10\.\.39 are not available"):
        data_loss(strict, 3, 10, 40, "deleted")
    lenient = KafkaOptions("a:1", "payments", fail_on_data_loss=False)
    assert data_loss(lenient, 3, 10, 40, "deleted") == 40


def test_an_input_partition_is_one_exact_range() -> None:
    part = KafkaRange("payments", 2, 100, 250)
    assert (part.topic, part.partition, part.start, part.end) == ("payments", 2, 100, 250)
