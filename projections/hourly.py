"""Hourly usage derived from ledger events of one tenant-hour (pure; absolute values): per
SKU and unit (what invoices price) and per SKU, unit, region and resource (what the usage
route groups by)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from kernel import units
from kernel.decimals import EXACT
from ledger.model import LedgerEvent, Position


@dataclass(frozen=True, slots=True)
class HourlyUsage:
    """Usage of one SKU by one tenant in one UTC hour, in one unit.

    `unit` is the product's billing unit when the catalog knows the SKU and every pulse
    converts exactly; otherwise the pulse's own unit with `unpriced_reason` set.
    `position` is the greatest ledger position among the bucket's pulses. `catalog_version`
    is the version of the catalog the unit came from (`catalog.products.ProductCatalog`):
    of two derivations of the same events, the newer catalog's is the one kept.
    """

    tenant_id: str
    hour: datetime
    product_sku: str
    unit: str
    quantity: Decimal
    pulse_count: int
    first_event: datetime
    last_event: datetime
    position: Position
    unpriced_reason: str = ""
    catalog_version: int = 0

    @property
    def priced(self) -> bool:
        return not self.unpriced_reason


BillingUnitOf = Callable[[str], str | None]


class MeteringUnits(Protocol):
    """One version of the catalog as usage derivation sees it: each SKU's billing unit, and
    the version that orders derivations of the same events (`hour_version`). Whatever writes
    usage takes both as one object, so that no caller can pair units with another catalog's
    version (`catalog.products.ProductCatalog` is one; `UnitsAt` wraps a lookup)."""

    @property
    def version(self) -> int: ...

    def billing_unit(self, sku: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class UnitsAt:
    """`MeteringUnits` from a lookup function and the version of the catalog it reads."""

    lookup: BillingUnitOf
    version: int

    def billing_unit(self, sku: str) -> str | None:
        return self.lookup(sku)


K = TypeVar("K", bound=tuple[object, ...])


def events_covered(rows: Sequence[HourlyUsage] | Sequence[UsageDetail]) -> int:
    """How many ledger events the rows of one tenant-hour were derived from: their version.

    The ledger of a tenant-hour only grows (immutable, deduplicated), so a derivation that
    read more events read a later state of it. Usage stores keep the derivation that covers
    the most events, whatever order the writes arrive in: a rebuild, a paused or zombie
    projector, or a skewed clock can never put an older snapshot back.
    """
    return sum(r.pulse_count for r in rows)


def hour_version(rows: Sequence[HourlyUsage]) -> tuple[int, int]:
    """The version of one tenant-hour's rows: (events covered, catalog version).

    More events always win. Of derivations of the same events (a re-derivation after a
    catalog change), the newer catalog's wins; two derivations of the same events with the
    same catalog are the same rows, so which of them is kept does not matter.
    """
    return events_covered(rows), max((r.catalog_version for r in rows), default=0)


@dataclass
class _Acc:
    quantity: Decimal
    count: int
    first: datetime
    last: datetime
    position: Position
    reason: str


def _billing(event: LedgerEvent, billing_unit_of: BillingUnitOf) -> tuple[str, Decimal, str]:
    pulse = event.pulse
    target = billing_unit_of(pulse.product_sku)
    if target is None:
        return pulse.use_unit, pulse.used_amount, f"SKU {pulse.product_sku} is not in the catalog"
    try:
        return target, units.convert(pulse.used_amount, pulse.use_unit, target), ""
    except (units.IncompatibleUnits, units.InexactConversion, units.UnknownUnit) as exc:
        return pulse.use_unit, pulse.used_amount, str(exc)


def _accumulate(
    events: Iterable[LedgerEvent],
    billing_unit_of: BillingUnitOf,
    key_of: Callable[[LedgerEvent, str], K],
) -> list[tuple[K, _Acc]]:
    """The events summed per `key_of(event, billing unit)`, ordered by key."""
    buckets: dict[K, _Acc] = {}
    for event in events:
        pulse = event.pulse
        unit, quantity, reason = _billing(event, billing_unit_of)
        key = key_of(event, unit)
        acc = buckets.get(key)
        if acc is None:
            buckets[key] = _Acc(
                quantity, 1, pulse.occurred_at, pulse.occurred_at, event.position, reason
            )
            continue
        acc.quantity = EXACT.add(acc.quantity, quantity)
        acc.count += 1
        acc.first = min(acc.first, pulse.occurred_at)
        acc.last = max(acc.last, pulse.occurred_at)
        acc.position = max(acc.position, event.position, key=lambda p: (p.partition, p.offset))
        acc.reason = acc.reason or reason
    return sorted(buckets.items(), key=lambda item: item[0])


def derive_hour(
    events: Iterable[LedgerEvent], billing_unit_of: BillingUnitOf, catalog_version: int = 0
) -> list[HourlyUsage]:
    """One row per (tenant, hour, sku, unit) present in `events` (all of one tenant-hour),
    in the units of the catalog at `catalog_version`."""

    def key(event: LedgerEvent, unit: str) -> tuple[str, str, datetime, str]:
        return event.pulse.tenant_id, event.pulse.product_sku, event.hour, unit

    return [
        HourlyUsage(
            tenant_id=tenant,
            hour=hour,
            product_sku=sku,
            unit=unit,
            quantity=acc.quantity,
            pulse_count=acc.count,
            first_event=acc.first,
            last_event=acc.last,
            position=acc.position,
            unpriced_reason=acc.reason,
            catalog_version=catalog_version,
        )
        for (tenant, sku, hour, unit), acc in _accumulate(events, billing_unit_of, key)
    ]


@dataclass(frozen=True, slots=True)
class UsageDetail:
    """Usage of one SKU in one unit, one region and one resource by one tenant in one UTC hour.

    The same buckets as `HourlyUsage`, split by the pulses' `region` and `resource_id`
    ("" when a pulse did not say), so that their pulse counts add up to the same
    `events_covered` and the two are stored under one version. The unit and
    `unpriced_reason` follow the same rule as `HourlyUsage`.
    """

    tenant_id: str
    hour: datetime
    product_sku: str
    unit: str
    region: str
    resource_id: str
    quantity: Decimal
    pulse_count: int
    position: Position
    unpriced_reason: str = ""

    @property
    def priced(self) -> bool:
        return not self.unpriced_reason


def derive_detail(
    events: Iterable[LedgerEvent], billing_unit_of: BillingUnitOf
) -> list[UsageDetail]:
    """One row per (tenant, hour, sku, unit, region, resource) present in `events` (all of one
    tenant-hour); summing its rows over region and resource gives `derive_hour`'s rows."""

    def key(event: LedgerEvent, unit: str) -> tuple[str, datetime, str, str, str, str]:
        pulse = event.pulse
        return pulse.tenant_id, event.hour, pulse.product_sku, unit, pulse.region, pulse.resource_id

    return [
        UsageDetail(
            tenant_id=tenant,
            hour=hour,
            product_sku=sku,
            unit=unit,
            region=region,
            resource_id=resource,
            quantity=acc.quantity,
            pulse_count=acc.count,
            position=acc.position,
            unpriced_reason=acc.reason,
        )
        for (tenant, hour, sku, unit, region, resource), acc in _accumulate(
            events, billing_unit_of, key
        )
    ]
