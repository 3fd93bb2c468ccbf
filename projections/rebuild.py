"""Rebuild: re-derive hourly usage from the ledger alone (when the log's retention is gone),
for a range of hours and tenants, and report what differed from what was stored.

Each hour goes through `project_hours`, the live projector's own path, whose writes are
ordered by the ledger content they were derived from: a rebuild running beside the live
projector can never put back an older computation of an hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledger.ports import LedgerStore
from projections.changes import BucketChange, bucket_changes
from projections.hourly import MeteringUnits
from projections.ports import UsageStore
from projections.runner import project_hours

HOUR = timedelta(hours=1)


@dataclass
class RebuildReport:
    hours: int = 0
    tenants: int = 0
    buckets: list[BucketChange] = field(default_factory=list)


def rebuild(
    ledger: LedgerStore,
    usage: UsageStore,
    units: MeteringUnits,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    tenant: str | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> RebuildReport:
    """Re-derives every ledger hour in [start, end) of `tenant` (default: all of them) and
    writes it whole, in `units` (one catalog version's); the report lists each
    bucket whose stored quantity differed."""
    report = RebuildReport()
    for t in [tenant] if tenant is not None else ledger.tenants():
        hours = [
            h for h in ledger.hours(t) if (start is None or h >= start) and (end is None or h < end)
        ]
        if not hours:
            continue
        report.tenants += 1
        before = {(t, h): list(usage.usage(t, h, h + HOUR)) for h in hours}
        derived = project_hours(((t, h) for h in hours), ledger, usage, units)
        report.buckets += bucket_changes(before, derived)
        report.hours += len(hours)
        progress(report.hours)
    return report
