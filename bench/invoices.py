"""Invoice drafting benchmark: N tenants x 20 SKUs x one month of hourly usage.

Run: .venv/bin/python -m bench.invoices [--tenants 10000] [--processes 2]

Usage rows are generated in memory per tenant (one HourlyUsage per SKU per hour: 20 x 744 =
14,880 rows a tenant), as the usage store would return them; the pricing engine then drafts
each tenant's invoice with a contract in force (discounts, allowance, commitment) and a
mid-month price change. Generation and drafting are timed separately; the wall time covers
both, split over worker processes. Baseline: summing the same rows per SKU (no pricing).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing import Pool

from bench.common import header
from catalog.files import read_catalog, read_contracts
from catalog.pricing import draft_invoice
from catalog.terms import ContractTerms, ProductTerms
from kernel.decimals import EXACT
from ledger.model import Position
from projections.hourly import HourlyUsage
from pulse.bootstrap import SAMPLE_CATALOG

PERIOD = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = [START + timedelta(hours=h) for h in range(30 * 24)]


def products() -> dict[str, ProductTerms]:
    """20 SKUs: the sample catalog's six plans (per-unit, graduated, volume, package, a
    mid-month change) under 20 names."""
    base = read_catalog(SAMPLE_CATALOG.read_text())
    out = {}
    for i in range(20):
        p = base[i % len(base)]
        out[f"{p.sku}.{i}"] = replace(p, sku=f"{p.sku}.{i}")
    return out


def contract(tenant: str) -> ContractTerms:
    [terms] = read_contracts(
        f"""contracts:
  - tenant_id: {tenant}
    amendments:
      - effective_from: "2026-01-01"
        discounts: [{{percent: "10"}}, {{percent: "5", category: storage}}]
        allowances: {{network.egress.4: "50"}}
        commitment: "100"
"""
    )
    return terms


def rows_of(tenant: str, catalog: dict[str, ProductTerms], seed: int) -> list[HourlyUsage]:
    quantity = Decimal(seed % 97 + 1) / 10
    return [
        HourlyUsage(tenant, h, sku, p.billing_unit, quantity, 4, h, h, Position(seed % 6, seed))
        for sku, p in catalog.items()
        for h in HOURS
    ]


def work(tenant_range: tuple[int, int]) -> tuple[float, float, float, Decimal]:
    catalog = products()
    generate = draft = baseline = 0.0
    total = Decimal(0)
    for n in range(*tenant_range):
        tenant = f"tenant-{n:05d}"
        t0 = time.perf_counter()
        rows = rows_of(tenant, catalog, n)
        t1 = time.perf_counter()
        invoice = draft_invoice(tenant, PERIOD, rows, catalog, contract(tenant))
        t2 = time.perf_counter()
        sums: dict[str, Decimal] = {}
        for r in rows:
            sums[r.product_sku] = EXACT.add(sums.get(r.product_sku, Decimal(0)), r.quantity)
        t3 = time.perf_counter()
        generate, draft, baseline = generate + t1 - t0, draft + t2 - t1, baseline + t3 - t2
        total += invoice.total
    return generate, draft, baseline, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    step = -(-args.tenants // args.processes)
    ranges = [(i, min(i + step, args.tenants)) for i in range(0, args.tenants, step)]
    started = time.perf_counter()
    with Pool(args.processes) as pool:
        results = pool.map(work, ranges)
    wall = time.perf_counter() - started
    generate = sum(r[0] for r in results)
    draft = sum(r[1] for r in results)
    baseline = sum(r[2] for r in results)
    rows = args.tenants * 20 * len(HOURS)
    print(header("invoice drafting benchmark"))
    print(
        f"{args.tenants} tenants x 20 SKUs x {len(HOURS)} hours = {rows:,} hourly rows, "
        f"{args.processes} processes"
    )
    print(f"wall time (generation + drafting): {wall:.1f} s")
    print(
        f"CPU time drafting (pricing engine): {draft:.1f} s "
        f"({draft / args.tenants * 1000:.2f} ms per tenant)"
    )
    print(
        f"CPU time generating rows: {generate:.1f} s; baseline, summing rows per SKU: "
        f"{baseline:.1f} s (ratio draft/baseline {draft / baseline:.1f})"
    )
    print(f"check: sum of all invoice totals {sum(r[3] for r in results)}")


if __name__ == "__main__":
    main()
