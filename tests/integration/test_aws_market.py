"""The DynamoDB snapshot store and the marketplace Lambda handler against moto's standalone
server (real DynamoDB, SNS, SQS and Secrets Manager APIs over HTTP on loopback)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pulso.aws.dynamodb import DynamoSnapshotStore, DynamoStoreError, aws_client
from pulso.aws.lambda_handler import _with_secret, handler
from pulso.config import load_settings
from pulso.domain.products import ProductSnapshot
from pulso.errors import ConfigError

REGION = "sa-east-1"
SAMPLE_EVENT = Path(__file__).resolve().parents[2] / "deploy" / "terraform" / "sample_event.json"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials for moto only; nothing from the machine's AWS setup."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto_endpoint


@pytest.fixture
def table(aws: str) -> Iterator[DynamoSnapshotStore]:
    store = DynamoSnapshotStore(
        aws_client("dynamodb", region=REGION, endpoint_url=aws), f"snapshots-{uuid.uuid4().hex[:8]}"
    )
    store.create_table()
    yield store


def snap(product: str, position: int, at: datetime, category: str = "MLB1051") -> ProductSnapshot:
    return ProductSnapshot(
        site="MLB",
        category_id=category,
        product_id=product,
        kind="PRODUCT" if position % 2 else "ITEM",
        position=position,
        title=f"Smartphone {product} 128GB",
        taken_at=at,
        price=Decimal("1299.90") + position,
        rating=4.7 if position < 5 else None,
        available_quantity=position * 3,
        seller="241983636" if position < 3 else None,
    )


def test_snapshots_are_written_in_batches_and_read_back_exactly(
    table: DynamoSnapshotStore,
) -> None:
    first = [snap(f"MLB{n}", n, T0) for n in range(1, 31)]  # 30: two batches of 25 and 5
    assert table.put_snapshots(first) == 30
    table.create_table()  # already there: nothing happens
    assert table.category_snapshots("MLB1051") == first
    one = table.history("MLB1051", "MLB7")
    assert one == [first[6]] and one[0].price == Decimal("1306.90")
    assert one[0].rating is None and one[0].seller is None


def test_history_latest_ranking_and_a_repeat(table: DynamoSnapshotStore) -> None:
    day2 = T0 + timedelta(days=1)
    table.put_snapshots([snap("A", 1, T0), snap("B", 2, T0)])
    table.put_snapshots([snap("B", 1, day2), snap("A", 2, day2), snap("C", 3, day2)])
    table.put_snapshots([snap("B", 1, day2)])  # the same snapshot again: overwritten
    table.put_snapshots([snap("Z", 1, T0, category="MLB1648")])
    assert [s.position for s in table.history("MLB1051", "A")] == [1, 2]
    assert [s.taken_at for s in table.history("MLB1051", "A", since=day2)] == [day2]
    assert len(table.category_snapshots("MLB1051")) == 5
    assert [s.product_id for s in table.category_snapshots("MLB1051", since=day2)] == [
        "B",
        "A",
        "C",
    ]
    assert table.latest_ranking("MLB1051") == {"B": 1, "A": 2, "C": 3}
    assert table.latest_ranking("MLB1051", before=day2) == {"A": 1, "B": 2}
    assert table.latest_ranking("MLB1051", before=T0) is None
    assert table.has_snapshot("MLB1051", day2) and not table.has_snapshot("MLB1648", day2)


def test_a_missing_table_is_a_clear_error(aws: str) -> None:
    store = DynamoSnapshotStore(aws_client("dynamodb", region=REGION, endpoint_url=aws), "nope")
    with pytest.raises(DynamoStoreError, match="DynamoDB table nope: cannot write a batch"):
        store.put_snapshots([snap("A", 1, T0)])


def sample_event(time: str, offline_round: int) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))
    event["time"] = time
    event["detail"]["offline_round"] = offline_round
    return event


def test_the_lambda_syncs_stores_and_publishes_top_n_entries_once(
    table: DynamoSnapshotStore, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns = aws_client("sns", region=REGION, endpoint_url=aws)
    sqs = aws_client("sqs", region=REGION, endpoint_url=aws)
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv("PULSO_MERCADOLIVRE_OFFLINE", "true")
    monkeypatch.setenv("PULSO_AWS_ENDPOINT_URL", aws)
    monkeypatch.setenv("PULSO_AWS_REGION", REGION)
    monkeypatch.setenv("PULSO_MARKET_DYNAMODB_TABLE", table.table)
    monkeypatch.setenv("PULSO_MARKET_SNS_TOPIC_ARN", topic)

    baseline = handler(sample_event("2026-11-18T12:00:00Z", 0))
    assert baseline["taken_at"] == "2026-11-18T12:00:00+00:00" and baseline["top_n"] == 5
    assert [c["alerts"] for c in baseline["categories"]] == [[], []]  # the first is a baseline
    answer = handler(sample_event("2026-11-24T12:00:00Z", -1))
    published = sum(c["published"] for c in answer["categories"])
    assert published >= 1
    retried = handler(sample_event("2026-11-24T12:00:00Z", -1))  # EventBridge retries
    assert sum(c["published"] for c in retried["categories"]) == 0

    messages = _drain(sqs, queue)
    assert len(messages) == published
    assert all("entrou no top 5 da categoria" in m for m in messages)
    assert len(table.category_snapshots("MLB1051")) == 40  # two snapshots of 20
    assert (
        set(table.latest_ranking("MLB1648") or {})
        and len(table.latest_ranking("MLB1648") or {}) == 20
    )


def _drain(sqs: Any, queue: str) -> list[str]:
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = got.get("Messages", [])
        if not batch:
            return bodies
        bodies.extend(m["Body"] for m in batch)
        for m in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def test_the_lambda_reads_mercado_livre_secrets_from_secrets_manager(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = aws_client("secretsmanager", region=REGION, endpoint_url=aws)
    arn = secrets.create_secret(
        Name=f"pulso-ml-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"client_secret": "s3cr3t", "refresh_token": "TG-abc"}),
    )["ARN"]
    settings = load_settings(mercadolivre_secret_arn=arn, aws_endpoint_url=aws, aws_region=REGION)
    loaded = _with_secret(settings)
    assert loaded.mercadolivre_refresh_token is not None
    assert loaded.mercadolivre_refresh_token.get_secret_value() == "TG-abc"
    assert "s3cr3t" not in repr(loaded)
    missing = load_settings(
        mercadolivre_secret_arn=arn + "-gone", aws_endpoint_url=aws, aws_region=REGION
    )
    with pytest.raises(ConfigError, match="PULSO_MERCADOLIVRE_SECRET_ARN"):
        _with_secret(missing)


def test_the_lambda_runs_locally_on_the_sample_event(
    table: DynamoSnapshotStore, aws: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from pulso.aws.lambda_handler import main

    monkeypatch.setenv("PULSO_MERCADOLIVRE_OFFLINE", "true")
    monkeypatch.setenv("PULSO_AWS_ENDPOINT_URL", aws)
    monkeypatch.setenv("PULSO_AWS_REGION", REGION)
    monkeypatch.setenv("PULSO_MARKET_DYNAMODB_TABLE", table.table)
    assert main([str(SAMPLE_EVENT)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["taken_at"] == "2026-11-24T12:00:00+00:00"
    assert [c["category_id"] for c in printed["categories"]] == ["MLB1051", "MLB1648"]
    assert main([]) == 2
