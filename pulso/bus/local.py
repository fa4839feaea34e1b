"""The embedded bus (``local://``): a durable, partitioned, append-only log on local disk.

Layout under the bus folder::

    <topic>/topic.json               {"format": 1, "partitions": N}, written once
    <topic>/writer.lock              flock of the one process publishing to the topic
    <topic>/<partition>/<base>.log   segments; <base> is the offset of the segment's first record
    _groups/<group>.json             the group's committed next-offsets (temp file + rename)
    _groups/<group>.lock             flock of the one process consuming as the group

A record is framed as ``length u32 | crc32 u32 | key_length i32 | key | value``, little
endian; ``length`` counts key_length, key and value, the CRC covers the same bytes, and a key
length of -1 means no key. Offsets are record indexes per partition (0, 1, 2, ...).

Publishing writes each partition's share of a batch with one ``write``: when ``publish``
returns the bytes are in the operating system and survive ``kill -9``; with ``fsync=True``
they are also fsynced and survive power loss. A batch spanning partitions is not atomic: if
``publish`` raises, part of it may be stored, and publishing it again duplicates that part
(at-least-once, as with Kafka).

Crash recovery runs when a process starts publishing to a topic, on the last segment of each
partition. A frame cut short or failing its CRC *with no valid frame after it* is the torn
tail of a write interrupted by a crash, never acknowledged, and is truncated with a warning. A
bad frame *followed by a valid one* is corruption of acknowledged data: it raises ``BusError``
naming the file and byte, and is never skipped. Readers apply the same rule without truncating
(a complete frame with a bad CRC is checked for followers; a frame cut short at the end of the
active segment is treated as still being written); any bad frame in a sealed segment raises.

Consumer groups: the members of a group in one process split each topic's partitions
(partition p goes to subscriber p mod n, in the order they joined) and re-split when a member
joins or leaves, as Kafka groups do. Commits for partitions a member no longer owns are
dropped with a warning: the new owner starts from the last commit and reads them again. One
process at a time consumes as a given group (a lock file enforces it). A new group starts at
the beginning of each partition; a committed offset past the end of a log (its tail lost to
power loss with fsync off) is reset to the end with a warning.

A topic keeps the partition count it was created with, like a Kafka topic. Keys map to
partitions by CRC32 of the key modulo that count, so a key keeps its partition across
restarts; records without a key go round robin. Consumers see data published by other
processes by polling the files every ``CROSS_PROCESS_POLL_S``; within the process ``publish``
wakes them at once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final
from zlib import crc32

from pulso.bus.protocol import Message, Record, TopicPartition
from pulso.closing import Closing
from pulso.errors import BusError

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
READ_CHUNK_BYTES: Final = 1024 * 1024
CROSS_PROCESS_POLL_S: Final = 0.05

_PREFIX = struct.Struct("<II")  # body length, CRC32 of the body
_HEADER = struct.Struct("<IIi")  # the prefix, then the key length (-1: no key)
_KEY_LEN = struct.Struct("<i")
_NO_KEY = _KEY_LEN.pack(-1)
_BODY_START = _PREFIX.size  # the body starts with the key length

# Why scanning frames stopped.
_DONE: Final = 0  # as many records as asked for
_END: Final = 1  # the data ends exactly at a frame boundary
_CUT: Final = 2  # a frame runs past the end of the data
_BAD: Final = 3  # not a valid frame

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SEGMENT_NAME = re.compile(r"(\d{20})\.log")
_META_FILE = "topic.json"
_GROUPS_DIR = "_groups"
_ONE_OWNER_FIX = (
    "one process owns the embedded bus: send events to it through the API, "
    "or use PULSO_BUS_URL=kafka://... for several processes"
)


# --- framing ------------------------------------------------------------------------------


def scan_frames(
    data: bytes,
    pos: int,
    count: int,
    sink: list[Message] | None = None,
    where: TopicPartition = ("", 0),
    offset: int = 0,
) -> tuple[int, int, int]:
    """Walk up to ``count`` valid frames of ``data`` from ``pos``, appending them to ``sink``.

    Returns the position after them, how many were walked, and why it stopped: ``_DONE``,
    ``_END`` (the data ends there), ``_CUT`` (a frame runs past the end) or ``_BAD``.
    """
    # The one hot loop of the bus: every record read goes through it, so names are bound
    # to locals once and the frame is checked inline.
    topic, partition = where
    header_bytes, body_start, key_start = _HEADER.size, _PREFIX.size, _HEADER.size
    unpack, checksum, size = _HEADER.unpack_from, crc32, len(data)
    append = sink.append if sink is not None else None
    first, stop = offset, offset + count
    status = _DONE
    while offset < stop:
        if size - pos < header_bytes:
            status = _END if pos == size else _CUT
            break
        length, crc, key_len = unpack(data, pos)
        end = pos + body_start + length
        if key_len < -1 or key_len > length - _KEY_LEN.size or length < _KEY_LEN.size:
            status = _BAD
            break
        if end > size:
            status = _CUT
            break
        if checksum(data[pos + body_start : end]) != crc:
            status = _BAD
            break
        if append is not None:
            if key_len < 0:
                append(Message(topic, partition, offset, None, data[pos + key_start : end]))
            else:
                value_start = pos + key_start + key_len
                key = data[pos + key_start : value_start]
                append(Message(topic, partition, offset, key, data[value_start:end]))
        offset += 1
        pos = end
    return pos, offset - first, status


def find_frame(data: bytes, start: int) -> int | None:
    """Position of the first valid frame at or after ``start``, if any."""
    for pos in range(start, len(data) - _HEADER.size + 1):
        if scan_frames(data, pos, 1)[1]:
            return pos
    return None


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a key: stable across processes and restarts."""
    return crc32(key) % partitions


def encode_batch(
    records: Sequence[Record], partitions: int, round_robin: int
) -> tuple[list[list[bytes]], int]:
    """Frames of ``records`` grouped by partition, and the round-robin cursor after them."""
    chunks: list[list[bytes]] = [[] for _ in range(partitions)]
    for key, value in records:
        if key is None:
            partition = round_robin % partitions
            round_robin += 1
            body = _NO_KEY + value
        else:
            partition = crc32(key) % partitions
            body = _KEY_LEN.pack(len(key)) + key + value
        chunks[partition].append(_PREFIX.pack(len(body), crc32(body)))
        chunks[partition].append(body)
    return chunks, round_robin


def _bad_record_error(topic: str, records: Sequence[Record]) -> BusError:
    for index, record in enumerate(records):
        valid_shape = isinstance(record, tuple | list) and len(record) == 2
        if not valid_shape or not _is_bytes(record[1]) or not _is_bytes(record[0], True):
            shown = type(record).__name__ if not valid_shape else tuple(map(_type_name, record))
            return BusError(
                f"record {index} of the batch for topic {topic!r} is {shown}; a record is "
                "(key: bytes | None, value: bytes): encode the event before publishing"
            )
    return BusError(
        f"a record of the batch for topic {topic!r} is too large: keys up to 2 GiB and "
        "records up to 4 GiB fit a frame; split the value"
    )


def _is_bytes(value: object, none_allowed: bool = False) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) or (none_allowed and value is None)


def _type_name(value: object) -> str:
    return type(value).__name__


def _corruption(path: Path, pos: int, detail: str) -> BusError:
    return BusError(
        f"corrupt record in {path} at byte {pos} ({detail}); acknowledged records may lie "
        "beyond it, so the bus stops rather than skip them: restore the file from a backup, "
        f"or truncate it to {pos} bytes to give up this record and every later one in the file"
    )


# --- files --------------------------------------------------------------------------------


def _segment_path(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}.log"


def _segment_bases(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := _SEGMENT_NAME.fullmatch(name)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes, fsync: bool) -> None:
    """Replace ``path`` with ``data`` so that a reader or a crash sees old or new, never half."""
    temp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(temp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(temp, path)
    if fsync:
        _fsync_dir(path.parent)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BusError(
            f"{what} name {name!r} is not usable as a file name: use letters, digits, '.', "
            "'_' and '-', starting with a letter or digit, at most 200 characters"
        )


class _ProcessLock:
    """An exclusive flock, held until released or the process dies (even by ``kill -9``)."""

    def __init__(self, path: Path, what: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BusError(
                f"{what} is in use by another bus instance (pid {holder}; lock {path}); "
                f"{_ONE_OWNER_FIX}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_partition_count(topic_dir: Path) -> int | None:
    """The partition count of an existing topic, or None when the topic does not exist."""
    path = topic_dir / _META_FILE
    try:
        meta = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise BusError(f"cannot read topic description {path}: {e}; restore it") from e
    fields = meta if isinstance(meta, dict) else {}
    count = fields.get("partitions")
    if fields.get("format") != FORMAT_VERSION or not isinstance(count, int) or count < 1:
        raise BusError(
            f"{path} is not a format-{FORMAT_VERSION} topic description ({meta!r}); "
            "it was written by another program or version: restore it or move the topic away"
        )
    return count


class _Catalog:
    """Partition counts of topics, found on disk (another process may create a topic)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._counts: dict[str, int] = {}

    def partition_count(self, topic: str) -> int | None:
        count = self._counts.get(topic)
        if count is None:
            count = _read_partition_count(self._root / topic)
            if count is not None:
                self._counts[topic] = count
        return count


class _Notifier:
    """Wakes consumers of this process when a batch is published."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.published = 0

    def notify(self) -> None:
        with self._condition:
            self.published += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout_s: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self.published != seen, timeout_s)


# --- writing ------------------------------------------------------------------------------


def _recover_segment(path: Path, fsync: bool) -> tuple[int, int]:
    """Records and bytes of a partition's last segment, after truncating a torn tail."""
    data = path.read_bytes()
    pos, records, _ = scan_frames(data, 0, len(data))
    if pos < len(data):
        _truncate_torn_tail(path, data, pos, fsync)
    return records, pos


def _truncate_torn_tail(path: Path, data: bytes, pos: int, fsync: bool) -> None:
    follower = find_frame(data, pos + 1)
    if follower is not None:
        raise _corruption(path, pos, f"a valid record follows at byte {follower}")
    logger.warning(
        "truncating %s at byte %d: its last %d bytes are a record cut short by a crash "
        "mid-write, never acknowledged",
        path,
        pos,
        len(data) - pos,
    )
    with open(path, "r+b") as f:
        f.truncate(pos)
        if fsync:
            os.fsync(f.fileno())


class _PartitionWriter:
    """Appends batches to one partition's active segment, rolling to a new one when full."""

    def __init__(self, directory: Path, segment_bytes: int, fsync: bool) -> None:
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        bases = _segment_bases(directory)
        if not bases:
            raise BusError(
                f"partition folder {directory} holds no segment although its topic exists; "
                "restore it from a backup"
            )
        base = bases[-1]
        path = _segment_path(directory, base)
        records, self._size = _recover_segment(path, fsync)
        self.end_offset = base + records
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._broken: str | None = None

    def append(self, data: bytes, records: int) -> None:
        if self._broken:
            raise BusError(f"{self._broken}; close the bus and open it again")
        if self._size >= self._segment_bytes:
            self._roll()
        try:
            _write_all(self._fd, data)
            if self._fsync:
                os.fsync(self._fd)
        except OSError as e:
            self._undo_partial_write()
            raise BusError(
                f"writing {len(data)} bytes to {self._dir} failed: {e}; free disk space or fix "
                "permissions, then publish the batch again"
            ) from e
        self._size += len(data)
        self.end_offset += records

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _roll(self) -> None:
        fd = os.open(
            _segment_path(self._dir, self.end_offset),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL,
            0o644,
        )
        if self._fsync:
            _fsync_dir(self._dir)
        os.close(self._fd)
        self._fd, self._size = fd, 0

    def _undo_partial_write(self) -> None:
        # A partial frame left in place would be followed by the next batch's valid frames,
        # which recovery rightly reports as corruption; so cut it off, or refuse to go on.
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as e:
            self._broken = f"{self._dir} holds a partial write that could not be undone ({e})"


class _Topic:
    """The publishing side of one topic: its process lock, partition writers, round robin."""

    def __init__(
        self, root: Path, name: str, partitions: int, segment_bytes: int, fsync: bool
    ) -> None:
        directory = root / name
        directory.mkdir(exist_ok=True)
        self.name = name
        self._lock = _ProcessLock(directory / "writer.lock", f"topic {name!r} at {directory}")
        try:
            count = _read_partition_count(directory) or _create_topic(directory, partitions, fsync)
            if count != partitions:
                logger.warning(
                    "topic %r keeps the %d partitions it was created with (setting: %d)",
                    name,
                    count,
                    partitions,
                )
            self._writers = [
                _PartitionWriter(directory / str(p), segment_bytes, fsync) for p in range(count)
            ]
        except BaseException:
            self._lock.release()
            raise
        self._round_robin = 0

    def append(self, records: Sequence[Record]) -> None:
        try:
            chunks, self._round_robin = encode_batch(records, len(self._writers), self._round_robin)
        except (TypeError, ValueError, struct.error, OverflowError) as e:
            raise _bad_record_error(self.name, records) from e
        for writer, frames in zip(self._writers, chunks, strict=True):
            if frames:
                writer.append(b"".join(frames), len(frames) // 2)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._lock.release()


def _create_topic(directory: Path, partitions: int, fsync: bool) -> int:
    # topic.json comes last: a reader treats the topic as existing only once it is there.
    for partition in range(partitions):
        partition_dir = directory / str(partition)
        partition_dir.mkdir(exist_ok=True)
        _segment_path(partition_dir, 0).touch(exist_ok=True)
        if fsync:
            _fsync_dir(partition_dir)
    meta = {"format": FORMAT_VERSION, "partitions": partitions}
    _write_atomically(directory / _META_FILE, json.dumps(meta).encode(), fsync)
    if fsync:
        _fsync_dir(directory.parent)
    return partitions


# --- reading ------------------------------------------------------------------------------


class _PartitionReader:
    """Reads one partition in order from a remembered file position, segment after segment."""

    def __init__(self, directory: Path, topic: str, partition: int) -> None:
        self._dir = directory
        self._topic = topic
        self._partition = partition
        self._fd = -1
        self._path = directory
        self._base = 0
        self._buf = b""
        self._buf_start = 0  # file position of _buf[0]
        self._pos = 0  # file position of the next frame
        self.next_offset = 0
        self._tail_checked: tuple[int, int] | None = None

    def seek(self, offset: int) -> None:
        """Position the reader at ``offset``, or at the end of the log if it is shorter."""
        bases = [base for base in _segment_bases(self._dir) if base <= offset]
        self._open_segment(bases[-1] if bases else 0)
        self._advance(offset - self.next_offset, None)
        if self.next_offset < offset:
            logger.warning(
                "offset %d of %s[%d] is past the end of its log (%d), probably a tail lost to "
                "power loss with fsync off; reading on from the end",
                offset,
                self._topic,
                self._partition,
                self.next_offset,
            )

    def read_into(self, out: list[Message], limit: int) -> None:
        """Append the next records to ``out`` until it holds ``limit`` or the data ends."""
        self._advance(limit - len(out), out)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _advance(self, count: int, sink: list[Message] | None) -> None:
        moved = 0
        while moved < count:
            moved, status = self._parse(moved, count, sink)
            if status == _DONE:
                return
            if self._fill():
                continue
            if status == _END and self._next_segment_exists():
                self._open_segment(self.next_offset)
                continue
            if status != _END and not (moved and sink is not None):
                # Records read before a bad frame are delivered first; the next read raises.
                self._check_bad_tail(status)
            return

    def _parse(self, moved: int, count: int, sink: list[Message] | None) -> tuple[int, int]:
        i, walked, status = scan_frames(
            self._buf,
            self._pos - self._buf_start,
            count - moved,
            sink,
            (self._topic, self._partition),
            self.next_offset,
        )
        self._pos = self._buf_start + i
        self.next_offset += walked
        return moved + walked, status

    def _fill(self) -> bool:
        """Read on from the current position; False when the file holds nothing new."""
        buffered = self._buf_start + len(self._buf) - self._pos
        size = os.fstat(self._fd).st_size
        if size - self._pos <= buffered:
            return False
        want = min(max(READ_CHUNK_BYTES, self._frame_bytes_needed()), size - self._pos)
        self._buf, self._buf_start = os.pread(self._fd, want, self._pos), self._pos
        return True

    def _frame_bytes_needed(self) -> int:
        i = self._pos - self._buf_start
        if len(self._buf) - i < _PREFIX.size:
            return _HEADER.size
        return _PREFIX.size + int(_PREFIX.unpack_from(self._buf, i)[0])

    def _next_segment_exists(self) -> bool:
        # A segment is named after the offset of its first record, so when this one is
        # complete the next one, if any, is named after our next offset.
        return self.next_offset != self._base and os.path.exists(
            _segment_path(self._dir, self.next_offset)
        )

    def _check_bad_tail(self, status: int) -> None:
        later = [base for base in _segment_bases(self._dir) if base > self._base]
        # The writer rolls only after its last write here returned, so once a later segment
        # exists one more look at this file sees all of it: then a bad frame is for good.
        if later and not self._fill():
            raise _corruption(self._path, self._pos, f"in a sealed segment; {later[0]} follows")
        if later:
            return  # the frame was still being written a moment ago; read it next time
        if status == _CUT:
            return  # still being written, or a torn tail the writer truncates when it opens
        size = os.fstat(self._fd).st_size
        if self._tail_checked == (self._pos, size):
            return
        follower = find_frame(os.pread(self._fd, size - self._pos, self._pos), 1)
        if follower is not None:
            detail = f"a valid record follows at byte {self._pos + follower}"
            raise _corruption(self._path, self._pos, detail)
        self._tail_checked = (self._pos, size)

    def _open_segment(self, base: int) -> None:
        path = _segment_path(self._dir, base)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as e:
            raise BusError(
                f"segment {path} is missing; restore the folder {self._dir} from a backup"
            ) from e
        self.close()
        self._fd, self._path, self._base = fd, path, base
        self._buf, self._buf_start, self._pos = b"", 0, 0
        self.next_offset = base
        self._tail_checked = None


# --- consumer groups ----------------------------------------------------------------------


def _load_offsets(path: Path) -> dict[TopicPartition, int]:
    try:
        stored = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise BusError(f"cannot read committed offsets {path}: {e}; restore the file") from e
    try:
        return {
            (topic, int(partition)): int(offset)
            for topic, partitions in stored["offsets"].items()
            for partition, offset in partitions.items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BusError(f"{path} does not hold committed offsets ({e!r}); restore it") from e


def _dump_offsets(offsets: Mapping[TopicPartition, int]) -> bytes:
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        nested.setdefault(topic, {})[str(partition)] = offset
    return json.dumps({"format": FORMAT_VERSION, "offsets": nested}).encode()


class _Group:
    """A consumer group's members in this process and its durable committed offsets."""

    def __init__(self, root: Path, name: str, fsync: bool) -> None:
        directory = root / _GROUPS_DIR
        directory.mkdir(exist_ok=True)
        self.name = name
        self._path = directory / f"{name}.json"
        self._fsync = fsync
        self._process_lock = _ProcessLock(directory / f"{name}.lock", f"consumer group {name!r}")
        try:
            self._offsets = _load_offsets(self._path)
        except BaseException:
            self._process_lock.release()
            raise
        self._lock = threading.Lock()
        self._members: list[LocalConsumer] = []

    def join(self, member: LocalConsumer) -> None:
        with self._lock:
            self._members.append(member)

    def members(self) -> list[LocalConsumer]:
        with self._lock:
            return list(self._members)

    def leave(self, member: LocalConsumer) -> bool:
        """Remove ``member``; True when the group has no members left in this process."""
        with self._lock:
            self._members.remove(member)
            return not self._members

    def partitions_of(self, member: LocalConsumer, topic: str, count: int) -> range:
        with self._lock:
            subscribers = [m for m in self._members if topic in m.topics]
        if member not in subscribers:
            return range(0)
        return range(subscribers.index(member), count, len(subscribers))

    def committed(self, tp: TopicPartition) -> int:
        with self._lock:
            return self._offsets.get(tp, 0)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            merged = {**self._offsets, **offsets}
            try:
                _write_atomically(self._path, _dump_offsets(merged), self._fsync)
            except OSError as e:
                raise BusError(
                    f"cannot save the offsets of group {self.name!r} to {self._path}: {e}; "
                    "free disk space or fix permissions (nothing was committed)"
                ) from e
            self._offsets = merged

    def close(self) -> None:
        self._process_lock.release()


class LocalConsumer(Closing):
    """One member of a consumer group of the local bus; use it from one thread at a time."""

    def __init__(
        self,
        root: Path,
        group: _Group,
        topics: tuple[str, ...],
        catalog: _Catalog,
        notifier: _Notifier,
        on_close: Callable[[LocalConsumer], None],
    ) -> None:
        self._root = root
        self.group = group
        self.topics = topics
        self._catalog = catalog
        self._notifier = notifier
        self._on_close = on_close
        self._readers: dict[TopicPartition, _PartitionReader] = {}
        self._order: list[TopicPartition] = []
        self._first = 0  # rotates so that no partition starves the others
        self._closed = False
        self._failure: str | None = None
        # Held while readers are in use, so that close() from another thread (the bus
        # closing) never closes a file under a read; waiting for data happens outside it.
        self._in_use = threading.Lock()

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout_s`` for the first."""
        if max_messages < 1:
            raise BusError(f"max_messages must be at least 1, got {max_messages}")
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            seen = self._notifier.published
            messages = self._fetch(max_messages)
            remaining_s = deadline - time.monotonic()
            if messages or remaining_s <= 0:
                return messages
            self._notifier.wait(seen, min(remaining_s, CROSS_PROCESS_POLL_S))

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably record ``offsets`` (next offset to read, per partition) for the group."""
        with self._in_use:
            self._check_open()
            self._sync_assignment()
            accepted = self._checked_offsets(offsets)
            if accepted:
                self.group.commit(accepted)

    def _checked_offsets(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        accepted: dict[TopicPartition, int] = {}
        for tp, offset in offsets.items():
            reader = self._readers.get(tp)
            if reader is None:
                self._check_moved(tp)
                continue
            if not 0 <= offset <= reader.next_offset:
                raise BusError(
                    f"cannot commit offset {offset} for {tp[0]}[{tp[1]}]: this consumer has "
                    f"read up to {reader.next_offset}; commit next_offsets(processed messages)"
                )
            accepted[tp] = offset
        return accepted

    def assignment(self) -> list[TopicPartition]:
        """The partitions this member owns now."""
        with self._in_use:
            self._check_open()
            self._sync_assignment()
            return list(self._order)

    def close(self) -> None:
        """Leave the group without committing; its partitions go to the remaining members."""
        with self._in_use:
            if self._closed:
                return
            self._closed = True
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()
        self._on_close(self)

    def _fetch(self, max_messages: int) -> list[Message]:
        with self._in_use:
            self._check_open()
            return self._read(max_messages)

    def _read(self, max_messages: int) -> list[Message]:
        try:
            self._sync_assignment()
            out: list[Message] = []
            count = len(self._order)
            for i in range(count):
                self._readers[self._order[(self._first + i) % count]].read_into(out, max_messages)
                if len(out) >= max_messages:
                    break
        except BusError as e:
            # Readers have moved past the records in ``out``, which are not delivered; a
            # commit now could skip them, so this member stops and a new one re-reads them.
            self._failure = str(e)
            raise
        self._first = (self._first + 1) % max(count, 1)
        return out

    def _sync_assignment(self) -> None:
        wanted = self._wanted_partitions()
        if wanted == set(self._readers):
            return
        for tp in set(self._readers) - wanted:
            self._readers.pop(tp).close()
        for tp in wanted - set(self._readers):
            self._readers[tp] = self._open_reader(tp)
        self._order = sorted(self._readers)

    def _wanted_partitions(self) -> set[TopicPartition]:
        wanted: set[TopicPartition] = set()
        for topic in self.topics:
            count = self._catalog.partition_count(topic)
            if count is not None:
                wanted.update((topic, p) for p in self.group.partitions_of(self, topic, count))
        return wanted

    def _open_reader(self, tp: TopicPartition) -> _PartitionReader:
        topic, partition = tp
        reader = _PartitionReader(self._root / topic / str(partition), topic, partition)
        try:
            reader.seek(self.group.committed(tp))
        except BaseException:
            reader.close()
            raise
        return reader

    def _check_moved(self, tp: TopicPartition) -> None:
        topic, partition = tp
        count = self._catalog.partition_count(topic) if topic in self.topics else None
        if count is None or not 0 <= partition < count:
            raise BusError(
                f"cannot commit {topic}[{partition}]: not a partition of the topics this "
                f"consumer of group {self.group.name!r} reads ({', '.join(self.topics)})"
            )
        logger.warning(
            "not committing %s[%d] for group %r: the partition moved to another member, which "
            "reads again from the last commit",
            topic,
            partition,
            self.group.name,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise BusError(
                f"this consumer of group {self.group.name!r} is closed (or its bus is); "
                "open a new one, it resumes from the group's committed offsets"
            )
        if self._failure:
            raise BusError(f"{self._failure}; after that, close this consumer and open a new one")


# --- the bus ------------------------------------------------------------------------------


class LocalBus(Closing):
    """The embedded bus: durable partitioned logs under ``path``, consumed in this process."""

    def __init__(
        self,
        path: Path,
        partitions: int,
        fsync: bool,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if partitions < 1 or segment_bytes < 1:
            raise BusError(
                f"partitions ({partitions}) and segment_bytes ({segment_bytes}) must be at "
                "least 1; check PULSO_KAFKA_PARTITIONS"
            )
        self._root = Path(path)
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BusError(
                f"cannot create the local bus folder {self._root}: {e}; set PULSO_BUS_URL="
                "local:///a/writable/folder or PULSO_DATA_DIR"
            ) from e
        self._partitions = partitions
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()  # publishing, and the topic and group registries
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._catalog = _Catalog(self._root)
        self._notifier = _Notifier()
        self._closed = False

    @property
    def path(self) -> Path:
        return self._root

    def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Append a batch; when this returns every record survives a crash of the process."""
        _check_name(topic, "topic")
        if not records:
            return
        with self._lock:
            self._check_open()
            self._topic(topic).append(records)
        self._notifier.notify()

    def consumer(self, group: str, topics: Sequence[str]) -> LocalConsumer:
        """Join ``group`` to read ``topics`` from the group's committed offsets."""
        _check_name(group, "consumer group")
        if isinstance(topics, str) or not topics:
            raise BusError(f"group {group!r} needs a list of topics to read, got {topics!r}")
        for topic in topics:
            _check_name(topic, "topic")
        with self._lock:
            self._check_open()
            state = self._groups.get(group) or self._new_group(group)
            member = LocalConsumer(
                self._root,
                state,
                tuple(dict.fromkeys(topics)),
                self._catalog,
                self._notifier,
                self._leave,
            )
            state.join(member)
        return member

    def close(self) -> None:
        """Close every consumer and log; the folder keeps all data for the next start."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            topics = list(self._topics.values())
            self._topics.clear()
            members = [m for state in self._groups.values() for m in state.members()]
        for member in members:
            member.close()
        for topic in topics:
            topic.close()
        self._notifier.notify()

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = _Topic(self._root, name, self._partitions, self._segment_bytes, self._fsync)
            self._topics[name] = topic
        return topic

    def _new_group(self, name: str) -> _Group:
        state = _Group(self._root, name, self._fsync)
        self._groups[name] = state
        return state

    def _leave(self, member: LocalConsumer) -> None:
        with self._lock:
            state = member.group
            if state.leave(member):
                state.close()
                del self._groups[state.name]

    def _check_open(self) -> None:
        if self._closed:
            raise BusError(f"the local bus at {self._root} is closed; open it again")
