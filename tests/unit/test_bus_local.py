"""The embedded bus: framing, partitioning, ordering, groups, offsets, recovery, corruption."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pulso.bus import Message, next_offsets, open_bus
from pulso.bus.local import LocalBus, LocalConsumer, encode_batch, partition_of
from pulso.bus.protocol import Record
from pulso.config import Settings
from pulso.errors import BusError


def segment(root: Path, topic: str, partition: int, base: int = 0) -> Path:
    return root / topic / str(partition) / f"{base:020d}.log"


def drain(consumer: LocalConsumer, commit: bool = False) -> list[Message]:
    """Everything the consumer can read now (committing each batch if asked)."""
    out: list[Message] = []
    while batch := consumer.poll_batch(1000, 0.0):
        out.extend(batch)
        if commit:
            consumer.commit(next_offsets(batch))
    return out


def records(count: int, prefix: str = "v", keys: int = 10) -> list[Record]:
    return [(f"k{i % keys}".encode(), f"{prefix}{i}".encode()) for i in range(count)]


def read_all(root: Path, topics: list[str], partitions: int = 4) -> list[Message]:
    with LocalBus(root, partitions=partitions, fsync=False) as bus:
        return drain(bus.consumer("reader", topics))


def frame(key: bytes | None, value: bytes) -> bytes:
    chunks, _ = encode_batch([(key, value)], 1, 0)
    return b"".join(chunks[0])


@pytest.fixture
def bus(tmp_path: Path) -> LocalBus:
    return LocalBus(tmp_path / "bus", partitions=4, fsync=False)


# --- publishing and reading ---------------------------------------------------------------


def test_round_trip_keeps_topic_key_value_and_positions(bus: LocalBus) -> None:
    bus.publish("payments", [(b"m1", b"one"), (None, b"two"), (b"", b"three")])

    got = drain(bus.consumer("g", ["payments"]))

    assert {m.value: m.key for m in got} == {b"one": b"m1", b"two": None, b"three": b""}
    keyed = next(m for m in got if m.key == b"m1")
    assert (keyed.topic, keyed.partition, keyed.offset) == (
        "payments",
        partition_of(b"m1", 4),
        0,
    )


def test_values_may_be_empty_or_binary(bus: LocalBus) -> None:
    values = [b"", bytes(range(256)), b"\x00" * 1000]
    bus.publish("t", [(b"k", v) for v in values])

    assert [m.value for m in drain(bus.consumer("g", ["t"]))] == values


def test_same_key_same_partition_across_batches_and_restarts(tmp_path: Path) -> None:
    keys = [f"merchant-{i}".encode() for i in range(200)]
    with LocalBus(tmp_path, partitions=4, fsync=False) as bus:
        bus.publish("orders", [(k, b"first") for k in keys])
    with LocalBus(tmp_path, partitions=4, fsync=False) as bus:
        bus.publish("orders", [(k, b"second") for k in keys])
        got = drain(bus.consumer("g", ["orders"]))

    partitions_of_key: dict[bytes | None, set[int]] = {}
    for m in got:
        partitions_of_key.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    assert {k: p.pop() for k, p in partitions_of_key.items()} == {
        k: partition_of(k, 4) for k in keys
    }
    assert set(Counter(partition_of(k, 4) for k in keys)) == {0, 1, 2, 3}


def test_records_without_key_go_round_robin(bus: LocalBus) -> None:
    bus.publish("t", [(None, b"a")] * 6)
    bus.publish("t", [(None, b"b")] * 2)

    got = drain(bus.consumer("g", ["t"]))

    assert Counter(m.partition for m in got) == {0: 2, 1: 2, 2: 2, 3: 2}


def test_order_and_offsets_per_partition(bus: LocalBus) -> None:
    for batch in range(5):
        bus.publish("t", records(100, prefix=f"b{batch}-"))

    got = drain(bus.consumer("g", ["t"]))

    assert len(got) == 500
    for partition in range(4):
        mine = [m for m in got if m.partition == partition]
        assert [m.offset for m in mine] == list(range(len(mine)))
    for key in {m.key for m in got}:
        values = [m.value for m in got if m.key == key]
        expected = [v for b in range(5) for k, v in records(100, prefix=f"b{b}-") if k == key]
        assert values == expected


def test_poll_respects_max_messages_and_serves_every_partition(bus: LocalBus) -> None:
    bus.publish("t", records(400, keys=40))
    consumer = bus.consumer("g", ["t"])

    first = consumer.poll_batch(7, 0.0)
    assert len(first) == 7
    rest = drain(consumer)
    assert len(first) + len(rest) == 400
    assert len({(m.partition, m.offset) for m in first + rest}) == 400


def test_empty_poll_returns_empty_list_after_timeout(bus: LocalBus) -> None:
    bus.publish("t", records(3))
    consumer = bus.consumer("g", ["t"])
    assert len(drain(consumer)) == 3

    assert consumer.poll_batch(10, 0.05) == []


def test_unknown_topic_gives_nothing_until_it_is_published(bus: LocalBus) -> None:
    consumer = bus.consumer("g", ["nobody-writes-here", "later"])
    assert consumer.poll_batch(10, 0.05) == []
    assert consumer.assignment() == []

    bus.publish("later", [(b"k", b"v")])

    assert [m.value for m in consumer.poll_batch(10, 1.0)] == [b"v"]


def test_poll_waiting_in_another_thread_gets_a_later_publish(bus: LocalBus) -> None:
    consumer = bus.consumer("g", ["t"])
    result: list[Message] = []
    waiting = threading.Thread(target=lambda: result.extend(consumer.poll_batch(10, 30.0)))
    waiting.start()
    bus.publish("t", [(b"k", b"late")])
    waiting.join()

    assert [m.value for m in result] == [b"late"]


def test_multiple_topics_stay_apart(bus: LocalBus) -> None:
    bus.publish("payments", [(b"k", b"p")])
    bus.publish("orders", [(b"k", b"o1"), (b"k", b"o2")])

    both = drain(bus.consumer("both", ["payments", "orders"]))
    only_orders = drain(bus.consumer("orders-only", ["orders"]))

    assert sorted((m.topic, m.value) for m in both) == [
        ("orders", b"o1"),
        ("orders", b"o2"),
        ("payments", b"p"),
    ]
    assert [m.value for m in only_orders] == [b"o1", b"o2"]


def test_large_batch_and_a_record_bigger_than_a_read_chunk(bus: LocalBus) -> None:
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB, beyond the 1 MiB read chunk
    bus.publish("t", records(50_000, keys=1000))
    bus.publish("t", [(b"big", big), (b"big", b"after")])

    got = drain(bus.consumer("g", ["t"]))

    assert len(got) == 50_002
    big_ones = [m.value for m in got if m.key == b"big"]
    assert big_ones == [big, b"after"]


def test_segments_roll_and_are_read_in_order(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False, segment_bytes=300) as bus:
        for batch in range(10):
            bus.publish("t", records(20, prefix=f"b{batch}-"))
        got = drain(bus.consumer("g", ["t"]))

    assert len(list((tmp_path / "t" / "0").glob("*.log"))) == 10
    assert [m.offset for m in got] == list(range(200))
    assert [m.value for m in got] == [f"b{b}-{i}".encode() for b in range(10) for i in range(20)]


def test_fsync_mode_round_trips(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=2, fsync=True, segment_bytes=500) as bus:
        bus.publish("t", records(50))
        consumer = bus.consumer("g", ["t"])
        assert len(drain(consumer, commit=True)) == 50

    assert len(read_all(tmp_path, ["t"], partitions=2)) == 50


def test_open_bus_builds_the_local_bus_from_settings(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(bus_url=f"local://{tmp_path / 'b'}", kafka_partitions=3)
    bus = open_bus(settings)
    try:
        assert isinstance(bus, LocalBus)
        bus.publish("t", [(b"k", b"v")])
    finally:
        bus.close()

    assert json.loads((tmp_path / "b" / "t" / "topic.json").read_text())["partitions"] == 3


# --- offsets and groups -------------------------------------------------------------------


def test_restarted_group_resumes_after_last_commit(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=2, fsync=False) as bus:
        bus.publish("t", records(100))
        consumer = bus.consumer("g", ["t"])
        committed = consumer.poll_batch(30, 0.0)
        consumer.commit(next_offsets(committed))
        uncommitted = consumer.poll_batch(30, 0.0)
        assert len(uncommitted) == 30

    with LocalBus(tmp_path, partitions=2, fsync=False) as bus:
        again = drain(bus.consumer("g", ["t"]))

    seen = {(m.partition, m.offset) for m in again}
    assert not seen & {(m.partition, m.offset) for m in committed}
    assert {(m.partition, m.offset) for m in uncommitted} <= seen
    assert len(again) == 70


def test_groups_keep_separate_offsets(bus: LocalBus) -> None:
    bus.publish("t", records(10))
    drain(bus.consumer("a", ["t"]), commit=True)

    assert len(drain(bus.consumer("b", ["t"]))) == 10


def test_commit_beyond_what_was_read_is_refused(bus: LocalBus) -> None:
    bus.publish("t", [(b"k", b"v")])
    consumer = bus.consumer("g", ["t"])
    (message,) = consumer.poll_batch(10, 0.0)

    with pytest.raises(BusError, match="has read up to 1"):
        consumer.commit({("t", message.partition): 2})
    with pytest.raises(BusError, match="not a partition of the topics"):
        consumer.commit({("other", 0): 1})
    with pytest.raises(BusError, match="not a partition of the topics"):
        consumer.commit({("t", 9): 1})


def test_two_members_split_partitions_and_take_over_on_close(bus: LocalBus) -> None:
    bus.publish("t", records(80, keys=40))
    first = bus.consumer("g", ["t"])
    second = bus.consumer("g", ["t"])

    assert first.assignment() == [("t", 0), ("t", 2)]
    assert second.assignment() == [("t", 1), ("t", 3)]
    from_first = drain(first, commit=True)
    from_second = drain(second)  # read but not committed
    assert {m.partition for m in from_first} == {0, 2}
    assert len(from_first) + len(from_second) == 80

    second.close()
    taken_over = drain(first)

    assert {m.partition for m in taken_over} == {1, 3}
    assert sorted((m.partition, m.offset) for m in taken_over) == sorted(
        (m.partition, m.offset) for m in from_second
    )


def test_commit_for_a_partition_that_moved_is_dropped(
    bus: LocalBus, caplog: pytest.LogCaptureFixture
) -> None:
    bus.publish("t", records(40, keys=40))
    first = bus.consumer("g", ["t"])
    read = drain(first)
    second = bus.consumer("g", ["t"])
    assert second.assignment() == [("t", 1), ("t", 3)]

    with caplog.at_level(logging.WARNING, logger="pulso.bus.local"):
        first.commit(next_offsets(read))

    assert "moved to another member" in caplog.text
    assert {m.partition for m in drain(second)} == {1, 3}


def test_group_is_owned_by_one_bus_instance(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as owner:
        owner.consumer("g", ["t"])
        with (
            LocalBus(tmp_path, partitions=1, fsync=False) as intruder,
            pytest.raises(BusError, match="consumer group 'g' is in use"),
        ):
            intruder.consumer("g", ["t"])
    with LocalBus(tmp_path, partitions=1, fsync=False) as later:
        later.consumer("g", ["t"]).close()  # released when the owner closed


def test_topic_is_published_by_one_bus_instance(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as owner:
        owner.publish("t", [(b"k", b"v")])
        with (
            LocalBus(tmp_path, partitions=1, fsync=False) as intruder,
            pytest.raises(BusError, match=r"topic 't' .* is in use by another bus instance"),
        ):
            intruder.publish("t", [(b"k", b"w")])


def test_another_instance_reads_what_one_publishes(tmp_path: Path) -> None:
    writer = LocalBus(tmp_path, partitions=2, fsync=False, segment_bytes=300)
    reader = LocalBus(tmp_path, partitions=2, fsync=False)
    try:
        consumer = reader.consumer("g", ["t"])
        assert consumer.poll_batch(10, 0.0) == []
        writer.publish("t", records(30))
        first = drain(consumer)
        writer.publish("t", records(30, prefix="w"))  # rolls segments under the reader
        second = drain(consumer)
    finally:
        writer.close()
        reader.close()

    assert len(first) == 30
    assert len(second) == 30
    assert {m.value for m in second} == {v for _, v in records(30, prefix="w")}


def test_topic_keeps_its_partition_count(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=4, fsync=False) as bus:
        bus.publish("t", [(b"key", b"1")])
    with LocalBus(tmp_path, partitions=8, fsync=False) as bus:
        bus.publish("t", [(b"key", b"2")])
        got = drain(bus.consumer("g", ["t"]))

    assert {m.partition for m in got} == {partition_of(b"key", 4)}


def test_committed_offset_past_the_log_end_restarts_at_the_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(5))
    groups = tmp_path / "_groups"
    groups.mkdir()
    (groups / "g.json").write_text(json.dumps({"format": 1, "offsets": {"t": {"0": 50}}}))

    with LocalBus(tmp_path, partitions=1, fsync=False) as bus, caplog.at_level(logging.WARNING):
        consumer = bus.consumer("g", ["t"])
        assert consumer.poll_batch(10, 0.0) == []
        bus.publish("t", [(b"k", b"new")])
        assert [(m.offset, m.value) for m in consumer.poll_batch(10, 0.0)] == [(5, b"new")]
    assert "past the end of its log" in caplog.text


def test_unreadable_offsets_file_is_a_clear_error(tmp_path: Path) -> None:
    groups = tmp_path / "_groups"
    groups.mkdir()
    (groups / "g.json").write_text("{not json")

    with (
        LocalBus(tmp_path, partitions=1, fsync=False) as bus,
        pytest.raises(BusError, match=r"g\.json"),
    ):
        bus.consumer("g", ["t"])


# --- recovery and corruption --------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda f: f[:5], id="half-a-header"),
        pytest.param(lambda f: f[:-3], id="frame-cut-short"),
        pytest.param(lambda f: f[:-1] + bytes([f[-1] ^ 0xFF]), id="last-frame-bad-crc"),
        pytest.param(lambda f: b"\xff" * 37, id="garbage"),
        pytest.param(lambda f: b"\x00" * 4096, id="zeros"),
    ],
)
def test_torn_tail_is_truncated_on_open(tmp_path: Path, tail: Callable[[bytes], bytes]) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(10))
    path = segment(tmp_path, "t", 0)
    good_bytes = path.stat().st_size
    with path.open("ab") as f:
        f.write(tail(frame(b"k", b"never acknowledged")))

    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", [(b"k", b"after")])

    got = read_all(tmp_path, ["t"], partitions=1)
    assert [m.value for m in got] == [v for _, v in records(10)] + [b"after"]
    assert [m.offset for m in got] == list(range(11))
    assert path.stat().st_size == good_bytes + len(frame(b"k", b"after"))


def test_reader_waits_at_a_torn_tail_until_the_writer_truncates_it(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(3))
    with segment(tmp_path, "t", 0).open("ab") as f:
        f.write(frame(b"k", b"torn")[:-1] + b"\x00")

    reader = LocalBus(tmp_path, partitions=1, fsync=False)
    try:
        consumer = reader.consumer("g", ["t"])
        assert len(drain(consumer)) == 3
        with LocalBus(tmp_path, partitions=1, fsync=False) as writer:
            writer.publish("t", [(b"k", b"after")])
        assert [(m.offset, m.value) for m in drain(consumer)] == [(3, b"after")]
    finally:
        reader.close()


def corrupt_second_frame(path: Path) -> int:
    """Flip the last value byte of the second of equal-sized frames; returns its position."""
    data = bytearray(path.read_bytes())
    frame_bytes = len(frame(b"k0", b"v0"))
    data[2 * frame_bytes - 1] ^= 0x01
    path.write_bytes(bytes(data))
    return frame_bytes


def test_corrupt_record_in_the_middle_stops_the_writer_naming_file_and_byte(
    tmp_path: Path,
) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(5, keys=1))
    path = segment(tmp_path, "t", 0)
    position = corrupt_second_frame(path)
    size = path.stat().st_size

    with (
        LocalBus(tmp_path, partitions=1, fsync=False) as bus,
        pytest.raises(
            BusError, match=rf"{re.escape(str(path))} at byte {position} .*valid record follows"
        ),
    ):
        bus.publish("t", [(b"k", b"v")])
    assert path.stat().st_size == size  # nothing truncated


def test_corrupt_record_in_the_middle_stops_the_reader(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(5, keys=1))
    path = segment(tmp_path, "t", 0)
    position = corrupt_second_frame(path)

    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        consumer = bus.consumer("g", ["t"])
        assert [m.offset for m in consumer.poll_batch(10, 0.0)] == [0]
        with pytest.raises(BusError, match=rf"{re.escape(str(path))} at byte {position}\b"):
            consumer.poll_batch(10, 0.0)
        with pytest.raises(BusError, match="close this consumer and open a new one"):
            consumer.commit({("t", 0): 1})


def test_corrupt_length_in_a_sealed_segment_stops_the_reader(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False, segment_bytes=100) as bus:
        for _ in range(3):
            bus.publish("t", records(5, keys=1))
    path = segment(tmp_path, "t", 0)
    data = bytearray(path.read_bytes())
    data[len(frame(b"k0", b"v0"))] = 0xFF  # second frame now claims to run past the file
    path.write_bytes(bytes(data))

    with (
        LocalBus(tmp_path, partitions=1, fsync=False) as bus,
        pytest.raises(BusError, match="sealed segment"),
    ):
        drain(bus.consumer("g", ["t"]))


def test_corrupt_length_in_the_last_segment_is_not_mistaken_for_a_torn_tail(
    tmp_path: Path,
) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        bus.publish("t", records(5, keys=1))
    path = segment(tmp_path, "t", 0)
    data = bytearray(path.read_bytes())
    data[len(frame(b"k0", b"v0")) + 3] = 0x7F  # length of frame 2 now far past the end
    path.write_bytes(bytes(data))

    with (
        LocalBus(tmp_path, partitions=1, fsync=False) as bus,
        pytest.raises(BusError, match="valid record follows"),
    ):
        bus.publish("t", [(b"k", b"v")])


def test_unreadable_topic_description_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "topic.json").write_text('{"format": 99, "partitions": 4}')

    with (
        LocalBus(tmp_path, partitions=1, fsync=False) as bus,
        pytest.raises(BusError, match=r"topic\.json is not a format-1 topic description"),
    ):
        bus.publish("t", [(b"k", b"v")])


# --- misuse -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "../escape", "_groups", "a/b", ".hidden", "x" * 201])
def test_names_that_are_not_safe_file_names_are_refused(bus: LocalBus, name: str) -> None:
    with pytest.raises(BusError, match="not usable as a file name"):
        bus.publish(name, [(b"k", b"v")])
    with pytest.raises(BusError, match="not usable as a file name"):
        bus.consumer(name, ["t"])


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param((b"k", "text"), id="str-value"),
        pytest.param(("key", b"v"), id="str-key"),
        pytest.param((b"k",), id="not-a-pair"),
        pytest.param((b"k", None), id="none-value"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(bus: LocalBus, bad: object) -> None:
    batch = [(b"k", b"fine"), bad]
    with pytest.raises(BusError, match=r"record 1 of the batch for topic 't'"):
        bus.publish("t", batch)  # type: ignore[arg-type]

    assert drain(bus.consumer("g", ["t"])) == []


def test_consumer_needs_topics_and_a_positive_batch(bus: LocalBus) -> None:
    with pytest.raises(BusError, match="needs a list of topics"):
        bus.consumer("g", [])
    with pytest.raises(BusError, match="needs a list of topics"):
        bus.consumer("g", "payments")
    consumer = bus.consumer("g", ["t"])
    with pytest.raises(BusError, match="max_messages must be at least 1"):
        consumer.poll_batch(0, 0.0)


def test_closed_bus_and_consumer_refuse_work(bus: LocalBus) -> None:
    consumer = bus.consumer("g", ["t"])
    bus.close()

    with pytest.raises(BusError, match="is closed"):
        bus.publish("t", [(b"k", b"v")])
    with pytest.raises(BusError, match="is closed"):
        consumer.poll_batch(1, 0.0)
    with pytest.raises(BusError, match="is closed"):
        consumer.commit({("t", 0): 0})
    bus.close()  # closing twice is harmless


def test_publishing_nothing_creates_nothing(bus: LocalBus) -> None:
    bus.publish("t", [])

    assert not (bus.path / "t").exists()


def test_partition_folder_without_segments_is_a_clear_error(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=2, fsync=False) as bus:
        bus.publish("t", [(b"k", b"v")])
    for path in (tmp_path / "t" / "1").glob("*.log"):
        path.unlink()

    with (
        LocalBus(tmp_path, partitions=2, fsync=False) as bus,
        pytest.raises(BusError, match="holds no segment"),
    ):
        bus.publish("t", [(b"k", b"v")])
    with (
        LocalBus(tmp_path, partitions=2, fsync=False) as bus,
        pytest.raises(BusError, match="is missing"),
    ):
        bus.consumer("g", ["t"]).poll_batch(10, 0.0)


def test_resume_lands_inside_a_middle_segment(tmp_path: Path) -> None:
    with LocalBus(tmp_path, partitions=1, fsync=False, segment_bytes=300) as bus:
        for batch in range(6):
            bus.publish("t", records(20, prefix=f"b{batch}-"))
        consumer = bus.consumer("g", ["t"])
        consumer.poll_batch(47, 0.0)
        consumer.commit({("t", 0): 47})

    with LocalBus(tmp_path, partitions=1, fsync=False) as bus:
        rest = drain(bus.consumer("g", ["t"]))

    assert [m.offset for m in rest] == list(range(47, 120))
    assert rest[0].value == b"b2-7"


def test_reading_while_another_instance_writes_and_rolls(tmp_path: Path) -> None:
    writer = LocalBus(tmp_path, partitions=2, fsync=False, segment_bytes=4096)
    reader = LocalBus(tmp_path, partitions=2, fsync=False)
    sent = [records(50, prefix=f"b{batch}-", keys=7) for batch in range(200)]

    def publish_all() -> None:
        for batch in sent:
            writer.publish("t", batch)

    publishing = threading.Thread(target=publish_all)
    got: list[Message] = []
    try:
        consumer = reader.consumer("g", ["t"])
        publishing.start()
        while publishing.is_alive():
            got.extend(consumer.poll_batch(1000, 0.01))
        publishing.join()
        got.extend(drain(consumer))
    finally:
        publishing.join()
        writer.close()
        reader.close()

    assert len(got) == 200 * 50
    for partition in (0, 1):
        offsets = [m.offset for m in got if m.partition == partition]
        assert offsets == list(range(len(offsets)))
    for key in {m.key for m in got}:
        expected = [v for batch in sent for k, v in batch if k == key]
        assert [m.value for m in got if m.key == key] == expected
