"""Marketplace snapshots: DynamoDB batch writes against one PutItem per snapshot, and trends
over a month of hourly rankings.

1. **DynamoDB** (moto's standalone server on loopback, so the figures measure requests, not
   AWS): ``DynamoSnapshotStore.put_snapshots`` (``batch_write_item``, 25 per request) beside
   the baseline of one ``put_item`` per snapshot, as the seed's boto3 script would write them.
2. **Trends**: ``category_trends`` over 30 days × 24 hourly snapshots × 20 products of one
   category (14,400 rows), beside the baseline of reading them (``load_snapshots``) from a
   DuckDB store.

There is no goal for these in the issue; the ratios are for the record.

    python benchmarks/bench_market.py [--snapshots 1000]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pulso.aws.dynamodb import DynamoSnapshotStore, aws_client, to_item
from pulso.config import load_settings
from pulso.domain.products import ProductSnapshot
from pulso.market.history import load_snapshots, record_snapshot
from pulso.market.trends import category_trends
from pulso.store import open_store

T0 = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)


def snapshots(count: int, *, hours: int = 1) -> list[ProductSnapshot]:
    rows = []
    for n in range(count):
        at = T0 + timedelta(hours=(n // 20) * hours)
        position = (n * 7 + n // 20) % 20 + 1
        rows.append(
            ProductSnapshot(
                site="MLB",
                category_id="MLB1051",
                product_id=f"MLB{3_800_000_000 + (n % 20) + (n // 400)}",
                kind="ITEM",
                position=position,
                title=f"Smartphone modelo {n % 20}",
                taken_at=at,
                price=Decimal("999.90") + n % 50,
                rating=4.5,
                available_quantity=100,
            )
        )
    return rows


def bench_dynamodb(count: int) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIABENCHBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="sa-east-1",
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = aws_client("dynamodb", region="sa-east-1", endpoint_url=f"http://{host}:{port}")
    try:
        rows = snapshots(count)
        baseline = DynamoSnapshotStore(client, f"base-{uuid.uuid4().hex[:6]}")
        baseline.create_table()
        started = time.perf_counter()
        for row in rows:
            client.put_item(TableName=baseline.table, Item=to_item(row))
        one_by_one_s = time.perf_counter() - started
        batched = DynamoSnapshotStore(client, f"batch-{uuid.uuid4().hex[:6]}")
        batched.create_table()
        started = time.perf_counter()
        batched.put_snapshots(rows)
        batch_s = time.perf_counter() - started
        assert len(batched.category_snapshots("MLB1051")) == count
    finally:
        server.stop()
    print(f"DynamoDB, {count} snapshots (moto on loopback):")
    print(f"  baseline put_item one by one: {one_by_one_s:6.2f} s  {count / one_by_one_s:8.0f}/s")
    print(f"  put_snapshots (batches of 25): {batch_s:6.2f} s  {count / batch_s:8.0f}/s")
    print(f"  ratio: {one_by_one_s / batch_s:.1f}x faster")


def bench_trends() -> None:
    rows = snapshots(30 * 24 * 20)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(load_settings(data_dir=Path(folder)))
        try:
            by_time: dict[datetime, list[ProductSnapshot]] = {}
            for row in rows:
                by_time.setdefault(row.taken_at, []).append(row)
            for at, ranking in by_time.items():
                record_snapshot(store, "MLB1051", at, ranking)
            started = time.perf_counter()
            loaded = load_snapshots(store, since=T0, until=T0 + timedelta(days=31))
            load_s = time.perf_counter() - started
        finally:
            store.close()
    started = time.perf_counter()
    (report,) = category_trends(loaded)
    trends_s = time.perf_counter() - started
    print(f"Trends over {len(loaded)} snapshot rows ({report.snapshots} rankings):")
    print(f"  baseline load_snapshots from DuckDB: {load_s * 1000:7.1f} ms")
    print(f"  category_trends:                     {trends_s * 1000:7.1f} ms")
    print(f"  ratio: trends take {trends_s / load_s:.2f}x the time of reading the rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    bench_dynamodb(args.snapshots)
    bench_trends()


if __name__ == "__main__":
    main()
