"""Hourly usage is ordered by the ledger content it was derived from, never by who wrote last.

A rebuild and the live projector (or a zombie projector after a rebalance) can each read a
tenant-hour, pause, and write it later: the write derived from more of the ledger must win.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.model import LedgerEvent
from ledger.ports import ConflictKey, ConflictRecord, LedgerStore, PulseKey, TenantConflictKey
from ledger.scylla import ScyllaLedgerStore
from projections.hourly import UnitsAt, derive_hour
from projections.ports import UsageStore
from projections.rebuild import rebuild
from projections.runner import project_hours
from tests.unit.helpers import T0, catalog, event, pulse

SAME_BACKEND = [
    ("sqlite", "sqlite"),
    pytest.param("cassandra", "cassandra", marks=pytest.mark.servers),
]
UNITS = catalog()
BILLING_UNIT = UNITS.billing_unit


class PausedAfterRead:
    """The real ledger store, seen by one actor that is paused once: after it read `paused`
    (a tenant-hour) and before it could write what it derived, `meanwhile` runs to the end.
    Only `tenant` is visible, so a rebuild in a shared test keyspace touches only this test."""

    def __init__(
        self,
        inner: LedgerStore,
        tenant: str,
        paused: tuple[str, datetime],
        meanwhile: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._tenant = tenant
        self._paused = paused
        self._meanwhile: Callable[[], None] | None = meanwhile

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        events = self._inner.events_in_hour(tenant_id, hour)
        if (tenant_id, hour) == self._paused and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return events

    def tenants(self) -> list[str]:
        return [self._tenant]

    def hours(self, tenant_id: str) -> list[datetime]:
        return self._inner.hours(tenant_id)

    def seen(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return self._inner.seen(keys)

    def append(self, events: Sequence[LedgerEvent]) -> None:
        self._inner.append(events)

    def record_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        self._inner.record_conflicts(conflicts)

    def get(self, tenant_id: str, pulse_id: str) -> LedgerEvent | None:
        return self._inner.get(tenant_id, pulse_id)

    def conflicts(
        self, tenant_id: str, after: ConflictKey | None = None, limit: int | None = None
    ) -> list[ConflictRecord]:
        return self._inner.conflicts(tenant_id, after, limit)

    def pulses(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        *,
        limit: int,
        after: PulseKey | None = None,
        sku: str | None = None,
    ) -> list[LedgerEvent]:
        return self._inner.pulses(tenant_id, start, end, limit=limit, after=after, sku=sku)

    def tenants_between(
        self, start: datetime, end: datetime, *, limit: int, after: str | None = None
    ) -> list[str]:
        return self._inner.tenants_between(start, end, limit=limit, after=after)

    def all_conflicts(
        self, *, limit: int, after: TenantConflictKey | None = None
    ) -> list[ConflictRecord]:
        return self._inner.all_conflicts(limit=limit, after=after)

    def close(self) -> None:
        pass


def gigabytes(tenant: str, offsets: range) -> list[LedgerEvent]:
    return [event(pulse(f"p-{i}", tenant=tenant, amount="1"), offset=i) for i in offsets]


def usage_of(usage: UsageStore, tenant: str) -> tuple[Decimal, int]:
    rows = usage.usage(tenant, T0, T0 + timedelta(hours=1))
    return sum((r.quantity for r in rows), Decimal(0)), sum(r.pulse_count for r in rows)


def day_of(usage: UsageStore, tenant: str) -> tuple[Decimal, int]:
    rows = usage.daily_usage(tenant, T0.date(), T0.date() + timedelta(days=1))
    return sum((r.quantity for r in rows), Decimal(0)), sum(r.pulse_count for r in rows)


def detail_of(usage: UsageStore, tenant: str) -> tuple[Decimal, int]:
    rows = usage.usage_detail(tenant, T0, T0 + timedelta(hours=1))
    return sum((r.quantity for r in rows), Decimal(0)), sum(r.pulse_count for r in rows)


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_rebuild_paused_after_its_read_does_not_undo_the_projector(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: ten pulses of one tenant-hour, projected
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ledger_store.append(gigabytes(tenant, range(10)))
    project_hours([(tenant, T0)], ledger_store, usage_store, UNITS)

    def writer_then_projector() -> None:
        ledger_store.append(gigabytes(tenant, range(10, 11)))
        project_hours([(tenant, T0)], ledger_store, usage_store, UNITS)

    paused = PausedAfterRead(ledger_store, tenant, (tenant, T0), writer_then_projector)
    # when: the rebuild read ten, then the writer appended the 11th and the projector wrote it
    rebuild(paused, usage_store, UNITS)
    # then: usage, its detail and its day are the ledger's, not the rebuild's older snapshot
    assert usage_of(usage_store, tenant) == (Decimal(11), 11)
    assert detail_of(usage_store, tenant) == (Decimal(11), 11)
    assert day_of(usage_store, tenant) == (Decimal(11), 11)


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_projector_paused_after_its_read_does_not_undo_a_rebuild(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: a zombie projector (e.g. after a rebalance) read the hour with one pulse ...
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ledger_store.append(gigabytes(tenant, range(1)))

    def writer_then_rebuild() -> None:
        ledger_store.append(gigabytes(tenant, range(1, 5)))
        rebuild(
            PausedAfterRead(ledger_store, tenant, ("", T0), lambda: None),
            usage_store,
            UNITS,
        )

    zombie = PausedAfterRead(ledger_store, tenant, (tenant, T0), writer_then_rebuild)
    # when: ... then four more were written and rebuilt, then the zombie wrote its hour
    project_hours([(tenant, T0)], zombie, usage_store, UNITS)
    # then
    assert usage_of(usage_store, tenant) == (Decimal(5), 5)
    assert detail_of(usage_store, tenant) == (Decimal(5), 5)
    assert day_of(usage_store, tenant) == (Decimal(5), 5)


@pytest.mark.servers
def test_a_rederivation_from_as_many_events_replaces_the_hour_whole(
    cql_session: Any, migrated_keyspace: str
) -> None:
    """After a catalog change the same events are re-derived into other rows (`pulse rebuild`)."""
    from projections.scylla import ScyllaUsageStore

    # given: the hour derived while the catalog did not know the SKU (unpriced, in MB)
    ledger = ScyllaLedgerStore(cql_session, migrated_keyspace)
    usage = ScyllaUsageStore(cql_session, migrated_keyspace)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ledger.append([event(pulse("p-1", tenant=tenant, amount="1500", unit="MB"))])
    project_hours([(tenant, T0)], ledger, usage, UnitsAt(lambda _sku: None, 1))
    # when: re-derived with the next catalog, which bills the SKU in GB
    project_hours([(tenant, T0)], ledger, usage, UnitsAt(BILLING_UNIT, 2))
    # then
    rows = usage.usage(tenant, T0, T0 + timedelta(hours=1))
    assert [(r.unit, r.quantity, r.unpriced_reason) for r in rows] == [("GB", Decimal("1.5"), "")]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_rebuild_fills_the_detail_of_hours_projected_before_it_existed(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: an hour projected by a version that wrote SKU rows only (no detail)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ledger_store.append(
        [
            event(pulse("p-1", tenant=tenant, amount="1", region="br-se1", resource_id="vm-1")),
            event(pulse("p-2", tenant=tenant, amount="2", region="br-se1", resource_id="vm-1"), 1),
            event(pulse("p-3", tenant=tenant, amount="4", region="br-ne1", resource_id="vm-2"), 2),
        ]
    )
    old = derive_hour(ledger_store.events_in_hour(tenant, T0), BILLING_UNIT)
    usage_store.replace_hour(tenant, T0, old)
    assert detail_of(usage_store, tenant) == (Decimal(0), 0)
    # when
    rebuild(PausedAfterRead(ledger_store, tenant, ("", T0), lambda: None), usage_store, UNITS)
    # then
    rows = usage_store.usage_detail(tenant, T0, T0 + timedelta(hours=1))
    assert [(r.region, r.resource_id, r.quantity, r.pulse_count) for r in rows] == [
        ("br-ne1", "vm-2", Decimal(4), 1),
        ("br-se1", "vm-1", Decimal(3), 2),
    ]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_projecting_hours_keeps_their_day_rolled_up(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: pulses at 10:00 and 13:00 on two partitions, then a late one at 10:00
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    later = T0 + timedelta(hours=3)
    ledger_store.append(
        [
            event(pulse("p-1", tenant=tenant, amount="1.25"), offset=40, partition=0),
            event(pulse("p-2", tenant=tenant, amount="2", at=later), offset=7, partition=2),
        ]
    )
    project_hours([(tenant, T0), (tenant, later)], ledger_store, usage_store, UNITS)
    ledger_store.append([event(pulse("p-3", tenant=tenant, amount="0.5"), offset=50, partition=0)])
    # when: only the hour of the late pulse is projected again
    project_hours([(tenant, T0)], ledger_store, usage_store, UNITS)
    # then: the day covers both hours, with the greatest offset of each partition among
    # the hours' positions
    (day,) = usage_store.daily_usage(tenant, T0.date(), T0.date() + timedelta(days=1))
    assert (day.product_sku, day.unit, day.unpriced_reason) == ("network.egress", "GB", "")
    assert (day.quantity, day.pulse_count) == (Decimal("3.75"), 3)
    assert day.hours == (T0, later)
    assert day.positions == ((0, 50), (2, 7))


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_rebuild_fills_the_days_of_hours_projected_before_they_existed(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: an hour projected by a version that kept no daily usage
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ledger_store.append(gigabytes(tenant, range(3)))
    usage_store.replace_hour(
        tenant, T0, derive_hour(ledger_store.events_in_hour(tenant, T0), BILLING_UNIT)
    )
    assert day_of(usage_store, tenant) == (Decimal(0), 0)
    # when
    rebuild(PausedAfterRead(ledger_store, tenant, ("", T0), lambda: None), usage_store, UNITS)
    # then
    assert day_of(usage_store, tenant) == (Decimal(3), 3)
