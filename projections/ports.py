"""Port of the projections: where hourly usage is stored and read (ScyllaDB or SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from projections.hourly import HourlyUsage


class UsageStore(Protocol):
    """Hourly usage rows, always written as absolute values for a whole tenant-hour."""

    def replace_hour(self, tenant_id: str, hour: datetime, rows: Sequence[HourlyUsage]) -> None:
        """Makes `rows` the usage of that tenant-hour (rows of it not listed are removed),
        unless what is stored was derived from more ledger events (`events_covered`): then
        `rows` come from an older read of the hour and change nothing. At equal coverage the
        later write wins (a re-derivation after a catalog change)."""
        ...

    def usage(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[HourlyUsage]:
        """Rows of the tenant with start <= hour < end, ordered by hour, SKU, unit."""
        ...

    def close(self) -> None: ...
