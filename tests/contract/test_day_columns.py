"""Invoice drafts from daily usage read as columns equal drafts from the same rows read as
objects, on every UsageStore backend: random tenants' stored day rows, both paths."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from catalog.invoice import canonical_json
from catalog.pricing import draft_invoice_columns, draft_invoice_daily
from projections.daily import DailyUsage
from projections.ports import UsageStore
from tests.unit.test_pricing import PERIOD
from tests.unit.test_pricing_daily import KINDS, PRODUCTS, TERMS

MAY = date(2024, 5, 1)


def random_days(tenant: str, rnd: random.Random) -> dict[date, list[DailyUsage]]:
    """Rows of some days of May 2024: for each (day, SKU, unit), its hours shared out at
    random among the unpriced reasons of that SKU and unit in KINDS (no hour twice)."""
    out: dict[date, list[DailyUsage]] = {}
    for day in rnd.sample([MAY + timedelta(days=d) for d in range(31)], rnd.randint(1, 12)):
        rows = []
        for sku, unit in sorted({(s, u) for s, u, _r in KINDS}):
            reasons = [r for s, u, r in KINDS if (s, u) == (sku, unit)]
            masks = dict.fromkeys(reasons, 0)
            for hour in rnd.sample(range(24), rnd.randint(0, 24)):
                masks[rnd.choice(reasons)] |= 1 << hour
            for reason, mask in masks.items():
                if mask and rnd.random() < 0.8:
                    rows.append(
                        DailyUsage(
                            tenant, day, sku, unit, reason,
                            Decimal(rnd.randint(0, 10**7)).scaleb(-rnd.randint(0, 9)),
                            rnd.randint(1, 50), mask,
                            tuple(sorted({p: rnd.randint(0, 10**12) for p in
                                          rnd.sample(range(6), rnd.randint(1, 3))}.items())),
                        )
                    )  # fmt: skip
        if rows:
            out[day] = rows
    return out


@pytest.mark.parametrize("seed", range(4))
def test_drafts_from_columns_equal_drafts_from_rows(usage_store: UsageStore, seed: int) -> None:
    # given: random tenants' days, stored; plans and contract terms that change mid-month
    rnd = random.Random(seed)
    for _ in range(3):
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        for day, rows in random_days(tenant, rnd).items():
            usage_store.replace_day(tenant, day, rows)
        terms = replace(TERMS, tenant_id=tenant)
        start, end = MAY, date(2024, 6, 1)
        # when
        rows = usage_store.daily_usage(tenant, start, end)
        by_rows = draft_invoice_daily(tenant, PERIOD, rows, PRODUCTS, terms)
        by_columns = draft_invoice_columns(
            tenant, PERIOD, usage_store.day_columns(tenant, start, end), PRODUCTS, terms
        )
        # then
        assert canonical_json(by_columns) == canonical_json(by_rows)
        assert by_rows.lines and by_rows.unpriced and len(by_rows.positions) > 1
