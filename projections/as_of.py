"""Usage as known at ledger positions: only pulses at or below the given offsets (an audit).

The same derivation as the live projection (`derive_hour`), from ledger rows, so an auditor
can re-check a finalized invoice against exactly the prefix of the log it covered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from kernel.errors import Invalid
from ledger.model import LedgerEvent
from ledger.ports import LedgerStore
from projections.hourly import (
    BillingUnitOf,
    HourlyUsage,
    UsageDetail,
    derive_detail,
    derive_hour,
)


def parse_positions(text: str) -> dict[int, int]:
    """ "P:O,P:O" (ASCII digits) as {partition: greatest offset included}."""
    out: dict[int, int] = {}
    for item in (part.strip() for part in text.split(",")):
        partition, sep, offset = item.partition(":")
        digits = partition + offset
        if not (sep and partition and offset and digits.isascii() and digits.isdigit()):
            raise Invalid(f"as_of: {item!r} is not PARTITION:OFFSET (e.g. 0:1500,1:980)")
        if int(partition) in out:
            raise Invalid(f"as_of: partition {partition} is given twice")
        out[int(partition)] = int(offset)
    return out


def _covered(event: LedgerEvent, positions: Mapping[int, int]) -> bool:
    limit = positions.get(event.position.partition)
    return limit is not None and event.position.offset <= limit


def _hours_as_of(
    ledger: LedgerStore,
    tenant_id: str,
    start: datetime,
    end: datetime,
    positions: Mapping[int, int],
) -> Iterator[list[LedgerEvent]]:
    """The covered events of each ledger hour of the tenant in [start, end)."""
    for hour in ledger.hours(tenant_id):
        if start <= hour < end:
            yield [e for e in ledger.events_in_hour(tenant_id, hour) if _covered(e, positions)]


def usage_as_of(
    ledger: LedgerStore,
    tenant_id: str,
    start: datetime,
    end: datetime,
    positions: Mapping[int, int],
    billing_unit_of: BillingUnitOf,
    sku: str | None = None,
) -> list[HourlyUsage]:
    """Hourly usage of [start, end) from the ledger events at or below `positions` (a
    partition that is not named contributes nothing)."""
    return [
        r
        for events in _hours_as_of(ledger, tenant_id, start, end, positions)
        for r in derive_hour(events, billing_unit_of)
        if sku in (None, r.product_sku)
    ]


def detail_as_of(
    ledger: LedgerStore,
    tenant_id: str,
    start: datetime,
    end: datetime,
    positions: Mapping[int, int],
    billing_unit_of: BillingUnitOf,
    sku: str | None = None,
) -> list[UsageDetail]:
    """`usage_as_of` split by region and resource (`derive_detail` of the same events)."""
    return [
        r
        for events in _hours_as_of(ledger, tenant_id, start, end, positions)
        for r in derive_detail(events, billing_unit_of)
        if sku in (None, r.product_sku)
    ]
