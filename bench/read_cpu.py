"""Client CPU per call of the read paths, in process, on the `bench.query` keyspace.

Run (after `bench.query` has loaded its keyspace): .venv/bin/python -m bench.read_cpu [--calls N]

For each read the API does, `--calls` calls for random tenants after 10 warm-up calls, in one
thread: CPU ms (`time.process_time`, this process: the driver, our code) and wall ms per call.
No HTTP and no concurrency: what one call costs the API process above the server's work.

Then the draft's two ways of reading daily usage, call by call in turn (so a busy machine
slows both alike): as columns (`UsageStore.day_columns` + `draft_invoice_columns`, what
`Invoicing.draft` does) and as one object per row (`daily_usage` + `draft_invoice_daily`,
before issue 13's columns), each with the tenant's terms read as the draft reads them.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.common import fresh_settings, servers
from bench.query import KEYSPACE, tenant_of
from catalog.pricing import draft_invoice_columns, draft_invoice_daily
from projections.usage_report import summarize, usage_query
from pulse.bootstrap import build, invoicing

START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def timed(name: str, call: Callable[[], object], calls: int) -> str:
    for _ in range(10):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    cpu_ms = (time.process_time() - cpu) / calls * 1000
    wall_ms = (time.perf_counter() - wall) / calls * 1000
    return f"| {name} | {cpu_ms:.2f} | {wall_ms:.2f} |"


def in_turn(calls: int, **ways: Callable[[], object]) -> str:
    """CPU and wall ms per call of each way, calling them in turn after 10 warm-up rounds."""
    cpu = dict.fromkeys(ways, 0.0)
    wall = dict.fromkeys(ways, 0.0)
    for n in range(calls + 10):
        for name, call in ways.items():
            c, w = time.process_time(), time.perf_counter()
            call()
            if n >= 10:
                cpu[name] += time.process_time() - c
                wall[name] += time.perf_counter() - w
    return "\n".join(
        f"| {name} | {cpu[name] / calls * 1000:.2f} | {wall[name] / calls * 1000:.2f} |"
        for name in ways
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--keyspace", default=KEYSPACE)
    args = parser.parse_args()
    settings = fresh_settings(servers(), keyspace=args.keyspace)
    parts = build(settings)
    drafts = invoicing(settings, parts)
    rng = random.Random(1)

    def tenant() -> str:
        return tenant_of(rng.randrange(args.tenants))

    query = usage_query(START, END, "day", ["sku"], sku=None, region=None, resource_id=None)
    rows = parts.usage.usage(tenant(), START, END)
    print("| read | CPU ms/call | wall ms/call |")
    print("|---|---|---|")
    for name, call in (
        ("a tenant's month of hourly usage", lambda: parts.usage.usage(tenant(), START, END)),
        ("summarize it by day and SKU", lambda: summarize(rows, query)),
        ("the catalog (products)", parts.billing.products),
        ("a tenant's contract", lambda: parts.billing.contract(tenant())),
        ("a priced invoice draft of the month", lambda: drafts.draft(tenant(), "2026-11")),
        (
            "a page of 100 pulses",
            lambda: parts.ledger.pulses(tenant(), START, END, limit=100),
        ),
    ):
        print(timed(name, call, args.calls), flush=True)

    def draft(columns: bool) -> object:
        t = tenant()
        products, found = parts.billing.terms_of(t)
        contract = None if found is None else found[0]
        start, end = START.date(), END.date()
        if columns:
            days = parts.usage.day_columns(t, start, end)
            return draft_invoice_columns(t, "2026-11", days, products, contract)
        rows = parts.usage.daily_usage(t, start, end)
        return draft_invoice_daily(t, "2026-11", rows, products, contract)

    print(
        in_turn(
            args.calls,
            **{
                "priced draft, day rows read as columns": lambda: draft(True),
                "priced draft, day rows read as objects (before)": lambda: draft(False),
            },
        ),
        flush=True,
    )
    parts.close()


if __name__ == "__main__":
    main()
