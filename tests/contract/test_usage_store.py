"""Contract of UsageStore, run against every backend (SQLite and Cassandra/ScyllaDB CQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.model import Position
from projections.hourly import HourlyUsage
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
