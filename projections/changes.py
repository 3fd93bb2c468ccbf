"""What a re-derivation changed: hourly buckets before -> after (replay and rebuild report them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from kernel.decimals import EXACT
from projections.hourly import HourlyUsage

TenantHour = tuple[str, datetime]


@dataclass(frozen=True)
class BucketChange:
    """One (tenant, hour, sku, unit) bucket whose quantity changed (None: no bucket)."""

    tenant_id: str
    hour: datetime
    sku: str
    unit: str
    before: Decimal | None
    after: Decimal | None


def bucket_changes(
    before: Mapping[TenantHour, Sequence[HourlyUsage]],
    after: Mapping[TenantHour, Sequence[HourlyUsage]],
) -> list[BucketChange]:
    changes = []
    for (tenant, hour), rows in sorted(after.items()):
        old = quantities(before.get((tenant, hour), ()))
        new = quantities(rows)
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                changes.append(BucketChange(tenant, hour, *key, old.get(key), new.get(key)))
    return changes


def quantities(rows: Iterable[HourlyUsage]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        key = (row.product_sku, row.unit)
        out[key] = EXACT.add(out.get(key, Decimal(0)), row.quantity)
    return out
