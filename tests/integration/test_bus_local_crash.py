"""The embedded bus under ``kill -9``: nothing acknowledged is lost, nothing committed re-read.

Real processes are killed with SIGKILL at chosen points (a child blocks on stdin at a step
until the test lets it go on or kills it) and at arbitrary ones, then the log and the group
offsets are reopened by a new process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pulso.bus.local import LocalBus, scan_frames
from pulso.bus.protocol import Message

REPO = Path(__file__).resolve().parents[2]
TOPIC = "payments"
PARTITIONS = 4

# Record i: key m<i % 97>, value = 8-digit id + a 388-byte payload derived from the id.
RECORD_HELPERS = """
import hashlib

def value_of(i):
    return b"%08d" % i + hashlib.sha256(b"%d" % i).digest() * 12 + b"\\x00\\xff\\x00\\xff"

def key_of(i):
    return b"m%d" % (i % 97)
"""

# The test checks records with the very functions the child processes build them with.
_helpers: dict[str, Any] = {}
exec(RECORD_HELPERS, _helpers)
value_of: Callable[[int], bytes] = _helpers["value_of"]
key_of: Callable[[int], bytes] = _helpers["key_of"]

PRODUCER = (
    RECORD_HELPERS
    + """
import os
import signal
import sys
from pathlib import Path
from pulso.bus.local import LocalBus

root, start, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tear_after = int(sys.argv[4])  # acks after which a write is torn by the process's death

def write_half_then_die(fd, data):
    real_write(fd, bytes(data[: len(data) // 2 + 7]))
    os.kill(os.getpid(), signal.SIGKILL)

real_write = os.write
bus = LocalBus(root, partitions=4, fsync=False, segment_bytes=2_000_000)
next_id, acks = start, 0
while True:
    if tear_after and acks == tear_after:
        os.write = write_half_then_die
    bus.publish("payments", [(key_of(i), value_of(i)) for i in range(next_id, next_id + batch)])
    next_id, acks = next_id + batch, acks + 1
    print(next_id, flush=True)  # every id below this is acknowledged
"""
)

CONSUMER = """
import os
import sys
import time
from pathlib import Path
from pulso.bus.local import LocalBus
from pulso.bus.protocol import next_offsets

root, output, gated = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "gated"

def step(name):
    print(name, flush=True)
    if gated:
        sys.stdin.readline()  # the test either lets the child go on or kills it here
    else:
        time.sleep(0.002)  # a store commit takes time: a kill often lands in between

# The "store": an append-only file of ids; a line cut by a crash is dropped on restart.
kept = output.read_bytes() if output.exists() else b""
output.write_bytes(kept[: kept.rfind(b"\\n") + 1])
fd = os.open(output, os.O_WRONLY | os.O_APPEND)
bus = LocalBus(root, partitions=4, fsync=False)
consumer = bus.consumer("processor", ["payments"])
while batch := consumer.poll_batch(500, 0.2):
    os.write(fd, b"".join(m.value[:8] + b"\\n" for m in batch))
    step("processed %d" % len(batch))
    consumer.commit(next_offsets(batch))
    step("committed")
print("done", flush=True)
"""


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill(child: subprocess.Popen[str]) -> str:
    """SIGKILL the child; returns what it printed that the test had not read yet."""
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return rest


def lines(child: subprocess.Popen[str]) -> Iterator[str]:
    assert child.stdout is not None
    for line in child.stdout:
        yield line.strip()


def read_log(root: Path) -> list[Message]:
    with LocalBus(root, partitions=PARTITIONS, fsync=False) as bus:
        consumer = bus.consumer("check", [TOPIC])
        out: list[Message] = []
        while batch := consumer.poll_batch(10_000, 0.0):
            out.extend(batch)
        consumer.close()
    return out


def ids_in_log(root: Path) -> list[int]:
    messages = read_log(root)
    for m in messages:
        assert m.value == value_of(int(m.value[:8])), f"record at {m.partition}/{m.offset} damaged"
    return [int(m.value[:8]) for m in messages]


# --- publishing ---------------------------------------------------------------------------


def run_producer_until_killed(root: Path, start: int, acks_before_kill: int) -> int:
    """Start a producer at id ``start``, SIGKILL it after some acks; the highest acked id."""
    child = spawn(PRODUCER, root, start, 5000, 0)
    acked = start
    for seen, line in enumerate(lines(child), start=1):
        acked = int(line)
        if seen == acks_before_kill:
            break
    rest = kill(child)
    return max([acked, *map(int, rest.split())])


def run_producer_that_dies_mid_write(root: Path, start: int, acks_before_tear: int) -> int:
    """Start a producer that dies by SIGKILL halfway through a write; the highest acked id."""
    child = spawn(PRODUCER, root, start, 5000, acks_before_tear)
    printed, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert len(printed.split()) == acks_before_tear
    return int(printed.split()[-1])


def torn_tails(root: Path) -> int:
    """How many segments end in bytes that are not a whole valid frame."""
    count = 0
    for path in root.glob(f"{TOPIC}/*/*.log"):
        data = path.read_bytes()
        end, _, _ = scan_frames(data, 0, len(data))
        count += end < len(data)
    return count


@pytest.mark.parametrize(
    "rounds",
    [
        pytest.param([(1, False), (3, False), (2, False)], id="killed-between-writes"),
        pytest.param([(2, True), (1, False), (1, True), (3, True), (2, False)], id="torn-writes"),
    ],
)
def test_killed_producer_loses_no_acknowledged_record(
    tmp_path: Path, rounds: list[tuple[int, bool]]
) -> None:
    root = tmp_path / "bus"
    acked_ids: set[int] = set()
    start = 0
    for acks, tear in rounds:
        if tear:
            acked = run_producer_that_dies_mid_write(root, start, acks)
            assert torn_tails(root) == 1
        else:
            acked = run_producer_until_killed(root, start, acks)
        acked_ids.update(range(start, acked))
        counts = Counter(ids_in_log(root))
        assert not [i for i, n in counts.items() if n > 1], "a record was stored twice"
        assert acked_ids <= set(counts), "an acknowledged record was lost"
        start = max(counts) + 1  # the next run goes on after whatever got stored

    assert len(acked_ids) >= 5000 * sum(acks for acks, _ in rounds)


# --- consuming ----------------------------------------------------------------------------


def publish_ids(root: Path, count: int) -> None:
    with LocalBus(root, partitions=PARTITIONS, fsync=False) as bus:
        for start in range(0, count, 1000):
            ids = range(start, min(start + 1000, count))
            bus.publish(TOPIC, [(key_of(i), value_of(i)) for i in ids])


def output_ids(output: Path) -> list[int]:
    return [int(line) for line in output.read_bytes().splitlines()]


def run_gated_consumer(root: Path, output: Path, steps: int) -> list[int]:
    """Let a consumer take ``steps`` steps, then SIGKILL it; ids it processed uncommitted."""
    child = spawn(CONSUMER, root, output, "gated")
    assert child.stdin is not None
    before = len(output_ids(output)) if output.exists() else 0
    last = ""
    for taken, last in enumerate(lines(child), start=1):
        assert last != "done", "the child ran out of records before the planned kill"
        if last == "committed":
            before = len(output_ids(output))
        if taken == steps:
            break
        child.stdin.write("\n")
        child.stdin.flush()
    kill(child)
    return output_ids(output)[before:] if last.startswith("processed") else []


def run_consumer_to_the_end(root: Path, output: Path) -> None:
    child = spawn(CONSUMER, root, output, "paced")
    rest, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    assert rest.splitlines()[-1] == "done"


def test_consumer_killed_at_chosen_points_redelivers_exactly_the_uncommitted(
    tmp_path: Path,
) -> None:
    root, output, total = tmp_path / "bus", tmp_path / "processed.txt", 6000
    publish_ids(root, total)
    processed_uncommitted: list[int] = []
    # Steps alternate "processed" (odd) and "committed" (even): 1, 5 and 3 kill a child
    # after it processed a batch and before it committed it; 2 and 4 right after a commit.
    for steps in (1, 2, 5, 4, 3):
        processed_uncommitted += run_gated_consumer(root, output, steps)
    run_consumer_to_the_end(root, output)

    seen = Counter(output_ids(output))
    assert set(seen) == set(range(total))
    assert len(processed_uncommitted) == 3 * 500
    assert seen == Counter(range(total)) + Counter(processed_uncommitted)


@pytest.mark.parametrize("batches_before_kill", [(1, 4, 2), (3, 1, 6)])
def test_consumer_killed_anywhere_still_processes_every_record(
    tmp_path: Path, batches_before_kill: tuple[int, ...]
) -> None:
    # 40 batches: far more than the kills need, so each child is still running when killed.
    root, output, total = tmp_path / "bus", tmp_path / "processed.txt", 20_000
    publish_ids(root, total)
    for batches in batches_before_kill:
        child = spawn(CONSUMER, root, output, "paced")
        for done, _ in enumerate(line for line in lines(child) if line == "committed"):
            if done + 1 == batches:
                break
        kill(child)  # wherever it is by now: polling, writing, committing
    run_consumer_to_the_end(root, output)

    seen = Counter(output_ids(output))
    assert set(seen) == set(range(total))
    assert all(n <= 1 + len(batches_before_kill) for n in seen.values())
