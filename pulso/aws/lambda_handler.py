"""AWS Lambda handler for marketplace alerts, run by an EventBridge schedule.

For each watched category: take a best-seller snapshot filed under the event's ``time`` (to
the minute), write it to DynamoDB, compare it with the previous snapshot and publish one SNS
message per product that entered the top N. A retried event (same ``time``) finds its
snapshot stored already and publishes nothing again.

Settings come from the function's environment (``PULSO_*``, see ``deploy/terraform``); the
event may override them in ``detail``: ``{"categories": ["MLB1051"], "top_n": 5}`` (and
``offline_round`` with ``PULSO_MERCADOLIVRE_OFFLINE=true``, for demos). Run it locally::

    python -m pulso.aws.lambda_handler deploy/terraform/sample_event.json
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from pulso.aws.dynamodb import DynamoSnapshotStore, aws_client
from pulso.config import Settings, load_settings
from pulso.domain.alerts import Alert
from pulso.errors import ConfigError
from pulso.market.alerts import entry_alert, top_n_entries
from pulso.market.source import open_client, parse_categories
from pulso.market.sync import snapshot_time, take_snapshot
from pulso.sources.mercadolivre import MercadoLivreClient

log = logging.getLogger(__name__)

DEFAULT_TOP_N = 5


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """The Lambda entry point (``pulso.aws.lambda_handler.handler``)."""
    settings = _with_secret(load_settings())
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    categories = _categories(detail, settings)
    top_n = int(detail.get("top_n") or settings.market_watch_top_n or DEFAULT_TOP_N)
    taken_at = snapshot_time(_event_time(event))
    store = DynamoSnapshotStore(
        aws_client("dynamodb", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url),
        settings.market_dynamodb_table,
    )
    sns = (
        aws_client("sns", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
        if settings.market_sns_topic_arn
        else None
    )
    offline_round = int(detail.get("offline_round", -1))
    results = []
    with open_client(settings, offline_round=offline_round) as client:
        for category_id in categories:
            alerts = _sync(client, store, category_id, taken_at, top_n)
            published = _publish(sns, settings.market_sns_topic_arn, alerts)
            results.append(
                {
                    "category_id": category_id,
                    "alerts": [a.message for a in alerts],
                    "published": published,
                }
            )
    return {"taken_at": taken_at.isoformat(), "top_n": top_n, "categories": results}


def _sync(
    client: MercadoLivreClient,
    store: DynamoSnapshotStore,
    category_id: str,
    taken_at: datetime,
    top_n: int,
) -> list[Alert]:
    if store.has_snapshot(category_id, taken_at):
        log.info("snapshot of %s at %s is stored already; nothing to do", category_id, taken_at)
        return []
    previous = store.latest_ranking(category_id, before=taken_at)
    snapshots = take_snapshot(client, category_id, taken_at)
    store.put_snapshots(snapshots)
    entered = top_n_entries(previous, snapshots, top_n)
    return [entry_alert(s, top_n, (previous or {}).get(s.product_id)) for s in entered]


def _publish(sns: Any, topic_arn: str, alerts: list[Alert]) -> int:
    if sns is None:
        return 0
    for alert in alerts:
        sns.publish(
            TopicArn=topic_arn,
            Subject=f"pulso: top {alert.details['top_n']} em {alert.details['category_id']}",
            Message=alert.message,
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": alert.kind},
                "alert_id": {"DataType": "String", "StringValue": alert.alert_id},
            },
        )
    return len(alerts)


def _with_secret(settings: Settings) -> Settings:
    """Settings with the Mercado Livre secrets read from Secrets Manager, when an ARN is set:
    the secret is JSON ``{"client_secret": ..., "refresh_token": ...}``."""
    arn = settings.mercadolivre_secret_arn
    if not arn or settings.mercadolivre_offline:
        return settings
    client = aws_client(
        "secretsmanager", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    try:
        text = client.get_secret_value(SecretId=arn)["SecretString"]
        secret = json.loads(text)
    except Exception as e:  # botocore ClientError, missing SecretString, bad JSON
        raise ConfigError(
            "PULSO_MERCADOLIVRE_SECRET_ARN", f"cannot read the secret ({type(e).__name__})"
        ) from None
    if not isinstance(secret, dict):
        raise ConfigError("PULSO_MERCADOLIVRE_SECRET_ARN", "the secret is not a JSON object")
    return settings.model_copy(
        update={
            "mercadolivre_client_secret": SecretStr(str(secret.get("client_secret", ""))),
            "mercadolivre_refresh_token": SecretStr(str(secret.get("refresh_token", ""))),
        }
    )


def _categories(detail: Mapping[str, Any], settings: Settings) -> list[str]:
    given = detail.get("categories")
    if isinstance(given, list) and given:
        return parse_categories(",".join(str(c) for c in given))
    return parse_categories(settings.market_categories)


def _event_time(event: Mapping[str, Any]) -> datetime:
    """EventBridge's ``time`` (``2026-11-24T12:00:00Z``); now when absent."""
    text = event.get("time")
    if isinstance(text, str):
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            return at
    return datetime.now(UTC)


def main(argv: list[str] | None = None) -> int:
    """Invoke the handler on an event file and print its answer (a local run)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pulso.aws.lambda_handler EVENT.json", file=sys.stderr)
        return 2
    event = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(json.dumps(handler(event), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
