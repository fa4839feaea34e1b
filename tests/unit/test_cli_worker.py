"""Profiles: the cluster profile and `pulso worker` refuse embedded-only backends; the worker
pool's commands and the worker's retry schedule."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from pulso.cli import app
from pulso.cli.worker import PipelineWorker, WorkerPool, cluster_problems
from pulso.config import Settings
from pulso.errors import BusUnavailableError

KAFKA = "kafka://127.0.0.1:9092"
POSTGRES = "postgresql://pulso@127.0.0.1:5432/pulso"


def invoke(*args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize(
    ("bus", "store", "named"),
    [
        ("local://", POSTGRES, ["PULSO_BUS_URL"]),
        (KAFKA, "", ["PULSO_STORE_URL"]),
        (KAFKA, "duckdb:///data/x.duckdb", ["PULSO_STORE_URL"]),
        ("local://", "", ["PULSO_BUS_URL", "PULSO_STORE_URL"]),
    ],
)
def test_cluster_profile_refuses_embedded_only_backends(
    bus: str, store: str, named: list[str]
) -> None:
    env = {"PULSO_BUS_URL": bus, "PULSO_STORE_URL": store}
    for args, extra in ((("worker",), {}), (("up",), {"PULSO_PROFILE": "cluster"})):
        result = invoke(*args, **env, **extra)
        assert result.exit_code == 1, result.output
        assert "needs Kafka and PostgreSQL" in result.output
        for name in named:
            assert name in result.output
    result = invoke("up", "--profile", "cluster", **env)
    assert result.exit_code == 1 and "the cluster profile needs" in result.output


def test_unknown_profile_is_refused() -> None:
    result = invoke("up", "--profile", "galaxy")
    assert result.exit_code == 1
    assert "--profile must be embedded or cluster" in result.output


def test_profile_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="profile"):
        Settings(profile="galaxy")
    assert cluster_problems(Settings(bus_url=KAFKA, store_url=POSTGRES)) == []


def test_pool_runs_workers_that_all_take_part_in_the_stream_state_election() -> None:
    cluster = Settings(bus_url=KAFKA, store_url=POSTGRES)
    many = WorkerPool(cluster, 3)
    assert many.stateful
    assert many.command(1)[-6:] == [
        "--group",
        "pulso-pipeline",
        "--name",
        "worker-2",
        "--role",
        "all",
    ]
    stateless = cluster.model_copy(update={"window_enabled": False, "fraud_enabled": False})
    assert not WorkerPool(stateless, 3).stateful


def test_worker_refuses_an_unknown_role_and_a_state_role_without_state() -> None:
    env = {"PULSO_BUS_URL": KAFKA, "PULSO_STORE_URL": POSTGRES}
    result = invoke("worker", "--role", "everything", **env)
    assert result.exit_code == 1 and "--role must be one of facts, state, all" in result.output
    result = invoke(
        "worker",
        "--role",
        "state",
        **env,
        PULSO_WINDOW_ENABLED="false",
        PULSO_FRAUD_ENABLED="false",
    )
    assert result.exit_code == 1 and "both are off" in result.output, result.output


def test_worker_retries_with_capped_backoff_until_cancelled() -> None:
    """Every failure to reach the bus is logged and retried, the waits double up to the cap."""
    settings = Settings(bus_url=KAFKA, store_url=POSTGRES, worker_retry_max_s=2.0)
    cancel = threading.Event()
    waits: list[float] = []
    attempts = 0

    def unreachable(_: Settings) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 6:
            cancel.set()
        raise BusUnavailableError("no broker answers")

    worker = PipelineWorker(settings, open_bus=unreachable, name="w")
    original = worker._backoff

    def record() -> float:
        waits.append(original())
        return 0.0

    worker._backoff = record  # type: ignore[method-assign]
    totals = worker.run(cancel)
    assert totals.retries == 6 and totals.messages == 0
    bases = [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # doubling from 0.5 s, capped at 2 s, ±20 % jitter
    assert all(0.8 * b <= w <= 1.2 * b for w, b in zip(waits, bases, strict=True)), waits


def test_worker_does_not_retry_a_bug() -> None:
    settings = Settings(bus_url=KAFKA, store_url=POSTGRES)

    def broken(_: Settings) -> Any:
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        PipelineWorker(settings, open_bus=broken).run(threading.Event())
