"""After a catalog change the same ledger events are re-derived into other rows (other units,
priced instead of unpriced). Of two derivations that covered the same events, the one made
with the newer catalog must be what is stored, whole — never a mix of both, and never the
older one because it happened to be written last.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from catalog.products import ProductCatalog
from ledger.ports import LedgerStore
from projections.daily import DailyUsage, DayColumns, roll_up
from projections.hourly import HourlyUsage, UnitsAt, UsageDetail, derive_hour
from projections.ports import UsageStore
from projections.rebuild import rebuild
from projections.runner import project_hours
from pulse.bootstrap import SAMPLE_CATALOG, billing_app, load_catalog
from pulse.settings import Backend, EmbeddedSettings, Settings
from tests.contract.test_projection_ordering import PausedAfterRead
from tests.unit.helpers import T0, catalog, event, pulse

SAME_BACKEND = [
    ("sqlite", "sqlite"),
    pytest.param("cassandra", "cassandra", marks=pytest.mark.servers),
]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
OLD = 7  # catalog versions: before the change the SKU was not in the catalog ...
NEW = 8  # ... after it, it is billed in GB


def old_units(_sku: str) -> str | None:
    return None


NEW_UNITS = catalog().billing_unit


class PausedBeforeDayWrite:
    """A usage store seen by one projector that pauses once: after it read the hours of a
    day for its roll-up, and before it wrote the day, `meanwhile` runs to the end."""

    def __init__(self, inner: UsageStore, meanwhile: Callable[[], None]) -> None:
        self._inner = inner
        self._meanwhile: Callable[[], None] | None = meanwhile

    def replace_hour(
        self,
        tenant_id: str,
        hour: datetime,
        rows: Sequence[HourlyUsage],
        detail: Sequence[UsageDetail] | None = None,
    ) -> None:
        self._inner.replace_hour(tenant_id, hour, rows, detail)

    def usage(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[HourlyUsage]:
        return self._inner.usage(tenant_id, start, end, sku)

    def usage_detail(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[UsageDetail]:
        return self._inner.usage_detail(tenant_id, start, end, sku)

    def replace_day(self, tenant_id: str, day: date, rows: Sequence[DailyUsage]) -> None:
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        self._inner.replace_day(tenant_id, day, rows)

    def daily_usage(self, tenant_id: str, start: date, end: date) -> list[DailyUsage]:
        return self._inner.daily_usage(tenant_id, start, end)

    def day_columns(self, tenant_id: str, start: date, end: date) -> DayColumns:
        return self._inner.day_columns(tenant_id, start, end)

    def close(self) -> None:
        pass


def stored_hour(usage: UsageStore, tenant: str) -> list[tuple[str, str, str]]:
    return [
        (r.unit, str(r.quantity), r.unpriced_reason) for r in usage.usage(tenant, T0, T0 + HOUR)
    ]


def megabytes(ledger: LedgerStore, tenant: str) -> None:
    ledger.append(
        [
            event(pulse("p-1", tenant=tenant, amount="1500", unit="MB"), offset=1),
            event(pulse("p-2", tenant=tenant, amount="500", unit="MB"), offset=2),
        ]
    )


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
@pytest.mark.parametrize("new_first", [True, False], ids=["new-first", "old-first"])
def test_of_two_derivations_of_the_same_events_the_newer_catalogs_is_kept_whole(
    ledger_store: LedgerStore, usage_store: UsageStore, new_first: bool
) -> None:
    # given: the hour's events, derived with the old catalog (unpriced, in MB) and with the
    # new one (GB), written one right after the other (within one clock second)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    megabytes(ledger_store, tenant)
    new = UnitsAt(NEW_UNITS, NEW)
    old = UnitsAt(old_units, OLD)
    # when
    for units in [new, old] if new_first else [old, new]:
        project_hours([(tenant, T0)], ledger_store, usage_store, units)
    # then: the new catalog's rows, whole: never the MB and the GB rows side by side
    assert stored_hour(usage_store, tenant) == [("GB", "2.0", "")]
    details = usage_store.usage_detail(tenant, T0, T0 + HOUR)
    assert [(d.unit, str(d.quantity)) for d in details] == [("GB", "2.0")]
    (day,) = usage_store.daily_usage(tenant, T0.date(), T0.date() + DAY)
    assert (day.unit, str(day.quantity), day.catalog_versions) == ("GB", "2.0", NEW)


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_projectors_day_read_before_a_rebuild_does_not_outlive_it(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: a projector still on the old catalog wrote the hour and read its day ...
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    megabytes(ledger_store, tenant)

    def rebuild_with_the_new_catalog() -> None:
        rebuild(
            PausedAfterRead(ledger_store, tenant, ("", T0), lambda: None),
            usage_store,
            UnitsAt(NEW_UNITS, NEW),
        )

    projector_view = PausedBeforeDayWrite(usage_store, rebuild_with_the_new_catalog)
    # when: ... then a rebuild re-derived the hour and its day, then the projector wrote its day
    project_hours([(tenant, T0)], ledger_store, projector_view, UnitsAt(old_units, OLD))
    # then: the hour is the new catalog's, and the day is the roll-up of the hours as stored
    assert stored_hour(usage_store, tenant) == [("GB", "2.0", "")]
    hours = usage_store.usage(tenant, T0.replace(hour=0), T0.replace(hour=0) + DAY)
    day = usage_store.daily_usage(tenant, T0.date(), T0.date() + DAY)
    assert day == roll_up(hours)


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_more_events_win_over_a_newer_catalog(
    ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: a projector not yet restarted after the change derived the hour with a third
    # pulse; a rebuild with the new catalog had read only the first two
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    megabytes(ledger_store, tenant)
    stale = derive_hour(ledger_store.events_in_hour(tenant, T0), NEW_UNITS, NEW)
    ledger_store.append([event(pulse("p-3", tenant=tenant, amount="1000", unit="MB"), 3)])
    project_hours([(tenant, T0)], ledger_store, usage_store, UnitsAt(old_units, OLD))
    # when: the rebuild's read of two events arrives last
    usage_store.replace_hour(tenant, T0, stale)
    # then: no pulse is dropped from usage (the units heal at the next rebuild or restart)
    assert stored_hour(usage_store, tenant) == [
        ("MB", "3000", "SKU network.egress is not in the catalog")
    ]


def test_write_timestamps_order_by_events_then_catalog_above_earlier_stamps() -> None:
    from projections.scylla import catalog_of, write_timestamp

    # more events win whatever the catalog; at equal events, the newer catalog
    assert write_timestamp(11, 0) > write_timestamp(10, (1 << 30) - 1)
    assert write_timestamp(10, NEW) > write_timestamp(10, OLD)
    # above the stamps of earlier releases: wall-clock microseconds (2^62 µs is in 2116) and
    # (events, wall-clock second) with the second below 2^30 (until 2058)
    now = int(time.time())
    assert write_timestamp(0, 0) >= 1 << 62 > time.time_ns() // 1000
    assert write_timestamp(10, 0) - 1 > (1 << 62 | 10 << 31 | (now - 1_704_067_200))
    assert write_timestamp((1 << 31) - 1, (1 << 30) - 1) < 2**63
    assert catalog_of(write_timestamp(10, NEW)) == NEW
    assert catalog_of(1 << 62 | 10 << 31 | 12345) == 0
    assert catalog_of(time.time_ns() // 1000) == 0
    with pytest.raises(ValueError, match="events"):
        write_timestamp(1 << 31, 0)
    with pytest.raises(ValueError, match="catalog"):
        write_timestamp(1, 1 << 30)


def sample_without(sku: str) -> str:
    entries = re.split(r"(?m)^(?=  - sku: )", SAMPLE_CATALOG.read_text())
    kept = [e for e in entries if not e.startswith(f"  - sku: {sku}\n")]
    assert len(kept) == len(entries) - 1
    return "".join(kept)


def load_file(tmp_path: Path, text: str, mtime: float) -> ProductCatalog:
    """What a process started now loads: the catalog file as it is now (no apply yet)."""
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    settings = Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=tmp_path / "data"),
        catalog_file=path,
    )
    billing = billing_app(settings)
    try:
        return load_catalog(settings, billing)
    finally:
        billing.close()


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
@pytest.mark.parametrize(
    ("old_mtime", "new_mtime"),
    [
        (1_780_000_020, 1_780_000_070),  # the operator fixed the file 50 s later
        (1, 1),  # reproducible builds: every file's mtime is normalized
        (1_780_000_020, 1_780_000_020 - 86_400),  # the new file deployed with an older mtime
    ],
    ids=["edited-within-one-minute", "normalized-mtimes", "deployed-with-an-older-mtime"],
)
def test_derivations_under_two_catalog_files_are_never_stored_mixed(
    tmp_path: Path,
    ledger_store: LedgerStore,
    usage_store: UsageStore,
    old_mtime: float,
    new_mtime: float,
) -> None:
    """Catalog files are not ordered (docs/operations.md): which file's derivation of the same
    events is kept is not said, but it is one of them, whole, in either write order."""
    # given: a catalog file that lacked the SKU (its pulses unpriced, in MB), then edited to
    # bill it in GB
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    megabytes(ledger_store, tenant)
    before = load_file(tmp_path, sample_without("network.egress"), old_mtime)
    after = load_file(tmp_path, SAMPLE_CATALOG.read_text(), new_mtime)
    assert before.version != after.version
    kept = []
    for first, then in [(before, after), (after, before)]:
        # when: processes on each derive the same events, in one order or the other
        for units in (first, then):
            project_hours([(tenant, T0)], ledger_store, usage_store, units)
        # then: one derivation, whole, and the same one whatever the order
        kept.append(stored_hour(usage_store, tenant))
    assert kept[0] == kept[1]
    assert kept[0] in (
        [("GB", "2.0", "")],
        [("MB", "2000", "SKU network.egress is not in the catalog")],
    )
