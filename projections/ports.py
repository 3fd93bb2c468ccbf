"""Port of the projections: where hourly and daily usage is stored and read (ScyllaDB or
SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from projections.daily import DailyUsage, DayColumns
from projections.hourly import HourlyUsage, UsageDetail


class UsageStore(Protocol):
    """Hourly usage rows, always written as absolute values for a whole tenant-hour: per SKU
    and unit (`usage`, what invoices price) and per SKU, unit, region and resource
    (`usage_detail`, what the usage route groups by), both derived from the same events."""

    def replace_hour(
        self,
        tenant_id: str,
        hour: datetime,
        rows: Sequence[HourlyUsage],
        detail: Sequence[UsageDetail] | None = None,
    ) -> None:
        """Makes `rows` (and `detail`, when given) the usage of that tenant-hour (rows of it
        not listed are removed), unless what is stored has a greater version
        (`projections.hourly.hour_version`: events covered, then catalog version): then
        `rows` come from an older read of the hour or an older catalog and change nothing.
        At an equal version either may be kept: equal versions are equal rows. `detail` must
        be derived from the same events as `rows` (same version); None leaves the stored
        detail of the hour as it is."""
        ...

    def usage(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[HourlyUsage]:
        """Rows of the tenant with start <= hour < end, ordered by hour, SKU, unit."""
        ...

    def usage_detail(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[UsageDetail]:
        """Detail rows of the tenant with start <= hour < end, ordered by hour, SKU, unit,
        region, resource."""
        ...

    def replace_day(self, tenant_id: str, day: date, rows: Sequence[DailyUsage]) -> None:
        """Makes `rows` (the roll-up of the day's hourly rows, `projections.daily.roll_up`)
        the daily usage of that tenant-day (rows of it not listed are removed), unless what
        is stored has a greater version (`projections.daily.day_version`), as in
        `replace_hour`."""
        ...

    def daily_usage(self, tenant_id: str, start: date, end: date) -> list[DailyUsage]:
        """Daily rows of the tenant with start <= day < end, ordered by day, SKU, unit,
        unpriced reason."""
        ...

    def day_columns(self, tenant_id: str, start: date, end: date) -> DayColumns:
        """The rows `daily_usage` gives, as columns per (SKU, unit, unpriced reason), each
        ordered by day, with their positions folded (`projections.daily.DayColumns`): what
        invoice drafts price, read without an object per row."""
        ...

    def close(self) -> None: ...
