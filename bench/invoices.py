"""Invoice drafting benchmark: N tenants x 20 SKUs x one month of usage, hourly and daily.

Run: .venv/bin/python -m bench.invoices [--tenants 10000] [--processes 2] [--only daily|columns]

Usage rows are generated in memory per tenant, as the usage store would return them: one
HourlyUsage per SKU per hour (20 x 720 = 14,400 rows a tenant) and one DailyUsage per SKU
per day (20 x 30 = 600 rows), and the same days as columns (`DayColumns`: 20 columns of 30,
what `Invoicing.draft` reads now). The pricing engine drafts each tenant's invoice from each
(`draft_invoice`, `draft_invoice_daily`, `draft_invoice_columns`) with a contract in force
(discounts, allowance, commitment) and a mid-month price change; every tenant's totals must
agree and every 50th tenant's documents must be byte-identical. Generation,
drafting and the projector's roll-up of the hourly rows (`roll_up`) are timed apart; the
wall time covers all of it, split over worker processes. Baseline: summing the hourly rows
per SKU (no pricing). `--only daily` skips the hourly rows; `--only columns` times the live
path alone (columns drafted; baseline: summing each column, no pricing), without the checks.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing import Pool

from bench.common import header
from catalog.files import read_catalog, read_contracts
from catalog.invoice import canonical_json
from catalog.pricing import draft_invoice, draft_invoice_columns, draft_invoice_daily
from catalog.terms import ContractTerms, ProductTerms
from kernel.decimals import EXACT, exact_sum
from ledger.model import Position
from projections.daily import DailyUsage, DayColumn, DayColumns, roll_up
from projections.hourly import HourlyUsage
from pulse.bootstrap import SAMPLE_CATALOG

PERIOD = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = [START + timedelta(hours=h) for h in range(30 * 24)]
DAYS = [START.date() + timedelta(days=d) for d in range(30)]
SAME_DOCUMENT_EVERY = 50


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


def days_of(tenant: str, catalog: dict[str, ProductTerms], seed: int) -> list[DailyUsage]:
    """The daily rows `roll_up(rows_of(...))` gives, built directly (as the store returns them)."""
    quantity = Decimal(seed % 97 + 1) / 10 * 24
    every_hour, positions = (1 << 24) - 1, ((seed % 6, seed),)
    return [
        DailyUsage(
            tenant, d, sku, catalog[sku].billing_unit, "", quantity, 96, every_hour, positions
        )
        for d in DAYS
        for sku in sorted(catalog)  # the store's order: day, SKU, unit, reason
    ]


def columns_of(tenant: str, catalog: dict[str, ProductTerms], seed: int) -> DayColumns:
    """The columns `UsageStore.day_columns` gives of the rows of `days_of`."""
    quantity = Decimal(seed % 97 + 1) / 10 * 24
    every_hour, positions = (1 << 24) - 1, ((seed % 6, seed),)
    return DayColumns(
        tenant,
        tuple(
            DayColumn(
                sku, catalog[sku].billing_unit, "", list(DAYS), [quantity] * len(DAYS),
                [every_hour] * len(DAYS),
            )
            for sku in sorted(catalog)
        ),
        positions,
    )  # fmt: skip


@dataclass
class Times:
    """CPU seconds of one worker, per step."""

    generate: float = 0.0
    draft: float = 0.0
    baseline: float = 0.0
    roll_up: float = 0.0
    generate_days: float = 0.0
    draft_days: float = 0.0
    generate_columns: float = 0.0
    draft_columns: float = 0.0
    total: Decimal = Decimal(0)
    same_documents: int = 0
    same_columns: int = 0
    baseline_columns: float = 0.0


def columns_only(
    t: Times, tenant: str, catalog: dict[str, ProductTerms], terms: ContractTerms, n: int
) -> None:
    """The live path alone: columns drafted, and beside them the bare baseline of only
    summing each column's quantities."""
    t0 = time.perf_counter()
    columns = columns_of(tenant, catalog, n)
    t1 = time.perf_counter()
    invoice = draft_invoice_columns(tenant, PERIOD, columns, catalog, terms)
    t2 = time.perf_counter()
    sums = [exact_sum(column.quantities) for column in columns.columns]
    t3 = time.perf_counter()
    if not sums:
        raise AssertionError(f"{tenant}: no usage")
    t.generate_columns += t1 - t0
    t.draft_columns += t2 - t1
    t.baseline_columns += t3 - t2
    t.total += invoice.total


def work(job: tuple[int, int, str]) -> Times:
    first, end, only = job
    hourly = only == ""
    catalog = products()
    t = Times()
    for n in range(first, end):
        tenant = f"tenant-{n:05d}"
        terms = contract(tenant)
        if only == "columns":
            columns_only(t, tenant, catalog, terms, n)
            continue
        t0 = time.perf_counter()
        days = days_of(tenant, catalog, n)
        t1 = time.perf_counter()
        by_day = draft_invoice_daily(tenant, PERIOD, days, catalog, terms)
        t2 = time.perf_counter()
        t.generate_days, t.draft_days = t.generate_days + t1 - t0, t.draft_days + t2 - t1
        t.total += by_day.total
        t0 = time.perf_counter()
        columns = columns_of(tenant, catalog, n)
        t1 = time.perf_counter()
        by_columns = draft_invoice_columns(tenant, PERIOD, columns, catalog, terms)
        t2 = time.perf_counter()
        t.generate_columns += t1 - t0
        t.draft_columns += t2 - t1
        if by_columns.total != by_day.total:
            raise AssertionError(f"{tenant}: columns total {by_columns.total} != {by_day.total}")
        if n % SAME_DOCUMENT_EVERY == 0:
            if canonical_json(by_columns) != canonical_json(by_day):
                raise AssertionError(f"{tenant}: the columns' document differs from the rows'")
            t.same_columns += 1
        if not hourly:
            continue
        t0 = time.perf_counter()
        rows = rows_of(tenant, catalog, n)
        t1 = time.perf_counter()
        invoice = draft_invoice(tenant, PERIOD, rows, catalog, terms)
        t2 = time.perf_counter()
        sums: dict[str, Decimal] = {}
        for r in rows:
            sums[r.product_sku] = EXACT.add(sums.get(r.product_sku, Decimal(0)), r.quantity)
        t3 = time.perf_counter()
        rolled = roll_up(rows)
        t4 = time.perf_counter()
        t.generate, t.draft, t.baseline = (
            t.generate + t1 - t0,
            t.draft + t2 - t1,
            t.baseline + t3 - t2,
        )
        t.roll_up += t4 - t3
        if invoice.total != by_day.total:
            raise AssertionError(f"{tenant}: hourly total {invoice.total} != daily {by_day.total}")
        if n % SAME_DOCUMENT_EVERY == 0:
            if rolled != days or canonical_json(invoice) != canonical_json(by_day):
                raise AssertionError(f"{tenant}: the daily document differs from the hourly one")
            t.same_documents += 1
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=["daily", "columns"],
        help="daily: skip the hourly rows; columns: only the live path (columns) and its baseline",
    )
    args = parser.parse_args()
    only = args.only or ""
    hourly = only == ""
    step = -(-args.tenants // args.processes)
    jobs = [(i, min(i + step, args.tenants), only) for i in range(0, args.tenants, step)]
    started = time.perf_counter()
    with Pool(args.processes) as pool:
        results = pool.map(work, jobs)
    wall = time.perf_counter() - started

    def cpu(step: str) -> float:
        return float(sum(getattr(r, step) for r in results))

    per = 1000 / args.tenants
    print(header("invoice drafting benchmark"))
    print(
        f"{args.tenants} tenants x 20 SKUs x 30 days = {args.tenants * 20 * len(DAYS):,} daily "
        f"rows"
        + (f" and {args.tenants * 20 * len(HOURS):,} hourly rows" if hourly else "")
        + f", {args.processes} processes"
    )
    print(f"wall time (everything below): {wall:.1f} s")
    if only == "columns":
        draft, baseline = cpu("draft_columns"), cpu("baseline_columns")
        print(
            f"columns: drafting {draft:.1f} s ({draft * per:.2f} ms per tenant), generating "
            f"columns {cpu('generate_columns'):.1f} s; baseline, summing each column: "
            f"{baseline:.1f} s (ratio draft/baseline {draft / baseline:.1f})"
        )
        print(f"check: sum of all invoice totals {cpu('total')}")
        return
    print(
        f"daily:  CPU drafting {cpu('draft_days'):.1f} s ({cpu('draft_days') * per:.2f} ms per "
        f"tenant), generating rows {cpu('generate_days'):.1f} s"
    )
    print(
        f"columns: CPU drafting {cpu('draft_columns'):.1f} s ({cpu('draft_columns') * per:.2f} ms "
        f"per tenant), generating columns {cpu('generate_columns'):.1f} s; every tenant's total "
        f"as the daily rows', {cpu('same_columns'):.0f} documents byte for byte identical"
    )
    if hourly:
        draft, baseline = cpu("draft"), cpu("baseline")
        print(
            f"hourly: CPU drafting {draft:.1f} s ({draft * per:.2f} ms per tenant), generating "
            f"rows {cpu('generate'):.1f} s; baseline, summing rows per SKU: {baseline:.1f} s "
            f"(ratio draft/baseline {draft / baseline:.1f})"
        )
        print(
            f"drafting hourly / daily: {draft / cpu('draft_days'):.1f}x; rolling the hourly "
            f"rows up by day (projections.daily.roll_up): {cpu('roll_up'):.1f} s "
            f"({cpu('roll_up') * per:.2f} ms per tenant)"
        )
        print(
            f"check: every tenant's hourly and daily totals agree; {cpu('same_documents'):.0f} "
            f"tenants' documents compared byte for byte, all identical"
        )
    print(f"check: sum of all invoice totals {cpu('total')}")


if __name__ == "__main__":
    main()
