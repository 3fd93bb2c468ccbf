"""The two kinds of usage rows the pricing engine prices (catalog.pricing): hourly rows and
daily roll-ups. Per kind: where a row starts (its segment), which hour buckets rows cover (a
line's lineage), the input checks, and the ledger positions an invoice covers. And how the
engine slices one SKU's usage into segments (`Slices`), whatever holds it: rows here, daily
columns in `catalog.day_columns`."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

from catalog.metered import MeteredDay, MeteredQuantity, MeteredUsage
from kernel.decimals import exact_sum

Row = TypeVar("Row", bound=MeteredQuantity)


@dataclass(frozen=True, slots=True)
class Grain(Generic[Row]):
    """How the engine sees one kind of row: where it starts (its segment) and which hour
    buckets a segment's rows cover (the line's lineage)."""

    start: Callable[[Row], datetime]
    hours: Callable[[Sequence[Row]], tuple[datetime, ...]]


def _hours_of_hourly(rows: Sequence[MeteredUsage]) -> tuple[datetime, ...]:
    return tuple(sorted({row.hour for row in rows}))


def _hours_of_days(rows: Sequence[MeteredDay]) -> tuple[datetime, ...]:
    return hours_of_days((row.day, row.hour_mask) for row in rows)


def hours_of_days(masks_of_days: Iterable[tuple[date, int]]) -> tuple[datetime, ...]:
    """The hours, ascending, of (day, hour mask) pairs; a day given twice has both masks'."""
    masks: dict[date, int] = {}
    for day, mask in masks_of_days:
        masks[day] = masks.get(day, 0) | mask
    return tuple(chain.from_iterable(_hours_in(day, masks[day]) for day in sorted(masks)))


@lru_cache(maxsize=1 << 16)
def _hours_in(day: date, mask: int) -> tuple[datetime, ...]:
    """The hours of `day` whose bit is set in `mask`, ascending. Cached: the same days and
    masks recur across a month's SKUs and tenants, and datetimes are immutable."""
    midnight = _day_start(day)
    return tuple(midnight + timedelta(hours=h) for h in range(24) if mask >> h & 1)


@lru_cache(maxsize=1 << 12)
def _day_start(day: date) -> datetime:
    return midnight(day)


HOURLY: Grain[MeteredUsage] = Grain(attrgetter("hour"), _hours_of_hourly)
DAILY: Grain[MeteredDay] = Grain(lambda row: _day_start(row.day), _hours_of_days)


class Slices(Protocol):
    """The priced usage of one SKU in a period, ordered by start, so that the usage of a
    segment is one slice of it: rows [i, j)."""

    def bounds(self, start: datetime, end: datetime) -> tuple[int, int]:
        """(i, j): rows i to j - 1 are those that start in [start, end) (two midnights)."""
        ...

    def quantity(self, i: int, j: int) -> Decimal:
        """The exact sum of the quantities of rows [i, j)."""
        ...

    def hours(self, i: int, j: int) -> tuple[datetime, ...]:
        """The hour buckets, ascending, that rows [i, j) cover (the line's lineage)."""
        ...


class RowSlices(Generic[Row]):
    """`Slices` of a SKU's rows of one grain."""

    def __init__(self, rows: Iterable[Row], grain: Grain[Row]) -> None:
        self._rows = sorted(rows, key=grain.start)
        self._starts = [grain.start(row) for row in self._rows]  # ascending
        self._grain = grain

    def bounds(self, start: datetime, end: datetime) -> tuple[int, int]:
        return bisect_left(self._starts, start), bisect_left(self._starts, end)

    def quantity(self, i: int, j: int) -> Decimal:
        return exact_sum(row.quantity for row in self._rows[i:j])

    def hours(self, i: int, j: int) -> tuple[datetime, ...]:
        return self._grain.hours(self._rows[i:j])


def check_rows(
    tenant_id: str, period: str, start: datetime, end: datetime, usage: Sequence[MeteredUsage]
) -> None:
    seen: set[tuple[datetime, str, str]] = set()

    def where(row: MeteredUsage) -> str:  # built only on failure: this loop is hot
        return f"usage row {row.product_sku} {row.unit} at {row.hour.isoformat()}"

    for row in usage:
        if row.tenant_id != tenant_id:
            raise ValueError(f"{where(row)} belongs to {row.tenant_id!r}, not {tenant_id!r}")
        if not start <= row.hour < end:
            raise ValueError(f"{where(row)} is outside the period {period}")
        if not row.quantity.is_finite() or row.quantity < 0:
            raise ValueError(f"{where(row)} has quantity {row.quantity}, not a finite amount >= 0")
        key = (row.hour, row.product_sku, row.unit)
        if key in seen:
            raise ValueError(f"{where(row)} is given twice (it would be counted twice)")
        seen.add(key)


def check_days(
    tenant_id: str, period: str, start: datetime, end: datetime, days: Sequence[MeteredDay]
) -> None:
    # The hourly rule "one row per (hour, sku, unit)" in daily terms: rows of one (day, sku,
    # unit) - one per unpriced reason - never share an hour.
    claimed: dict[tuple[date, str, str], int] = {}

    def where(row: MeteredDay) -> str:  # built only on failure
        return f"daily usage row {row.product_sku} {row.unit} on {row.day.isoformat()}"

    for row in days:
        if row.tenant_id != tenant_id:
            raise ValueError(f"{where(row)} belongs to {row.tenant_id!r}, not {tenant_id!r}")
        if not start <= _day_start(row.day) < end:
            raise ValueError(f"{where(row)} is outside the period {period}")
        if not row.quantity.is_finite() or row.quantity < 0:
            raise ValueError(f"{where(row)} has quantity {row.quantity}, not a finite amount >= 0")
        if not 0 < row.hour_mask < 1 << 24:
            raise ValueError(f"{where(row)} has hour_mask {row.hour_mask}, not 1 to 2^24 - 1")
        key = (row.day, row.product_sku, row.unit)
        if claimed.get(key, 0) & row.hour_mask:
            raise ValueError(f"{where(row)} repeats an hour of another row (counted twice)")
        claimed[key] = claimed.get(key, 0) | row.hour_mask


def ledger_positions(usage: Iterable[MeteredUsage]) -> tuple[tuple[int, int], ...]:
    highest: dict[int, int] = {}
    for row in usage:
        partition, offset = row.position.partition, row.position.offset
        highest[partition] = max(offset, highest.get(partition, offset))
    return tuple(sorted(highest.items()))


def day_ledger_positions(days: Iterable[MeteredDay]) -> tuple[tuple[int, int], ...]:
    highest: dict[int, int] = {}
    for row in days:
        for partition, offset in row.positions:
            highest[partition] = max(offset, highest.get(partition, offset))
    return tuple(sorted(highest.items()))


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
