"""Read API benchmark: a big ledger on Cassandra, 50 concurrent clients, p50/p99 per route.

Run: .venv/bin/python -m bench.query [--pulses 1000000] [--tenants 1000] [--clients 50]

Load (skipped when the keyspace already holds the same data set; `--reload` forces it):
`--pulses` pulses over `--tenants` tenants in November 2026 (5 SKUs of the sample catalog,
3 regions, 20 resources per tenant, 4 hours a day), appended through the ledger store and
projected by the projector's own code (`project_hours`): the rows the API reads are the rows
the product writes.

Then `pulse serve api` runs as its own process (auth off: this measures reads, not key
checks) and `--clients` asyncio clients call, one route at a time, for `--requests` calls
each: a month of usage by day grouped by SKU, the month's invoice draft with its lines (priced
with the sample catalog, applied to the keyspace's event store if it is not yet), and
a first page of 100 pulses. Baseline in the same run: the bare driver reading the rows each
route starts from (the tenant's month of hourly usage; one page of one ledger hour) at the
same concurrency — what the route costs above its own storage reads.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.common import PULSE_CLI, env_of, free_port, fresh_settings, header, percentile, servers
from catalog.files import read_catalog
from ledger.model import LedgerEvent, Position, Pulse, hour_of
from projections.runner import project_hours
from pulse.bootstrap import SAMPLE_CATALOG, build
from pulse.settings import ApiSettings, Settings
from storage.cql import connect

KEYSPACE = "pulse_query_bench"
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
SKUS = (
    ("compute.vcpu", "vCPU-hour"),
    ("compute.memory", "GiB-hour"),
    ("storage.block", "GB-hour"),
    ("network.egress", "GB"),
    ("api.requests", "request"),
)
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
HOURS_A_DAY = (0, 6, 12, 18)


def tenant_of(n: int) -> str:
    return f"qb-{n:05d}"


def events(pulses: int, tenants: int) -> list[LedgerEvent]:
    """The data set, deterministic: pulse i goes to tenant i mod tenants."""
    out = []
    hours = [MONTH + timedelta(days=d, hours=h) for d in range(30) for h in HOURS_A_DAY]
    arrival = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(pulses):
        n = i % tenants
        k = i // tenants
        sku, unit = SKUS[k % len(SKUS)]
        pulse = Pulse(
            pulse_id=f"p-{k:07d}",
            tenant_id=tenant_of(n),
            product_sku=sku,
            used_amount=Decimal(k % 97 + 1) / 4,
            use_unit=unit,
            occurred_at=hours[(k * 7 + n) % len(hours)] + timedelta(seconds=k % 3600),
            resource_id=f"r-{(k + n) % 20:02d}",
            region=REGIONS[(k + n) % len(REGIONS)],
        )
        out.append(LedgerEvent.of(pulse, Position(0, i), arrival))
    return out


def load(settings: Settings, pulses: int, tenants: int) -> float:
    """Appends and projects the data set; returns seconds taken."""
    parts = build(settings)
    started = time.perf_counter()
    data = events(pulses, tenants)
    chunks = [data[i : i + 5000] for i in range(0, len(data), 5000)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(parts.ledger.append, chunks))
    touched = sorted({(e.pulse.tenant_id, hour_of(e.pulse.occurred_at)) for e in data})
    slices = [touched[i::16] for i in range(16)]

    def project(hours: Sequence[tuple[str, datetime]]) -> int:
        catalog = parts.catalog
        return len(project_hours(hours, parts.ledger, parts.usage, catalog))

    with ThreadPoolExecutor(16) as pool:
        projected = sum(pool.map(project, slices))
    print(f"loaded {pulses:,} pulses, projected {projected:,} tenant-hours")
    return time.perf_counter() - started


def with_catalog(settings: Settings) -> list[str]:
    """The sample catalog applied to the keyspace's event store (what drafts price with; the
    first runs of this benchmark had none, so their drafts listed every line unpriced)."""
    parts = build(settings)
    try:
        return parts.billing.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    finally:
        parts.close()


def loaded(settings: Settings, tenants: int) -> bool:
    parts = build(settings)
    return len(parts.ledger.tenants()) >= tenants


async def drive(
    base: str, clients: int, requests: int, url_of: Callable[[random.Random], str]
) -> list[float]:
    """`clients` concurrent callers, `requests` calls in all; latencies in ms (all must 200)."""
    latencies: list[float] = []
    left = requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def caller(seed: int) -> None:
            nonlocal left
            rng = random.Random(seed)
            while left > 0:
                left -= 1
                url = url_of(rng)
                started = time.perf_counter()
                reply = await http.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                if reply.status_code != 200:
                    raise SystemExit(f"GET {url}: {reply.status_code} {reply.text[:300]}")

        await asyncio.gather(*(caller(i) for i in range(clients)))
    return latencies


def bare(session: Any, statement: Any, args_of: Callable[[random.Random], tuple[object, ...]],
         clients: int, requests: int) -> list[float]:  # fmt: skip
    """The driver alone: `clients` requests in flight, latencies in ms."""
    rng = random.Random(7)
    latencies: list[float] = []
    in_flight: list[tuple[float, Any]] = []
    for _ in range(requests):
        if len(in_flight) >= clients:
            started, future = in_flight.pop(0)
            list(future.result())
            latencies.append((time.perf_counter() - started) * 1000)
        in_flight.append((time.perf_counter(), session.execute_async(statement, args_of(rng))))
    for started, future in in_flight:
        list(future.result())
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def report(name: str, latencies: list[float], seconds: float) -> str:
    return (
        f"| {name} | {len(latencies):,} | {len(latencies) / seconds:,.0f} | "
        f"{percentile(latencies, 50):.1f} | {percentile(latencies, 99):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pulses", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="calls per route")
    parser.add_argument("--reload", action="store_true", help="load even if already loaded")
    parser.add_argument("--keyspace", default=KEYSPACE)
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv, keyspace=args.keyspace).model_copy(
        update={"api": ApiSettings(port=free_port())}
    )
    if args.reload or not loaded(settings, args.tenants):
        print(f"load: {load(settings, args.pulses, args.tenants):.0f} s")
    print(f"catalog: {len(with_catalog(settings))} change(s) applied")
    base = f"http://127.0.0.1:{settings.api.port}"
    log_file = Path(tempfile.mkdtemp(prefix="bench-query-")) / "api.log"
    with log_file.open("ab") as log:
        api = subprocess.Popen(
            [PULSE_CLI, "serve", "api"],
            env=env_of(settings) | {"PULSE_API__PORT": str(settings.api.port)},
            stdout=log,
            stderr=log,
        )
    rows: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                raise SystemExit(f"the API did not start; see {log_file}")
            time.sleep(0.2)

        def tenant(rng: random.Random) -> str:
            return tenant_of(rng.randrange(args.tenants))

        month = "start=2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z"
        routes = {
            "usage: a month by day, grouped by SKU": lambda rng: (
                f"/v1/tenants/{tenant(rng)}/usage?{month}&granularity=day&group_by=sku"
            ),
            "invoice draft of the month, with lines": lambda rng: (
                f"/v1/tenants/{tenant(rng)}/invoices/2026-11/draft"
            ),
            "a page of 100 pulses": lambda rng: (
                f"/v1/tenants/{tenant(rng)}/pulses?{month}&limit=100"
            ),
        }
        for name, url_of in routes.items():
            asyncio.run(drive(base, args.clients, args.clients, url_of))  # warm-up
            started = time.perf_counter()
            latencies = asyncio.run(drive(base, args.clients, args.requests, url_of))
            rows.append(report(name, latencies, time.perf_counter() - started))
            print(rows[-1], flush=True)

        session = connect(settings.cql.config()).session
        month_rows = session.prepare(
            f"SELECT * FROM {args.keyspace}.hourly_usage WHERE tenant_id=? AND month=?"
        )
        page = session.prepare(
            f"SELECT * FROM {args.keyspace}.pulses_by_hour WHERE tenant_id=? AND hour=? LIMIT 100"
        )
        for name, statement, args_of in (
            ("bare driver: the tenant's month of hourly usage", month_rows,
             lambda rng: (tenant(rng), "2026-11")),
            ("bare driver: one ledger hour, LIMIT 100", page,
             lambda rng: (tenant(rng), MONTH + timedelta(days=rng.randrange(30)))),
        ):  # fmt: skip
            bare(session, statement, args_of, args.clients, args.clients)  # warm-up
            started = time.perf_counter()
            latencies = bare(session, statement, args_of, args.clients, args.requests)
            rows.append(report(name, latencies, time.perf_counter() - started))
            print(rows[-1], flush=True)
    finally:
        api.terminate()
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
    print(header("read API benchmark"))
    print(
        f"{args.pulses:,} pulses over {args.tenants:,} tenants "
        f"(Cassandra keyspace {args.keyspace}), {args.clients} concurrent clients"
    )
    print("| route | calls | calls/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
