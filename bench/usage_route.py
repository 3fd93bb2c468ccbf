"""Latency of GET /v1/tenants/{t}/usage on Cassandra: SKU rows against detail rows.

Run: .venv/bin/python -m bench.usage_route [--resources 40] [--skus 5] [--requests 50]

One tenant's month (720 hours) is written straight into the usage store (SKU rows and detail
rows per SKU, region and resource, as the projector writes them), then the real app (in
process, one client, sequential requests) answers a month by day grouped by SKU (the
hourly_usage path), grouped by resource and by all three (the hourly_usage_detail path).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from bench.common import header, percentile, servers
from ledger.model import Position
from ledger.scylla import ScyllaLedgerStore
from projections.hourly import HourlyUsage, UsageDetail
from projections.scylla import ScyllaUsageStore
from pulse.migrate import migrate_cql
from pulse.settings import CqlSettings
from query.app import create_app
from storage.cql import connect

MONTH = datetime(2026, 11, 1, tzinfo=UTC)
REGIONS = ["br-se1", "br-ne1", "us-east1", "eu-west1"]


def write_month(usage: ScyllaUsageStore, tenant: str, skus: int, resources: int) -> int:
    rows = 0
    for h in range(720):
        hour = MONTH + timedelta(hours=h)
        detail = [
            UsageDetail(
                tenant,
                hour,
                f"sku-{s}",
                "GB",
                REGIONS[r % len(REGIONS)],
                f"res-{r}",
                Decimal("0.125"),
                1,
                Position(0, h),
            )
            for s in range(skus)
            for r in range(resources)
        ]
        hourly = [
            HourlyUsage(
                tenant,
                hour,
                f"sku-{s}",
                "GB",
                Decimal("0.125") * resources,
                resources,
                hour,
                hour,
                Position(0, h),
            )
            for s in range(skus)
        ]
        usage.replace_hour(tenant, hour, hourly, detail)
        rows += len(detail)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=40)
    parser.add_argument("--skus", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    srv = servers()
    settings = CqlSettings(
        contact_points=srv.cql_host, port=srv.cql_port, keyspace="pulse_bench_usage"
    )
    connection = connect(settings.config())
    for _line in migrate_cql(connection.session, settings):
        pass
    usage = ScyllaUsageStore(connection.session, settings.keyspace)
    ledger = ScyllaLedgerStore(connection.session, settings.keyspace)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    detail_rows = write_month(usage, tenant, args.skus, args.resources)
    print(header("usage route latency (Cassandra, one client, sequential)"))
    print(
        f"# {detail_rows} detail rows, {720 * args.skus} SKU rows written in "
        f"{time.monotonic() - began:.1f} s"
    )
    month = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    cases = {
        "month by day, group_by=sku": {**month, "granularity": "day"},
        "month by day, group_by=resource_id": {
            **month,
            "granularity": "day",
            "group_by": "resource_id",
        },
        "month by month, group_by=sku,region,resource_id": {
            **month,
            "granularity": "month",
            "group_by": "sku,region,resource_id",
        },
    }
    with TestClient(create_app(ledger, usage, auth=None)) as http:
        for name, params in cases.items():
            took = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = http.get(f"/v1/tenants/{tenant}/usage", params=params)
                took.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            rows = len(response.json()["rows"])
            print(
                f"{name:50s} rows={rows:6d}  p50={percentile(took, 50) * 1000:7.1f} ms  "
                f"p99={percentile(took, 99) * 1000:7.1f} ms"
            )
    connection.close()


if __name__ == "__main__":
    main()
