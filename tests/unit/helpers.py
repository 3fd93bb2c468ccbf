"""Builders shared by the unit tests: pulses, ledger events, a small catalog, exact factors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal

from catalog.products import MeteredProduct, ProductCatalog
from ledger.model import LedgerEvent, Position, Pulse
from ledger.validation import RawPulse

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)

# Written out here, not taken from catalog.units: the tests' own idea of the factors.
BYTE_FACTORS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "PB": 1000**5,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "PiB": 1024**5,
}

# Far wider than any value in the tests: products and sums computed with it never round.
WIDE = Context(prec=400)


def catalog() -> ProductCatalog:
    return ProductCatalog(
        [
            MeteredProduct("network.egress", "Egress", "network", "GB"),
            MeteredProduct("storage.block", "Block storage", "storage", "GB-hour"),
            MeteredProduct("compute.vcpu", "vCPU", "compute", "vCPU-hour"),
            MeteredProduct("api.requests", "API", "api", "request"),
        ]
    )


def pulse(
    pulse_id: str = "p-1",
    *,
    tenant: str = "acme",
    sku: str = "network.egress",
    amount: str = "1.5",
    unit: str = "GB",
    at: datetime = T0,
    resource_id: str = "",
    region: str = "",
    source: str = "",
    attributes: tuple[tuple[str, str], ...] = (),
) -> Pulse:
    return Pulse(
        pulse_id=pulse_id,
        tenant_id=tenant,
        product_sku=sku,
        used_amount=Decimal(amount),
        use_unit=unit,
        occurred_at=at,
        resource_id=resource_id,
        region=region,
        source=source,
        attributes=attributes,
    )


def event(p: Pulse, offset: int = 0, partition: int = 0, arrival: datetime = NOW) -> LedgerEvent:
    return LedgerEvent.of(p, Position(partition, offset), arrival)


def raw(
    *,
    pulse_id: str = "p-1",
    tenant: str = "acme",
    sku: str = "network.egress",
    amount: str = "1.5",
    unit: str = "GB",
    seconds: int | None = int(T0.timestamp()),
    nanos: int = 0,
    resource_id: str = "",
    region: str = "",
    source: str = "",
    attributes: Mapping[str, str] | None = None,
) -> RawPulse:
    return RawPulse(
        pulse_id=pulse_id,
        tenant_id=tenant,
        product_sku=sku,
        used_amount=amount,
        use_unit=unit,
        occurred_seconds=seconds,
        occurred_nanos=nanos,
        resource_id=resource_id,
        region=region,
        source=source,
        attributes=attributes,
    )
