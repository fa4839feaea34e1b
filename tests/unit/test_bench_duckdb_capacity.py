"""benchmarks/bench_duckdb_capacity.py at a tiny memory limit: with random (UUIDv4) event ids
the keyed tables' writes fail once DuckDB's primary-key indexes fill the limit, with pulso's
hint on what to do; the same rows without keys go on to twice that (no timing is asserted;
time-ordered ids are compared in the benchmark itself, at limits too large for a test)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_duckdb_capacity import fill_until_full, limit_bytes
from bench_store_floor import prepare, read_batches
from bench_stream import fill

from pulso.store.duckdb import MEMORY_HINT

LIMIT = "24MB"


def test_random_ids_fill_the_limit_and_say_what_to_do_keyless_tables_do_not(
    tmp_path: Path,
) -> None:
    fill(tmp_path / "bus", 2_000, 20, 100.0)
    messages = list(itertools.chain.from_iterable(read_batches(tmp_path / "bus", 10**9)))
    [batch] = prepare(tmp_path / "bus", [messages], processors=False)

    stored, failure = fill_until_full(
        tmp_path / "keys", LIMIT, batch.raw, batch.payment_rows, 10**7, keys=True, ordered=False
    )
    assert 0 < stored < 10**7
    assert "Out of Memory" in failure and "[+ pulso's hint]" in failure

    stored_plain, failure_plain = fill_until_full(
        tmp_path / "plain", LIMIT, batch.raw, batch.payment_rows, 2 * stored, keys=False
    )
    assert stored_plain == 2 * stored and failure_plain == ""


def test_the_hint_names_the_setting_and_the_ways_out() -> None:
    assert "PULSO_DUCKDB_MEMORY_LIMIT" in MEMORY_HINT
    assert "pulso maintenance retention" in MEMORY_HINT and "UUIDv7" in MEMORY_HINT


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), ("1.5 gb", 1_500_000_000)],
)
def test_memory_limits_read_as_duckdb_reads_them(text: str, expected: int) -> None:
    assert limit_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", ""])
def test_a_limit_that_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        limit_bytes(text)
