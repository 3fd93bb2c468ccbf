"""Daily usage read as columns (`MeteredDays`), priced by `catalog.pricing.draft_invoice_columns`:
its input checks, and the slices of one SKU's column that segments price.

The checks are `catalog.grains.check_days`'s, with the same messages, done a column at a time:
bounds of days and hour masks by min/max, and the hour-overlap rule needs no per-row work for
a SKU and unit with one column of distinct days (the store's case: one row per day).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise

from catalog.grains import hours_of_days
from catalog.metered import MeteredDayColumn, MeteredDays
from kernel.decimals import exact_sum

_ALL_HOURS = 1 << 24


def _where(column: MeteredDayColumn, day: date) -> str:  # built only on failure
    return f"daily usage row {column.product_sku} {column.unit} on {day.isoformat()}"


def _which(column: MeteredDayColumn) -> str:
    reason = f" (unpriced: {column.unpriced_reason})" if column.unpriced_reason else ""
    return f"daily usage of {column.product_sku} in {column.unit}{reason}"


def check_columns(
    tenant_id: str, period: str, start: datetime, end: datetime, usage: MeteredDays
) -> None:
    """Raises ValueError for usage of another tenant, a day outside [start, end) (midnights),
    a quantity that is not finite and >= 0, an hour mask outside 1 to 2^24 - 1, two rows of
    one (day, SKU, unit) that claim the same hour (it would be counted twice), columns of
    different lengths, or one (SKU, unit, reason) in two columns."""
    if usage.tenant_id != tenant_id:
        raise ValueError(f"daily usage of {usage.tenant_id!r} given for {tenant_id!r}")
    first, last = start.date(), end.date()
    of_sku_unit: dict[tuple[str, str], list[MeteredDayColumn]] = {}
    keys: set[tuple[str, str, str]] = set()
    for column in usage.columns:
        key = (column.product_sku, column.unit, column.unpriced_reason)
        if key in keys:
            raise ValueError(f"{_which(column)} is given in two columns")
        keys.add(key)
        days, quantities, masks = column.days, column.quantities, column.hour_masks
        if not len(days) == len(quantities) == len(masks):
            raise ValueError(
                f"{_which(column)} has columns of different lengths (days {len(days)}, "
                f"quantities {len(quantities)}, hour masks {len(masks)})"
            )
        if not days:
            continue
        if min(days) < first or max(days) >= last:
            day = next(d for d in days if not first <= d < last)
            raise ValueError(f"{_where(column, day)} is outside the period {period}")
        # is_finite first: ordering a NaN raises decimal.InvalidOperation
        if not all(q.is_finite() and q >= 0 for q in quantities):
            i, q = next((i, q) for i, q in enumerate(quantities) if not q.is_finite() or q < 0)
            raise ValueError(
                f"{_where(column, days[i])} has quantity {q}, not a finite amount >= 0"
            )
        if min(masks) <= 0 or max(masks) >= _ALL_HOURS:
            i, m = next((i, m) for i, m in enumerate(masks) if not 0 < m < _ALL_HOURS)
            raise ValueError(f"{_where(column, days[i])} has hour_mask {m}, not 1 to 2^24 - 1")
        of_sku_unit.setdefault((column.product_sku, column.unit), []).append(column)
    for columns in of_sku_unit.values():
        if len(columns) > 1 or len(set(columns[0].days)) < len(columns[0].days):
            _check_hours_claimed_once(columns)


def _check_hours_claimed_once(columns: Sequence[MeteredDayColumn]) -> None:
    # The hourly rule "one row per (hour, sku, unit)" in daily terms, as check_days states it.
    claimed: dict[date, int] = {}
    for column in columns:
        for day, mask in zip(column.days, column.hour_masks, strict=True):
            if claimed.get(day, 0) & mask:
                raise ValueError(
                    f"{_where(column, day)} repeats an hour of another row (counted twice)"
                )
            claimed[day] = claimed.get(day, 0) | mask


class DaySlices:
    """`catalog.grains.Slices` of one SKU's priced column: its rows ordered by day."""

    def __init__(self, column: MeteredDayColumn) -> None:
        days, quantities, masks = column.days, column.quantities, column.hour_masks
        if any(a > b for a, b in pairwise(days)):  # the store gives them ascending already
            order = sorted(range(len(days)), key=days.__getitem__)
            days = [days[i] for i in order]
            quantities = [quantities[i] for i in order]
            masks = [masks[i] for i in order]
        self._days, self._quantities, self._masks = days, quantities, masks

    def bounds(self, start: datetime, end: datetime) -> tuple[int, int]:
        return bisect_left(self._days, start.date()), bisect_left(self._days, end.date())

    def quantity(self, i: int, j: int) -> Decimal:
        return exact_sum(self._quantities[i:j])

    def hours(self, i: int, j: int) -> tuple[datetime, ...]:
        return hours_of_days(zip(self._days[i:j], self._masks[i:j], strict=True))
