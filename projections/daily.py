"""Daily usage rolled up from hourly usage (pure; absolute values): what invoice drafts price.

Segments are cut at midnights only, so a day is the finest grain pricing needs; a daily row
keeps what the invoice document shows of its hours (which hours had usage, the greatest
ledger offset per partition), so `catalog.pricing.draft_invoice_daily` of the roll-up gives
the very document `draft_invoice` gives of the hourly rows. Drafts read them as columns
(`DayColumns`, priced by `catalog.pricing.draft_invoice_columns`): no object per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from kernel.decimals import EXACT
from projections.hourly import HourlyUsage


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """The hourly rows of one (tenant, UTC day, SKU, unit, unpriced reason), summed.

    Hourly rows of one SKU and unit with different unpriced reasons stay apart, because the
    invoice lists unpriced usage per reason. `hour_mask` has bit h set when hour h of `day`
    has a row; `positions` are (partition, greatest offset) over the rows' positions,
    ascending by partition; `pulse_count` sums theirs. `catalog_versions` is the sum over
    the day's hours of the catalog version each hour was derived under, the same in every
    row of a day; with the events covered it is the day's version (`day_version`).
    """

    tenant_id: str
    day: date
    product_sku: str
    unit: str
    unpriced_reason: str
    quantity: Decimal
    pulse_count: int
    hour_mask: int
    positions: tuple[tuple[int, int], ...]
    catalog_versions: int = 0

    @property
    def priced(self) -> bool:
        return not self.unpriced_reason

    @property
    def hours(self) -> tuple[datetime, ...]:
        """The hour buckets with usage, ascending."""
        midnight = day_start(self.day)
        return tuple(midnight.replace(hour=h) for h in range(24) if self.hour_mask >> h & 1)


@dataclass(frozen=True, slots=True)
class DayColumn:
    """The daily rows of one (SKU, unit, unpriced reason) of a tenant, as parallel lists:
    row i is (`days[i]`, `quantities[i]`, `hour_masks[i]`), as in `DailyUsage`."""

    product_sku: str
    unit: str
    unpriced_reason: str
    days: list[date] = field(default_factory=list)
    quantities: list[Decimal] = field(default_factory=list)
    hour_masks: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DayColumns:
    """A tenant's daily rows as columns (`catalog.metered.MeteredDays`): one `DayColumn` per
    (SKU, unit, unpriced reason) in the order first read, and the rows' positions folded to
    (partition, greatest offset), ascending by partition. Pulse counts and catalog versions,
    which only decide which roll-up is kept, are not read."""

    tenant_id: str
    columns: tuple[DayColumn, ...]
    positions: tuple[tuple[int, int], ...]


DayRow = tuple[date, str, str, str, Decimal, int, Iterable[tuple[int, int]]]
"""(day, SKU, unit, unpriced reason, quantity, hour mask, (partition, offset) pairs)."""


def day_columns(tenant_id: str, rows: Iterable[DayRow]) -> DayColumns:
    """The columns of a tenant's daily rows, each column in the order of `rows`."""
    columns: dict[tuple[str, str, str], DayColumn] = {}
    highest: dict[int, int] = {}
    for day, sku, unit, reason, quantity, mask, positions in rows:
        column = columns.get((sku, unit, reason))
        if column is None:
            column = columns[(sku, unit, reason)] = DayColumn(sku, unit, reason)
        column.days.append(day)
        column.quantities.append(quantity)
        column.hour_masks.append(mask)
        for partition, offset in positions:
            if partition not in highest or offset > highest[partition]:
                highest[partition] = offset
    return DayColumns(tenant_id, tuple(columns.values()), tuple(sorted(highest.items())))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def events_covered_days(rows: Sequence[DailyUsage]) -> int:
    """How many ledger events the rows of one tenant-day were derived from (the first part of
    their version, `day_version`).

    Each hour's coverage only grows, so a roll-up that read more events in total read no
    older state of the day as a whole; the last roll-up written after every hour's last
    write reads them all and wins (see `UsageStore.replace_day`).
    """
    return sum(r.pulse_count for r in rows)


def day_version(rows: Sequence[DailyUsage]) -> tuple[int, int]:
    """The version of one tenant-day's roll-up: (events covered, catalog versions summed).

    Each hour's version (`projections.hourly.hour_version`) only moves forward: its events
    grow, or at equal events its catalog gets newer. So a roll-up that read a later state of
    the day has a version at least as great, and an equal version means it read the very
    same hours: the greater version wins, and equal ones are the same rows.
    """
    return events_covered_days(rows), max((r.catalog_versions for r in rows), default=0)


@dataclass
class _Acc:
    quantity: Decimal
    count: int
    mask: int
    positions: dict[int, int]


def roll_up(rows: Iterable[HourlyUsage]) -> list[DailyUsage]:
    """One row per (tenant, day, sku, unit, unpriced reason) of `rows`, ordered by that key.

    Quantities are summed exactly. A repeated (tenant, hour, sku, unit) row is a ValueError:
    an hour is stored once, and summing it twice would count it twice.
    """
    buckets: dict[tuple[str, date, str, str, str], _Acc] = {}
    catalogs: dict[tuple[str, datetime], int] = {}  # of each (tenant, hour): they sum per day
    for row in rows:
        tenant_hour = (row.tenant_id, row.hour)
        catalogs[tenant_hour] = max(row.catalog_version, catalogs.get(tenant_hour, 0))
        day, bit = row.hour.date(), 1 << row.hour.hour
        key = (row.tenant_id, day, row.product_sku, row.unit, row.unpriced_reason)
        partition, offset = row.position.partition, row.position.offset
        acc = buckets.get(key)
        if acc is None:
            buckets[key] = _Acc(row.quantity, row.pulse_count, bit, {partition: offset})
            continue
        if acc.mask & bit:
            raise ValueError(
                f"hourly usage {row.product_sku} {row.unit} at {row.hour.isoformat()} "
                f"of {row.tenant_id!r} is given twice"
            )
        acc.quantity = EXACT.add(acc.quantity, row.quantity)
        acc.count += row.pulse_count
        acc.mask |= bit
        acc.positions[partition] = max(offset, acc.positions.get(partition, offset))
    per_day: dict[tuple[str, date], int] = {}
    for (tenant, at), version in catalogs.items():
        per_day[(tenant, at.date())] = per_day.get((tenant, at.date()), 0) + version
    return [
        DailyUsage(
            tenant_id=tenant,
            day=day,
            product_sku=sku,
            unit=unit,
            unpriced_reason=reason,
            quantity=acc.quantity,
            pulse_count=acc.count,
            hour_mask=acc.mask,
            positions=tuple(sorted(acc.positions.items())),
            catalog_versions=per_day.get((tenant, day), 0),
        )
        for (tenant, day, sku, unit, reason), acc in sorted(buckets.items(), key=lambda i: i[0])
    ]
