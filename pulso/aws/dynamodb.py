"""Product snapshots in DynamoDB.

Table layout (``deploy/terraform/main.tf`` creates the same):

- partition key ``pk`` = ``<category_id>#<product_id>``, sort key ``taken_at`` (ISO 8601 UTC,
  which sorts by time): one product's history is one query;
- global secondary index ``by_category`` (``category_id``, ``taken_at``): a category's
  snapshots by time, e.g. the latest ranking;
- prices as exact ``N`` numbers (reais with two places), ratings as numbers, no floats.

Writes go through ``batch_write_item`` 25 at a time, re-sending unprocessed items with
backoff. Putting the same snapshot twice overwrites it with the same values (idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from pulso.domain.products import ProductSnapshot
from pulso.errors import PulsoError

BATCH_MAX: Final = 25
CATEGORY_INDEX: Final = "by_category"
RETRIES: Final = 8


class DynamoStoreError(PulsoError):
    """DynamoDB refused or failed a request; the message names the table and the action."""


def aws_client(service: str, *, region: str = "", endpoint_url: str = "") -> Any:
    """A boto3 client (credentials: boto3's usual chain, or the Lambda's role)."""
    import boto3

    return boto3.session.Session().client(
        service, region_name=region or None, endpoint_url=endpoint_url or None
    )


class DynamoSnapshotStore:
    def __init__(self, client: Any, table: str, *, sleep: Any = time.sleep) -> None:
        self._client = client
        self.table = table
        self._sleep = sleep

    def create_table(self) -> None:
        """Create the table (on-demand billing) if it is missing; for local runs and tests —
        in AWS, Terraform creates it."""
        if self._exists():
            return
        attributes = [("pk", "S"), ("taken_at", "S"), ("category_id", "S")]
        self._call(
            "create the table",
            self._client.create_table,
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "taken_at", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": CATEGORY_INDEX,
                    "KeySchema": [
                        {"AttributeName": "category_id", "KeyType": "HASH"},
                        {"AttributeName": "taken_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        self._client.get_waiter("table_exists").wait(TableName=self.table)

    def put_snapshots(self, snapshots: Sequence[ProductSnapshot]) -> int:
        """Write snapshots in batches of 25; returns how many were written."""
        for start in range(0, len(snapshots), BATCH_MAX):
            chunk = snapshots[start : start + BATCH_MAX]
            self._write_batch([{"PutRequest": {"Item": to_item(s)}} for s in chunk])
        return len(snapshots)

    def history(
        self, category_id: str, product_id: str, *, since: datetime | None = None
    ) -> list[ProductSnapshot]:
        """One product's snapshots in a category, oldest first."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": f"{category_id}#{product_id}"}}
        if since is not None:
            condition += " AND taken_at >= :since"
            values[":since"] = {"S": _iso(since)}
        items = self._query(KeyConditionExpression=condition, ExpressionAttributeValues=values)
        return [from_item(item) for item in items]

    def category_snapshots(
        self, category_id: str, *, since: datetime | None = None
    ) -> list[ProductSnapshot]:
        """A category's snapshots (every product), oldest first."""
        condition = "category_id = :c"
        values: dict[str, Any] = {":c": {"S": category_id}}
        if since is not None:
            condition += " AND taken_at >= :since"
            values[":since"] = {"S": _iso(since)}
        items = self._query(
            IndexName=CATEGORY_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return sorted((from_item(i) for i in items), key=lambda s: (s.taken_at, s.position))

    def latest_ranking(
        self, category_id: str, *, before: datetime | None = None
    ) -> dict[str, int] | None:
        """Product id → position in the category's latest snapshot (before ``before``)."""
        condition = "category_id = :c"
        values: dict[str, Any] = {":c": {"S": category_id}}
        if before is not None:
            condition += " AND taken_at < :before"
            values[":before"] = {"S": _iso(before)}
        newest = self._call(
            "find the latest snapshot",
            self._client.query,
            TableName=self.table,
            IndexName=CATEGORY_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=1,
        ).get("Items", [])
        if not newest:
            return None
        at = newest[0]["taken_at"]
        items = self._query(
            IndexName=CATEGORY_INDEX,
            KeyConditionExpression="category_id = :c AND taken_at = :t",
            ExpressionAttributeValues={":c": {"S": category_id}, ":t": at},
        )
        return {i["product_id"]["S"]: int(i["position"]["N"]) for i in items}

    def has_snapshot(self, category_id: str, taken_at: datetime) -> bool:
        """Whether the category's snapshot at ``taken_at`` is stored already."""
        answer = self._call(
            "look for a snapshot",
            self._client.query,
            TableName=self.table,
            IndexName=CATEGORY_INDEX,
            KeyConditionExpression="category_id = :c AND taken_at = :t",
            ExpressionAttributeValues={":c": {"S": category_id}, ":t": {"S": _iso(taken_at)}},
            Limit=1,
        )
        return bool(answer.get("Items"))

    def _exists(self) -> bool:
        try:
            self._client.describe_table(TableName=self.table)
        except self._client.exceptions.ResourceNotFoundException:
            return False
        except Exception as e:
            raise DynamoStoreError(self._message("describe the table", e)) from None
        return True

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page_args = kwargs | ({"ExclusiveStartKey": start} if start else {})
            page = self._call("query", self._client.query, TableName=self.table, **page_args)
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = requests
        for attempt in range(RETRIES):
            answer = self._call(
                "write a batch",
                self._client.batch_write_item,
                RequestItems={self.table: pending},
            )
            pending = answer.get("UnprocessedItems", {}).get(self.table, [])
            if not pending:
                return
            self._sleep(min(0.05 * 2**attempt, 2.0))
        raise DynamoStoreError(
            f"DynamoDB table {self.table}: {len(pending)} snapshots stayed unprocessed after "
            f"{RETRIES} tries (throttled); raise the table's capacity or try again"
        )

    def _call(self, action: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except Exception as e:  # botocore's ClientError, EndpointConnectionError...
            raise DynamoStoreError(self._message(action, e)) from None

    def _message(self, action: str, error: Exception) -> str:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        return f"DynamoDB table {self.table}: cannot {action} ({code}: {error})"


def to_item(s: ProductSnapshot) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"{s.category_id}#{s.product_id}"},
        "taken_at": {"S": _iso(s.taken_at)},
        "site": {"S": s.site},
        "category_id": {"S": s.category_id},
        "product_id": {"S": s.product_id},
        "kind": {"S": s.kind},
        "position": {"N": str(s.position)},
        "title": {"S": s.title},
    }
    if s.price is not None:
        item["price"] = {"N": f"{s.price:.2f}"}
    if s.rating is not None:
        item["rating"] = {"N": str(Decimal(str(s.rating)))}
    if s.available_quantity is not None:
        item["available_quantity"] = {"N": str(s.available_quantity)}
    if s.seller:
        item["seller"] = {"S": s.seller}
    return item


def from_item(item: dict[str, Any]) -> ProductSnapshot:
    def number(name: str) -> str | None:
        value = item.get(name)
        return value["N"] if value else None

    price, rating, quantity = number("price"), number("rating"), number("available_quantity")
    return ProductSnapshot(
        site=item["site"]["S"],
        category_id=item["category_id"]["S"],
        product_id=item["product_id"]["S"],
        kind=item["kind"]["S"],
        position=int(item["position"]["N"]),
        title=item["title"]["S"],
        taken_at=datetime.fromisoformat(item["taken_at"]["S"]),
        price=None if price is None else Decimal(price).quantize(Decimal("0.01")),
        rating=None if rating is None else float(rating),
        available_quantity=None if quantity is None else int(quantity),
        seller=item["seller"]["S"] if "seller" in item else None,
    )


def _iso(at: datetime) -> str:
    """UTC ISO 8601 to the second, ``2026-11-24T12:00:00+00:00``: sorts as time does."""
    return at.astimezone(UTC).isoformat(timespec="seconds")
