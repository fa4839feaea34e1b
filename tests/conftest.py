"""Shared fixtures: a fresh PostgreSQL schema per test, librdkafka's mock cluster, settings.

PostgreSQL is found at ``PULSO_TEST_POSTGRES_URL`` (default: the local server). The test
command (scripts/test.sh) makes sure one answers; here a missing server is a failure, never a
silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get(
    "PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test depends on the machine's PULSO_* variables or a .env in the working folder."""
    for name in list(os.environ):
        if name.startswith("PULSO_") and name != "PULSO_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {e}. Run scripts/test.sh")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def kafka_cluster() -> Iterator[str]:
    """librdkafka's mock cluster (real Kafka protocol over TCP); yields its bootstrap servers.

    The client that created the cluster is kept alive for the test's whole life.
    """
    from confluent_kafka import Producer

    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "x"})
    metadata = owner.list_topics(timeout=10)
    brokers = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    yield brokers
    owner.flush(5)
    del owner


@pytest.fixture
def settings_factory(tmp_path: Path) -> Any:
    """Build Settings rooted in the test's own folder."""
    from pulso.config import load_settings

    def make(**overrides: Any) -> Any:
        overrides.setdefault("data_dir", tmp_path / "data")
        return load_settings(**overrides)

    return make


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's standalone server): its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
