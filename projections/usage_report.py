"""Usage of a time range by hour, day or month, grouped by SKU, resource and region (pure).

Quantities of different units are never added: every row and every total is of one unit,
and priced and unpriced usage stay apart (unpriced rows keep the pulses' own unit and say
why they are unpriced), so unpriced usage is shown, never dropped or mixed into a priced sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from kernel.decimals import exact_sum
from kernel.errors import Invalid
from kernel.text import unsafe_character
from ledger.model import Position
from projections.hourly import HourlyUsage, UsageDetail

GRANULARITIES = ("hour", "day", "month")
GROUP_FIELDS = ("sku", "resource_id", "region")
# The longest range per granularity: a month of hours, a (leap) year of days, five years of
# months. Bounds the rows read and answered (hours x groups) whatever the client asks.
MAX_RANGE = {"hour": timedelta(days=31), "day": timedelta(days=366), "month": timedelta(days=1827)}
MAX_FILTER = 256


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """A validated question: hours h with start <= h < end (UTC), bucketed and grouped."""

    start: datetime
    end: datetime
    granularity: str = "hour"
    group_by: tuple[str, ...] = ("sku",)
    sku: str | None = None
    region: str | None = None
    resource_id: str | None = None

    @property
    def needs_detail(self) -> bool:
        """Whether rows by region and resource are needed (else the SKU rows answer it)."""
        filtered = self.region is not None or self.resource_id is not None
        return filtered or bool(set(self.group_by) - {"sku"})


@dataclass(frozen=True, slots=True)
class UsageLine:
    """Usage of one group in one bucket [period_start, period_end), in one unit. A group field
    is None when the query does not group by it; "" when the pulses did not give it."""

    period_start: datetime
    period_end: datetime
    product_sku: str | None
    resource_id: str | None
    region: str | None
    unit: str
    quantity: Decimal
    pulse_count: int
    position: Position  # the greatest ledger position among the bucket's pulses
    unpriced_reason: str

    @property
    def priced(self) -> bool:
        return not self.unpriced_reason


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Usage of one group (all None: the overall total) over the whole range, in one unit."""

    product_sku: str | None
    resource_id: str | None
    region: str | None
    unit: str
    quantity: Decimal
    pulse_count: int
    unpriced_reason: str

    @property
    def priced(self) -> bool:
        return not self.unpriced_reason


@dataclass(frozen=True, slots=True)
class UsageReport:
    query: UsageQuery
    rows: list[UsageLine]
    totals: list[UsageTotal]  # per group and unit
    overall: list[UsageTotal]  # per unit


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{name}: needs a UTC offset (e.g. {value:%Y-%m-%dT%H:%M:%S}Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise Invalid(
            f"{name}: {value.isoformat()} is outside the representable range once in UTC"
        ) from None


def _filter(value: str | None, name: str, *, may_be_empty: bool) -> str | None:
    if value is None:
        return None
    if not value and not may_be_empty:
        raise Invalid(f"{name}: must not be empty (leave it out to select every {name})")
    if len(value) > MAX_FILTER:
        raise Invalid(f"{name}: longer than {MAX_FILTER} characters")
    why = unsafe_character(value)
    if why is not None:
        raise Invalid(f"{name}: {why}")
    return value


def _shown(value: str) -> str:
    """A client's value quoted for an error message: escaped, and cut when long."""
    return ascii(value[:40] + ("…" if len(value) > 40 else ""))


def parse_group_by(values: Sequence[str] | None) -> tuple[str, ...]:
    """`group_by` given repeated and/or as a comma list, in the order of GROUP_FIELDS
    (duplicates collapse); none given means by SKU."""
    if not values:
        return ("sku",)
    asked: set[str] = set()
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if name not in GROUP_FIELDS:
                raise Invalid(
                    f"group_by: {_shown(name)} is not one of {', '.join(GROUP_FIELDS)} "
                    "(repeat the parameter or separate names with commas)"
                )
            asked.add(name)
    return tuple(f for f in GROUP_FIELDS if f in asked)


def usage_query(
    start: datetime,
    end: datetime,
    granularity: str = "hour",
    group_by: Sequence[str] | None = None,
    *,
    sku: str | None = None,
    region: str | None = None,
    resource_id: str | None = None,
) -> UsageQuery:
    """The query, or Invalid naming the first bad field and why."""
    begin, stop = _utc(start, "start"), _utc(end, "end")
    if granularity not in GRANULARITIES:
        choices = ", ".join(GRANULARITIES)
        raise Invalid(f"granularity: {_shown(granularity)} is not one of {choices}")
    if stop <= begin:
        raise Invalid("end: must be after start")
    if stop - begin > MAX_RANGE[granularity]:
        raise Invalid(
            f"end: at granularity {granularity} a range spans at most "
            f"{MAX_RANGE[granularity].days} days (asked {stop - begin}); "
            "ask a coarser granularity or a shorter range"
        )
    return UsageQuery(
        start=begin,
        end=stop,
        granularity=granularity,
        group_by=parse_group_by(group_by),
        sku=_filter(sku, "sku", may_be_empty=False),
        region=_filter(region, "region", may_be_empty=True),
        resource_id=_filter(resource_id, "resource_id", may_be_empty=True),
    )


def bucket(hour: datetime, granularity: str) -> tuple[datetime, datetime]:
    """The UTC calendar bucket [start, end) an hour falls in."""
    hour = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if granularity == "hour":
        return hour, hour + timedelta(hours=1)
    day = hour.replace(hour=0)
    if granularity == "day":
        return day, day + timedelta(days=1)
    first = day.replace(day=1)
    following = first.replace(year=first.year + 1, month=1) if first.month == 12 else None
    return first, following or first.replace(month=first.month + 1)


_Group = tuple[str | None, str | None, str | None, str, bool]  # sku, resource, region, unit, priced


@dataclass
class _Sum:
    quantities: list[Decimal]
    count: int
    position: Position
    reason: str


_K = TypeVar("_K")
_Bucket = tuple[datetime, datetime]


def _add(sums: dict[_K, _Sum], key: _K, row: HourlyUsage | UsageDetail) -> None:
    found = sums.get(key)
    if found is None:
        sums[key] = _Sum([row.quantity], row.pulse_count, row.position, row.unpriced_reason)
        return
    found.quantities.append(row.quantity)
    found.count += row.pulse_count
    mine, theirs = found.position, row.position
    if (theirs.partition, theirs.offset) > (mine.partition, mine.offset):
        found.position = theirs
    found.reason = found.reason or row.unpriced_reason


def fill_unattributed(
    hourly: Sequence[HourlyUsage], detail: Sequence[UsageDetail]
) -> tuple[list[HourlyUsage | UsageDetail], list[datetime]]:
    """The detail rows, except in hours whose detail was not derived from the same events as
    their SKU rows (projected before detail was kept, or being rewritten right now): there
    the SKU rows stand in, with region and resource unknown (None), so grouped totals still
    equal the SKU totals. Returns the rows and those hours."""
    counts: dict[datetime, int] = {}
    for row in hourly:
        counts[row.hour] = counts.get(row.hour, 0) + row.pulse_count
    for part in detail:
        counts[part.hour] = counts.get(part.hour, 0) - part.pulse_count
    missing = sorted(hour for hour, difference in counts.items() if difference)
    gaps = set(missing)
    rows: list[HourlyUsage | UsageDetail] = [d for d in detail if d.hour not in gaps]
    rows += [h for h in hourly if h.hour in gaps]
    return rows, missing


def _order(key: _Group) -> tuple[str, str, str, str, bool]:
    sku, resource, region, unit, priced = key
    return sku or "", resource or "", region or "", unit, not priced


def summarize(rows: Iterable[HourlyUsage | UsageDetail], query: UsageQuery) -> UsageReport:
    """Rows per (bucket, group, unit, priced), totals per (group, unit, priced) and overall
    per (unit, priced), exact; stored rows outside the query's range or filters are left out."""
    by_sku, by_resource, by_region = (f in query.group_by for f in GROUP_FIELDS)
    lines: dict[tuple[_Bucket, _Group], _Sum] = {}
    totals: dict[_Group, _Sum] = {}
    overall: dict[_Group, _Sum] = {}
    buckets: dict[datetime, _Bucket] = {}
    for row in rows:
        region: str | None
        resource: str | None
        if isinstance(row, UsageDetail):
            region, resource = row.region, row.resource_id
        else:
            region = resource = None
        if not query.start <= row.hour < query.end or query.sku not in (None, row.product_sku):
            continue
        if query.region not in (None, region) or query.resource_id not in (None, resource):
            continue
        period = buckets.get(row.hour)
        if period is None:
            period = buckets[row.hour] = bucket(row.hour, query.granularity)
        group: _Group = (
            row.product_sku if by_sku else None,
            resource if by_resource else None,
            region if by_region else None,
            row.unit,
            row.priced,
        )
        _add(lines, (period, group), row)
        _add(totals, group, row)
        _add(overall, (None, None, None, row.unit, row.priced), row)
    return UsageReport(
        query=query,
        rows=[
            UsageLine(
                period_start=period[0],
                period_end=period[1],
                product_sku=group[0],
                resource_id=group[1],
                region=group[2],
                unit=group[3],
                quantity=exact_sum(s.quantities),
                pulse_count=s.count,
                position=s.position,
                unpriced_reason=s.reason,
            )
            for (period, group), s in sorted(
                lines.items(), key=lambda item: (item[0][0][0], _order(item[0][1]))
            )
        ],
        totals=_totals(totals),
        overall=_totals(overall),
    )


def _totals(sums: dict[_Group, _Sum]) -> list[UsageTotal]:
    return [
        UsageTotal(
            product_sku=group[0],
            resource_id=group[1],
            region=group[2],
            unit=group[3],
            quantity=exact_sum(s.quantities),
            pulse_count=s.count,
            unpriced_reason=s.reason,
        )
        for group, s in sorted(sums.items(), key=lambda item: _order(item[0]))
    ]
