"""Contract of UsageStore, run against every backend (SQLite and Cassandra/ScyllaDB CQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ledger.model import Position
from projections.daily import DailyUsage
from projections.hourly import HourlyUsage, UsageDetail
from projections.ports import UsageStore

HOUR = datetime(2026, 10, 31, 23, tzinfo=UTC)  # the last hour of a month


def row(
    tenant: str, hour: datetime, sku: str, quantity: str, reason: str = "", count: int = 3
) -> HourlyUsage:
    return HourlyUsage(
        tenant_id=tenant,
        hour=hour,
        product_sku=sku,
        unit="GB",
        quantity=Decimal(quantity),
        pulse_count=count,
        first_event=hour + timedelta(minutes=1, microseconds=5),
        last_event=hour + timedelta(minutes=50),
        position=Position(1, 42),
        unpriced_reason=reason,
    )


def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def test_replaced_hours_read_back_exactly(usage_store: UsageStore) -> None:
    # given
    t = tenant()
    rows = [row(t, HOUR, "a", "1.000000000000000001"), row(t, HOUR, "b", "7", "unknown SKU")]
    # when
    usage_store.replace_hour(t, HOUR, rows)
    # then
    assert usage_store.usage(t, HOUR, HOUR + timedelta(hours=1)) == rows


def test_replacing_an_hour_drops_rows_no_longer_derived(usage_store: UsageStore) -> None:
    # given
    t = tenant()
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "1"), row(t, HOUR, "b", "2")])
    # when: derived from more events (3 + 3 before, 7 now)
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "5", count=7)])
    # then
    assert usage_store.usage(t, HOUR, HOUR + timedelta(hours=1)) == [
        row(t, HOUR, "a", "5", count=7)
    ]


def test_a_derivation_from_fewer_events_arriving_last_changes_nothing(
    usage_store: UsageStore,
) -> None:
    # given: the hour derived from 4 events
    t = tenant()
    newer = [row(t, HOUR, "a", "3", count=3), row(t, HOUR, "c", "1", count=1)]
    usage_store.replace_hour(t, HOUR, newer)
    # when: a derivation that read only 3 of them (a paused rebuild) writes after it
    usage_store.replace_hour(
        t, HOUR, [row(t, HOUR, "a", "2", count=2), row(t, HOUR, "b", "1", count=1)]
    )
    # then
    assert usage_store.usage(t, HOUR, HOUR + timedelta(hours=1)) == newer


def test_ranges_are_half_open_span_months_and_filter_by_sku(usage_store: UsageStore) -> None:
    # given: the last hour of October and the first of November
    t = tenant()
    nxt = HOUR + timedelta(hours=1)
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "1"), row(t, HOUR, "b", "1")])
    usage_store.replace_hour(t, nxt, [row(t, nxt, "a", "2")])
    # when
    both = usage_store.usage(t, HOUR, nxt + timedelta(hours=1))
    only_first = usage_store.usage(t, HOUR, nxt)
    only_a = usage_store.usage(t, HOUR, nxt + timedelta(hours=1), sku="a")
    # then
    assert [(r.hour, r.product_sku) for r in both] == [(HOUR, "a"), (HOUR, "b"), (nxt, "a")]
    assert [(r.hour, r.product_sku) for r in only_first] == [(HOUR, "a"), (HOUR, "b")]
    assert [r.quantity for r in only_a] == [Decimal(1), Decimal(2)]


def test_other_tenants_are_invisible(usage_store: UsageStore) -> None:
    # given
    mine, other = tenant(), tenant()
    usage_store.replace_hour(other, HOUR, [row(other, HOUR, "a", "1")])
    # when
    got = usage_store.usage(mine, HOUR, HOUR + timedelta(hours=1))
    # then
    assert got == []


# --- detail rows (by region and resource), written with the hour's SKU rows ------------------


def detail(
    tenant: str,
    hour: datetime,
    sku: str,
    quantity: str,
    *,
    region: str = "br-se1",
    resource: str = "vm-1",
    unit: str = "GB",
    count: int = 3,
    reason: str = "",
) -> UsageDetail:
    return UsageDetail(
        tenant_id=tenant,
        hour=hour,
        product_sku=sku,
        unit=unit,
        region=region,
        resource_id=resource,
        quantity=Decimal(quantity),
        pulse_count=count,
        position=Position(2, 77),
        unpriced_reason=reason,
    )


def detail_in(store: UsageStore, t: str, hours: int = 1) -> list[UsageDetail]:
    return store.usage_detail(t, HOUR, HOUR + timedelta(hours=hours))


def test_detail_rows_read_back_exactly_with_empty_region_and_resource(
    usage_store: UsageStore,
) -> None:
    # given: one pulse with neither region nor resource, one of another unit, unpriced
    t = tenant()
    rows = [
        row(t, HOUR, "a", "3", count=3),
        HourlyUsage(t, HOUR, "a", "furlong", Decimal(2), 1, HOUR, HOUR, Position(0, 1), "why"),
    ]
    parts = [
        detail(t, HOUR, "a", "1.000000000000000001", region="", resource="", count=1),
        detail(t, HOUR, "a", "2", resource="vm-2", count=2),
        detail(t, HOUR, "a", "2", unit="furlong", count=1, reason="why"),
    ]
    # when
    usage_store.replace_hour(t, HOUR, rows, parts)
    # then: ordered by hour, SKU, unit, region, resource
    assert detail_in(usage_store, t) == parts


def test_replacing_an_hour_replaces_its_detail_whole(usage_store: UsageStore) -> None:
    # given
    t = tenant()
    usage_store.replace_hour(
        t, HOUR, [row(t, HOUR, "a", "2", count=2)], [detail(t, HOUR, "a", "2", count=2)]
    )
    # when: derived from more events, now on another resource only
    newer = [detail(t, HOUR, "a", "5", resource="vm-9", count=4)]
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "5", count=4)], newer)
    # then
    assert detail_in(usage_store, t) == newer


def test_an_older_derivation_arriving_last_changes_no_detail(usage_store: UsageStore) -> None:
    # given: the hour derived from 4 events
    t = tenant()
    newer = [detail(t, HOUR, "a", "3", count=3), detail(t, HOUR, "c", "1", count=1)]
    usage_store.replace_hour(
        t, HOUR, [row(t, HOUR, "a", "3", count=3), row(t, HOUR, "c", "1", count=1)], newer
    )
    # when: a derivation that read only 2 of them writes after it
    usage_store.replace_hour(
        t, HOUR, [row(t, HOUR, "b", "2", count=2)], [detail(t, HOUR, "b", "2", count=2)]
    )
    # then
    assert detail_in(usage_store, t) == newer


def test_no_detail_given_leaves_the_stored_detail(usage_store: UsageStore) -> None:
    # given
    t = tenant()
    kept = [detail(t, HOUR, "a", "3")]
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "3")], kept)
    # when: only the SKU rows are written again (e.g. a correction of a stored quantity)
    usage_store.replace_hour(t, HOUR, [row(t, HOUR, "a", "4")])
    # then
    assert detail_in(usage_store, t) == kept


def test_detail_ranges_are_half_open_span_days_and_months_and_filter_by_sku(
    usage_store: UsageStore,
) -> None:
    # given: 23:00 of Oct 31 (one day and month) and 00:00 of Nov 1 (the next ones)
    t, nxt = tenant(), HOUR + timedelta(hours=1)
    usage_store.replace_hour(
        t, HOUR, [row(t, HOUR, "a", "1"), row(t, HOUR, "b", "1")],
        [detail(t, HOUR, "a", "1"), detail(t, HOUR, "b", "1")],
    )  # fmt: skip
    usage_store.replace_hour(t, nxt, [row(t, nxt, "a", "2")], [detail(t, nxt, "a", "2")])
    # when
    both = usage_store.usage_detail(t, HOUR - timedelta(days=3), nxt + timedelta(hours=1))
    only_first = usage_store.usage_detail(t, HOUR, nxt)
    only_second = usage_store.usage_detail(t, nxt, nxt + timedelta(days=2))
    only_a = usage_store.usage_detail(t, HOUR, nxt + timedelta(hours=1), sku="a")
    # then
    assert [(r.hour, r.product_sku) for r in both] == [(HOUR, "a"), (HOUR, "b"), (nxt, "a")]
    assert [(r.hour, r.product_sku) for r in only_first] == [(HOUR, "a"), (HOUR, "b")]
    assert [(r.hour, r.product_sku) for r in only_second] == [(nxt, "a")]
    assert [r.quantity for r in only_a] == [Decimal(1), Decimal(2)]


def test_other_tenants_detail_is_invisible(usage_store: UsageStore) -> None:
    # given
    mine, other = tenant(), tenant()
    usage_store.replace_hour(
        other, HOUR, [row(other, HOUR, "a", "1")], [detail(other, HOUR, "a", "1")]
    )
    # when / then
    assert detail_in(usage_store, mine) == []


# --- daily rows (the roll-up of a tenant-day's hourly rows, what invoice drafts price) -------

DAY = HOUR.date()  # 2026-10-31, the last day of a month


def day_row(
    tenant: str,
    day: date,
    sku: str,
    quantity: str,
    *,
    unit: str = "GB",
    reason: str = "",
    count: int = 3,
    mask: int = 1 << 23 | 1,
    positions: tuple[tuple[int, int], ...] = ((0, 5), (2, 1 << 40)),
) -> DailyUsage:
    return DailyUsage(tenant, day, sku, unit, reason, Decimal(quantity), count, mask, positions)


def test_replaced_days_read_back_exactly(usage_store: UsageStore) -> None:
    # given: every hour of the day, a quantity past float precision, two reasons for one
    # SKU and unit, offsets past 32 bits
    t = tenant()
    rows = [
        day_row(t, DAY, "a", "1.000000000000000001", mask=(1 << 24) - 1),
        day_row(t, DAY, "a", "2", unit="furlong", reason="no such unit", positions=((7, 0),)),
        day_row(t, DAY, "a", "3", unit="furlong", reason="zzz", mask=0b10, count=1),
    ]
    # when
    usage_store.replace_day(t, DAY, rows)
    # then: ordered by day, SKU, unit, reason
    assert usage_store.daily_usage(t, DAY, DAY + timedelta(days=1)) == rows


def test_replacing_a_day_drops_rows_no_longer_derived(usage_store: UsageStore) -> None:
    # given
    t = tenant()
    usage_store.replace_day(t, DAY, [day_row(t, DAY, "a", "1"), day_row(t, DAY, "b", "2")])
    # when: rolled up from more events (3 + 3 before, 7 now)
    newer = [day_row(t, DAY, "a", "5", count=7)]
    usage_store.replace_day(t, DAY, newer)
    # then
    assert usage_store.daily_usage(t, DAY, DAY + timedelta(days=1)) == newer


def test_a_day_rolled_up_from_fewer_events_arriving_last_changes_nothing(
    usage_store: UsageStore,
) -> None:
    # given: the day rolled up from 4 events
    t = tenant()
    newer = [day_row(t, DAY, "a", "3", count=3), day_row(t, DAY, "c", "1", count=1)]
    usage_store.replace_day(t, DAY, newer)
    # when: a roll-up that read hours covering only 3 of them writes after it
    usage_store.replace_day(
        t, DAY, [day_row(t, DAY, "a", "2", count=2), day_row(t, DAY, "b", "1", count=1)]
    )
    # then
    assert usage_store.daily_usage(t, DAY, DAY + timedelta(days=1)) == newer


def test_day_ranges_are_half_open_span_months_and_see_one_tenant(
    usage_store: UsageStore,
) -> None:
    # given: Oct 30 and 31, Nov 1, and another tenant's Oct 31
    t, other = tenant(), tenant()
    days = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
    for d in days:
        usage_store.replace_day(t, d, [day_row(t, d, "a", "1")])
    usage_store.replace_day(other, DAY, [day_row(other, DAY, "a", "9")])
    # when
    october = usage_store.daily_usage(t, date(2026, 10, 1), date(2026, 11, 1))
    across = usage_store.daily_usage(t, DAY, date(2026, 11, 2))
    # then
    assert [r.day for r in october] == days[:2]
    assert [(r.tenant_id, r.day) for r in across] == [(t, DAY), (t, days[2])]


def test_day_columns_hold_the_daily_rows_per_sku_unit_and_reason(usage_store: UsageStore) -> None:
    # given: two days of "a" (Oct 31 and Nov 1, across a month partition), an unpriced "a" in
    # another unit under two reasons, and positions on three partitions
    t = tenant()
    nov_1 = DAY + timedelta(days=1)
    usage_store.replace_day(
        t,
        DAY,
        [
            day_row(t, DAY, "a", "1.000000000000000001", mask=(1 << 24) - 1),
            day_row(t, DAY, "a", "2", unit="furlong", reason="no such unit", positions=((7, 0),)),
            day_row(t, DAY, "a", "3", unit="furlong", reason="zzz", mask=0b10),
        ],
    )
    usage_store.replace_day(t, nov_1, [day_row(t, nov_1, "a", "4.50", positions=((0, 9),))])
    # when
    read = usage_store.day_columns(t, DAY, nov_1 + timedelta(days=1))
    # then: a column per (SKU, unit, reason), days ascending; positions folded per partition
    assert read.tenant_id == t
    assert [
        (c.product_sku, c.unit, c.unpriced_reason, c.days, c.quantities, c.hour_masks)
        for c in sorted(read.columns, key=lambda c: (c.product_sku, c.unit, c.unpriced_reason))
    ] == [
        ("a", "GB", "", [DAY, nov_1], [Decimal("1.000000000000000001"), Decimal("4.50")],
         [(1 << 24) - 1, 1 << 23 | 1]),
        ("a", "furlong", "no such unit", [DAY], [Decimal(2)], [1 << 23 | 1]),
        ("a", "furlong", "zzz", [DAY], [Decimal(3)], [0b10]),
    ]  # fmt: skip
    assert read.positions == ((0, 9), (2, 1 << 40), (7, 0))


def test_day_columns_read_the_rows_daily_usage_reads(usage_store: UsageStore) -> None:
    # given: Oct 30 and 31, Nov 1, and another tenant's Oct 31
    t, other = tenant(), tenant()
    days = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
    for d in days:
        usage_store.replace_day(t, d, [day_row(t, d, "a", "1")])
    usage_store.replace_day(other, DAY, [day_row(other, DAY, "a", "9")])
    # when
    october = usage_store.day_columns(t, date(2026, 10, 1), date(2026, 11, 1))
    nothing = usage_store.day_columns(t, date(2026, 9, 1), date(2026, 10, 1))
    # then: half-open, one tenant
    ((column,),) = [october.columns]
    assert column.days == [r.day for r in usage_store.daily_usage(t, date(2026, 10, 1), days[2])]
    assert column.days == days[:2]
    assert (nothing.columns, nothing.positions) == ((), ())
