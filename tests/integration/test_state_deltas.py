"""The runner's incremental state checkpoints on the real local bus and both stores: the fraud
detector is saved as a delta per batch beside the offsets and compacted into a full snapshot
now and then; restarts at any batch, compactions included, give one uninterrupted run's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulso.bus import open_bus
from pulso.domain.events import Topic, encode_event
from pulso.pipeline import runner as runner_module
from pulso.pipeline.factory import build_runner
from pulso.store import open_store
from pulso.store.protocol import Store
from tests.integration.test_fraud_pipeline import (
    _pipeline_settings,
    run_in_steps,
    traffic,
)

GROUP_STATE = "state/pulso-pipeline/fraud"


def _names(store: Store, prefix: str) -> list[str]:
    with store.transaction() as tx:
        return [name for name, _ in tx.list_checkpoints(prefix)]


@pytest.mark.parametrize(("max_count", "restart_every"), [(3, 2), (5, 4), (500, 3)])
def test_restarts_with_deltas_and_compactions_match_one_uninterrupted_run(
    settings_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    max_count: int,
    restart_every: int,
) -> None:
    values = [encode_event(e) for e in traffic(3_000, seed=12)]
    whole = run_in_steps(_pipeline_settings(settings_factory, tmp_path / "u", 150), values, None)
    monkeypatch.setattr(runner_module, "DELTA_MAX_COUNT", max_count)
    again = run_in_steps(
        _pipeline_settings(settings_factory, tmp_path / "r", 150), values, restart_every
    )
    assert whole[0] and whole[1]
    assert again == whole


def test_deltas_are_saved_per_batch_and_compaction_deletes_them(
    settings_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "DELTA_MAX_COUNT", 4)
    monkeypatch.setattr(runner_module, "DELTA_COMPACT_RATIO", 1_000.0)  # the count decides
    settings = _pipeline_settings(settings_factory, tmp_path, 100)
    bus, store = open_bus(settings), open_store(settings)
    try:
        store.migrate()
        bus.publish(Topic.PAYMENTS, [(None, encode_event(e)) for e in traffic(1_000, seed=3)])
        runner = build_runner(settings, bus, store)
        try:
            seen: list[int] = []
            fulls: list[bytes | None] = []
            for _ in range(8):
                assert runner.step() is not None
                seen.append(len(_names(store, f"{GROUP_STATE}/delta/")))
                with store.transaction() as tx:
                    fulls.append(tx.load_checkpoint(GROUP_STATE))
        finally:
            runner.close()
        # The first batch saves a full snapshot; then four deltas; then a compaction...
        assert seen == [0, 1, 2, 3, 4, 0, 1, 2]
        assert fulls[0] is not None and fulls[0] == fulls[4] != fulls[5] == fulls[7]
        assert _names(store, f"{GROUP_STATE}/delta/") == [
            f"{GROUP_STATE}/delta/{i:012d}" for i in range(2)
        ]
    finally:
        store.close()
        bus.close()


def test_a_failed_batch_makes_the_next_save_a_full_one(
    settings_factory: Any, tmp_path: Path
) -> None:
    settings = _pipeline_settings(settings_factory, tmp_path, 100)
    bus, store = open_bus(settings), open_store(settings)
    try:
        store.migrate()
        bus.publish(Topic.PAYMENTS, [(None, encode_event(e)) for e in traffic(600, seed=5)])
        runner = build_runner(settings, bus, store)
        try:
            assert runner.step() is not None  # full
            assert runner.step() is not None  # a delta
            assert len(_names(store, f"{GROUP_STATE}/delta/")) == 1

            def fail(_tx: Any) -> None:
                raise RuntimeError("lost the election")

            runner._fence = fail
            with pytest.raises(RuntimeError):
                runner.step()
            runner._fence = None
            assert runner.step() is not None
            assert _names(store, f"{GROUP_STATE}/delta/") == []  # a full one, deltas gone
        finally:
            runner.close()
    finally:
        store.close()
        bus.close()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, settings_factory: Any) -> Any:
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_url")
    store = open_store(settings_factory(**overrides))
    store.migrate()
    yield store
    store.close()


def test_checkpoints_are_listed_in_name_order_and_deleted_by_prefix(any_store: Store) -> None:
    with any_store.transaction() as tx:
        for name in ("s/a/delta/000000000002", "s/a/delta/000000000001", "s/a", "s/ab/delta/x"):
            tx.save_checkpoint(name, name.encode())
        tx.save_checkpoint("s/a_/delta/0", b"an underscore is no wildcard")
    with any_store.transaction() as tx:
        assert tx.list_checkpoints("s/a/delta/") == [
            ("s/a/delta/000000000001", b"s/a/delta/000000000001"),
            ("s/a/delta/000000000002", b"s/a/delta/000000000002"),
        ]
        assert tx.list_checkpoints("nothing/") == []
        assert tx.delete_checkpoints("s/a/delta/") == 2
        assert tx.delete_checkpoints("s/a/delta/") == 0
    with any_store.transaction() as tx:
        assert tx.list_checkpoints("s/a/") == []
        assert tx.load_checkpoint("s/a") == b"s/a"
        assert [n for n, _ in tx.list_checkpoints("s/a")] == ["s/a", "s/a_/delta/0", "s/ab/delta/x"]
        assert tx.list_checkpoints("s/ab/") == [("s/ab/delta/x", b"s/ab/delta/x")]
